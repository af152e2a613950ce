"""The figures of a mask audit, as pure functions of masks and numbers (no Django, no database):
the IoU of an original mask with its correction, the boundary IoU of Cheng et al. (2021), and
the summary of a group of originals (the SA paper's IoU histogram and shares, precision and
recall of the model's masks).

Definitions (the report's readers rely on them):

- ``iou``: |A ∩ B| / |A ∪ B|; two empty masks agree fully (1.0).
- ``boundary_band(mask, d)``: the mask's pixels within Euclidean distance ``d`` of its contour,
  i.e. whose distance to the nearest background pixel is at most ``d`` (outside the image
  counts as background, as in Cheng et al.'s reference code which pads with zeros before
  eroding).
- ``boundary_iou(a, b, d)``: the IoU of the two bands; ``d`` is 2% of the image diagonal
  (``boundary_distance``), at least one pixel. Unlike the mask IoU it does not forgive errors
  along the edge of a large object.
- Shares (``share_iou_90`` etc.) are over the *pairs* (originals still present after review,
  kept or fixed), strictly above the threshold, as the paper's "94% of pairs have IoU > 0.9".
  Deleted originals are the model's false positives: they count in ``precision`` =
  pairs / originals, and objects the reviewer added are its misses: ``recall`` = pairs /
  (pairs + added).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage

HISTOGRAM_BINS = 20  # of width 0.05, the last one closed: [0.95, 1.0]
SHARE_THRESHOLDS = (0.90, 0.75, 0.50)
BOUNDARY_RATIO = 0.02


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two bool masks of the same shape (1.0 when both are empty)."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    if a.shape != b.shape:
        raise ValueError(f"masks of different shapes: {a.shape} and {b.shape}")
    union = int(np.count_nonzero(a | b))
    if union == 0:
        return 1.0
    return int(np.count_nonzero(a & b)) / union


def boundary_distance(height: int, width: int, ratio: float = BOUNDARY_RATIO) -> int:
    """The band's width in pixels: ``ratio`` of the image diagonal, rounded, at least 1."""
    return max(1, round(ratio * math.hypot(height, width)))


def boundary_band(mask: np.ndarray, d: float) -> np.ndarray:
    """The pixels of ``mask`` at Euclidean distance <= ``d`` from the nearest background pixel
    (the image border counting as background)."""
    mask = np.asarray(mask, bool)
    if not mask.any():
        return mask
    distance = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    return mask & (distance <= d)


def boundary_iou(a: np.ndarray, b: np.ndarray, d: float) -> float:
    """Boundary IoU (Cheng et al., 2021) of two masks with band width ``d``."""
    return iou(boundary_band(a, d), boundary_band(b, d))


def histogram_bin(value: float, bins: int = HISTOGRAM_BINS) -> int:
    """The bin of an IoU in [0, 1]: [k/bins, (k+1)/bins), the last one closed. The small
    tolerance puts 0.15 in the bin starting at 0.15, whatever its float's last bit."""
    return min(bins - 1, max(0, math.floor(value * bins + 1e-9)))


def histogram(values: Sequence[float], bins: int = HISTOGRAM_BINS) -> list[int]:
    counts = [0] * bins
    for value in values:
        counts[histogram_bin(value, bins)] += 1
    return counts


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def summarize(
    ious: Sequence[float],
    boundary_ious: Sequence[float],
    deleted: int,
    added: int,
) -> dict[str, Any]:
    """The figures of one group of originals: ``ious`` and ``boundary_ious`` of the pairs
    (original, its reviewed version), ``deleted`` originals the reviewer removed and ``added``
    objects the reviewer drew. Ratios are None when their denominator is 0."""
    pairs = len(ious)
    originals = pairs + deleted
    figures: dict[str, Any] = {
        "originals": originals,
        "pairs": pairs,
        "unchanged": sum(1 for v in ious if v == 1.0),
        "deleted": deleted,
        "added": added,
    }
    for threshold in SHARE_THRESHOLDS:
        above = sum(1 for v in ious if v > threshold)
        figures[f"share_iou_{round(threshold * 100)}"] = _ratio(above, pairs)
    figures["median_iou"] = float(np.median(ious)) if pairs else None
    figures["mean_iou"] = float(np.mean(ious)) if pairs else None
    figures["mean_boundary_iou"] = float(np.mean(boundary_ious)) if boundary_ious else None
    figures["precision"] = _ratio(pairs, originals)
    figures["recall"] = _ratio(pairs, pairs + added)
    figures["histogram"] = histogram(ious)
    return figures


def histogram_edges(bins: int = HISTOGRAM_BINS) -> list[float]:
    return [round(k / bins, 4) for k in range(bins + 1)]
