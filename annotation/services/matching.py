"""Matching one set of masks to another (an annotator's to the truth, or a second annotator's
to the first's): the one-to-one pairing that maximises the summed IoU (Hungarian matching),
keeping only pairs at IoU >= MATCH_IOU. Pure functions over COCO RLEs; no database."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from engine import rle as rle_codec

# Below this IoU two masks are not the same object (the usual instance-matching threshold).
MATCH_IOU = 0.5
# The paper's consistency figure: the share of pairs overlapping at IoU > 0.90.
AGREE_IOU = 0.9


@dataclass(frozen=True)
class MatchResult:
    """``pairs``: (reference index, candidate index, IoU) per matched pair, by reference index.
    ``missed``: reference masks left without a match; ``extra``: candidate masks likewise."""

    pairs: list[tuple[int, int, float]]
    reference_count: int
    candidate_count: int

    @property
    def matched(self) -> int:
        return len(self.pairs)

    @property
    def missed(self) -> int:
        return self.reference_count - self.matched

    @property
    def extra(self) -> int:
        return self.candidate_count - self.matched

    @property
    def iou_sum(self) -> float:
        return float(sum(iou for _, _, iou in self.pairs))

    @property
    def mean_iou(self) -> float | None:
        return self.iou_sum / self.matched if self.pairs else None

    @property
    def above_90(self) -> int:
        return sum(1 for _, _, iou in self.pairs if iou > AGREE_IOU)


def match_iou_matrix(ious: np.ndarray, threshold: float = MATCH_IOU) -> MatchResult:
    """Hungarian matching on an IoU matrix (references x candidates): the assignment that
    maximises the summed IoU, then pairs below ``threshold`` dropped (they count as a missed
    reference and an extra candidate)."""
    ious = np.asarray(ious, dtype=np.float64)
    if ious.ndim != 2:
        raise ValueError(f"the IoU matrix must be 2-D, got shape {ious.shape}")
    n_ref, n_cand = ious.shape
    pairs: list[tuple[int, int, float]] = []
    if n_ref and n_cand:
        rows, cols = linear_sum_assignment(-ious)
        pairs = [
            (int(r), int(c), float(ious[r, c]))
            for r, c in zip(rows, cols, strict=True)
            if ious[r, c] >= threshold
        ]
    return MatchResult(pairs=pairs, reference_count=n_ref, candidate_count=n_cand)


def match_masks(reference: Sequence[object], candidates: Sequence[object]) -> MatchResult:
    """Match ``candidates`` to ``reference`` (COCO RLEs, all of one image size)."""
    return match_iou_matrix(rle_codec.iou_matrix(list(reference), list(candidates)))
