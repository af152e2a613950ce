"""Interactive-segmentation metrics, pure NumPy (no Django, no torch): IoU with an ignored band,
where the simulated annotator clicks next, and the number of clicks (NoC) a model needs.

The protocol is the one interactive-segmentation papers (and SAM's) report on GrabCut:

* a click goes to the centre of the largest error region, i.e. the pixel farthest from the
  boundary of the false-negative or false-positive area (a Euclidean distance transform, with
  the image border counted as boundary); positive when it falls in a false negative;
* pixels of the ignore band count neither as error nor in the IoU;
* NoC@t is the number of the first click whose mask reaches IoU >= t, ``max_clicks`` (20) when
  none does.

Masks are bool (H, W) arrays in one frame; points are (x, y) = (column, row) pixel centres.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from registry.metrics import MIOU_AT_CLICKS, SUMMARY_METRICS

DEFAULT_MAX_CLICKS = 20
DEFAULT_THRESHOLDS = (0.85, 0.90)


@dataclass(frozen=True)
class Click:
    """One simulated click: pixel column ``x``, row ``y``; ``positive`` adds to the object."""

    x: int
    y: int
    positive: bool

    @property
    def label(self) -> int:
        return 1 if self.positive else 0


def iou(pred: np.ndarray, gt: np.ndarray, ignore: np.ndarray | None = None) -> float:
    """Intersection over union of two bool masks, leaving out ``ignore`` pixels; 1.0 when both
    masks are empty outside the ignored band (nothing to find, nothing found)."""
    pred, gt = np.asarray(pred, bool), np.asarray(gt, bool)
    if pred.shape != gt.shape:
        raise ValueError(f"mask shapes differ: prediction {pred.shape}, ground truth {gt.shape}")
    if ignore is not None:
        keep = ~np.asarray(ignore, bool)
        pred, gt = pred & keep, gt & keep
    union = int(np.count_nonzero(pred | gt))
    if union == 0:
        return 1.0
    return int(np.count_nonzero(pred & gt)) / union


def _farthest_inside(region: np.ndarray) -> tuple[float, tuple[int, int]]:
    """(distance, (row, col)) of the pixel of ``region`` farthest from its boundary, counting
    the image border as boundary; (0, (-1, -1)) for an empty region. Ties go to the first
    pixel in row-major order."""
    if not region.any():
        return 0.0, (-1, -1)
    padded = np.pad(region, 1, constant_values=False)
    dist = ndimage.distance_transform_edt(padded)[1:-1, 1:-1]
    flat = int(np.argmax(dist))
    row, col = divmod(flat, region.shape[1])
    return float(dist[row, col]), (row, col)


def next_click(pred: np.ndarray, gt: np.ndarray, ignore: np.ndarray | None = None) -> Click | None:
    """Where the simulated annotator clicks to correct ``pred``: the centre of the largest error
    region (false negatives give a positive click, false positives a negative one; a tie goes
    to the positive click). None when there is no error left."""
    pred, gt = np.asarray(pred, bool), np.asarray(gt, bool)
    keep = np.ones_like(gt) if ignore is None else ~np.asarray(ignore, bool)
    fn_dist, fn_at = _farthest_inside(gt & ~pred & keep)
    fp_dist, fp_at = _farthest_inside(pred & ~gt & keep)
    if fn_dist == 0.0 and fp_dist == 0.0:
        return None
    if fn_dist >= fp_dist:
        return Click(x=fn_at[1], y=fn_at[0], positive=True)
    return Click(x=fp_at[1], y=fp_at[0], positive=False)


def first_click(gt: np.ndarray, ignore: np.ndarray | None = None) -> Click | None:
    """The first click on an object: the centre of the object (nothing predicted yet)."""
    return next_click(np.zeros_like(np.asarray(gt, bool)), gt, ignore)


def clicks_to_reach(ious: Sequence[float], threshold: float, max_clicks: int) -> int:
    """NoC: the 1-based index of the first IoU >= ``threshold`` among the per-click IoUs (click
    1 first), ``max_clicks`` when none reaches it within ``max_clicks`` clicks."""
    for i, value in enumerate(ious[:max_clicks]):
        if value >= threshold:
            return i + 1
    return max_clicks


def bounding_box(gt: np.ndarray) -> list[float] | None:
    """Inclusive [x0, y0, x1, y1] of the object's pixels (SAM's box convention: x1, y1 are the
    last column and row); None for an empty mask."""
    rows = np.flatnonzero(np.asarray(gt, bool).any(axis=1))
    cols = np.flatnonzero(np.asarray(gt, bool).any(axis=0))
    if rows.size == 0:
        return None
    return [float(cols[0]), float(rows[0]), float(cols[-1]), float(rows[-1])]


@dataclass(frozen=True)
class ObjectResult:
    """Everything measured on one object.

    Attributes:
        ious: IoU after each click of the NoC run (click 1 first; stops once every threshold
            was reached).
        iou_1click_top: IoU of the first click's highest-scoring mask.
        iou_1click_best: best IoU among the first click's three masks.
        iou_box: IoU of the mask answering the object's bounding box.
        noc: {threshold: clicks needed}.
    """

    ious: list[float]
    iou_1click_top: float
    iou_1click_best: float
    iou_box: float
    noc: dict[float, int]


def iou_after(result: ObjectResult, clicks: int) -> float:
    """The IoU after click ``clicks`` (1-based). A run that stopped sooner (every threshold
    reached, no error left, or a click limit below ``clicks``) keeps its last IoU."""
    if clicks < 1:
        raise ValueError(f"clicks must be at least 1, got {clicks}")
    return result.ious[min(clicks, len(result.ious)) - 1]


def object_metrics(result: ObjectResult) -> dict[str, float]:
    """One object's value of each of ``SUMMARY_METRICS``."""
    return {
        "noc90": float(result.noc[0.90]),
        "noc85": float(result.noc[0.85]),
        "miou_1click_top": result.iou_1click_top,
        "miou_1click_best": result.iou_1click_best,
        **{f"miou_{k}clicks": iou_after(result, k) for k in MIOU_AT_CLICKS},
        "miou_box": result.iou_box,
    }


def summarize(results: Sequence[ObjectResult], images: int) -> dict[str, float | int]:
    """The summary every evaluation reports (the keys ModelVersion.metrics["heldout"] holds):
    images, masks, then the mean over objects of each of ``SUMMARY_METRICS`` (mIoUs in 0..1,
    NoCs in clicks; 0 with no object)."""
    rows = [object_metrics(r) for r in results]
    summary: dict[str, float | int] = {"images": images, "masks": len(rows)}
    for key in SUMMARY_METRICS:
        summary[key] = round(float(np.mean([row[key] for row in rows])), 4) if rows else 0.0
    return summary
