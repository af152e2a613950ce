"""Vectorised operations on batches of masks for the automatic pass: stability scores, mask
boxes, greedy box NMS, hole and island clean-up, and batched COCO RLE encoding.

Every function takes a whole batch; none loops in Python over the masks. Boxes are XYXY
pixels, mask boxes inclusive (``x1`` is the last column holding a pixel, see engine.crops).
"""

from __future__ import annotations

import numpy as np
import torch
from pycocotools import mask as mask_utils
from scipy import ndimage

from engine import rle

# 8-connectivity inside each (H, W) slice of an (N, H, W) stack and none across slices, so one
# ndimage.label call labels the components of N masks at once.
_SLICEWISE_8_CONNECTED = np.zeros((3, 3, 3), dtype=bool)
_SLICEWISE_8_CONNECTED[1] = True


def stability_scores(logits: torch.Tensor, offset: float) -> torch.Tensor:
    """IoU between the mask thresholded at +offset and at -offset (the mask threshold is 0).

    The mask at +offset lies inside the mask at -offset, so the IoU is a ratio of pixel counts:
    ``#(logits > offset) / #(logits > -offset)``. A mask whose extent barely moves when its
    logits shift by ``offset`` is stable; the automatic pass keeps only those.

    Args:
        logits: float (N, H, W) mask logits.
    Returns:
        float32 (N,) in [0, 1]; 0 where no pixel exceeds -offset.
    """
    inner = (logits > offset).sum(dim=(-2, -1), dtype=torch.int64)
    outer = (logits > -offset).sum(dim=(-2, -1), dtype=torch.int64)
    ratio = inner.float() / outer.clamp(min=1).float()
    return torch.where(outer > 0, ratio, torch.zeros_like(ratio))


def mask_boxes(masks: torch.Tensor) -> torch.Tensor:
    """Inclusive XYXY extents of bool masks (N, H, W), in their own pixel frame.

    Returns:
        int64 (N, 4) on the masks' device; (0, 0, 0, 0) for an empty mask.
    """
    n, h, w = masks.shape
    if n == 0:
        return torch.zeros((0, 4), dtype=torch.int64, device=masks.device)
    rows = masks.any(dim=2)
    cols = masks.any(dim=1)
    ys = torch.arange(h, device=masks.device)
    xs = torch.arange(w, device=masks.device)
    y0 = torch.where(rows, ys, h).amin(dim=1)
    y1 = torch.where(rows, ys, -1).amax(dim=1)
    x0 = torch.where(cols, xs, w).amin(dim=1)
    x1 = torch.where(cols, xs, -1).amax(dim=1)
    boxes = torch.stack([x0, y0, x1, y1], dim=1)
    return torch.where(rows.any(dim=1, keepdim=True), boxes, torch.zeros_like(boxes))


def box_iou(boxes: torch.Tensor, others: torch.Tensor | None = None) -> torch.Tensor:
    """IoU of every box in ``boxes`` (N, 4) with every box in ``others`` (M, 4; default: boxes
    again), XYXY, with area = (x1 - x0) * (y1 - y0) as torchvision computes it.

    Returns:
        float32 (N, M); 0 where both boxes have zero area.
    """
    a = boxes.float()
    b = a if others is None else others.float()
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    top_left = torch.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = (bottom_right - top_left).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = area_a[:, None] + area_b[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=torch.finfo(a.dtype).tiny), 0.0)


def nms(
    boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float, block: int = 256
) -> torch.Tensor:
    """Greedy non-maximum suppression: walking boxes by decreasing score, keep a box unless a
    kept box overlaps it with IoU > ``iou_threshold``. Ties keep the input order.

    Boxes go in blocks of ``block`` (memory block x N). A block first drops what the kept boxes
    of earlier blocks overlap; inside it, the greedy answer is the unique fixed point of
    ``keep[i] = no kept j before i overlaps i``, which iterating that rule from "keep all"
    reaches in a few matrix-vector products (at most ``block``, on a chain of overlaps).

    Args:
        boxes: (N, 4) XYXY; scores: (N,) on the same device.
    Returns:
        int64 indices of the kept boxes, by decreasing score (the order torchvision gives).
    """
    n = boxes.shape[0]
    order = torch.sort(scores, descending=True, stable=True).indices
    ordered = boxes[order]
    keep = torch.zeros(n, dtype=torch.bool, device=boxes.device)
    for start in range(0, n, block):
        stop = min(start + block, n)
        overlaps = box_iou(ordered[start:stop], ordered[:stop]) > iou_threshold
        alive = ~(overlaps[:, :start] & keep[:start]).any(dim=1)
        suppresses = torch.triu(overlaps[:, start:stop], diagonal=1).float()
        kept = alive
        while True:
            settled = alive & ((kept.float() @ suppresses) == 0)
            if torch.equal(settled, kept):
                break
            kept = settled
        keep[start:stop] = kept
    return order[keep]


def remove_small_regions(masks: np.ndarray, min_area: int) -> tuple[np.ndarray, np.ndarray]:
    """Fill small holes, then remove small islands, as the paper's automatic pass does.

    With 8-connectivity, every connected region of a mask's background smaller than
    ``min_area`` is filled (this includes a small piece of background cut off at the image
    border, as in the reference); then every connected region of the filled mask smaller than
    ``min_area`` is removed, except that a mask made only of small regions keeps its largest
    (the first in raster order among equals).

    Args:
        masks: bool (N, H, W).
    Returns:
        (cleaned bool (N, H, W), changed bool (N,)); ``changed`` is True for a mask with any
        small hole or island, even where the cleaned mask is the same (a lone small region).
    """
    n = masks.shape[0]
    if n == 0:
        return masks.astype(bool), np.zeros(0, dtype=bool)
    labels, count = ndimage.label(~masks, structure=_SLICEWISE_8_CONNECTED)
    sizes = np.bincount(labels.ravel(), minlength=count + 1).astype(np.int32)
    small = sizes < min_area
    small[0] = False
    holes = small[labels]
    changed = holes.reshape(n, -1).any(axis=1)
    filled = masks | holes
    del labels, holes

    labels, count = ndimage.label(filled, structure=_SLICEWISE_8_CONNECTED)
    sizes = np.bincount(labels.ravel(), minlength=count + 1).astype(np.int32)
    sizes[0] = 0
    region_size = sizes[labels]
    keep = region_size >= min_area
    changed |= (filled & ~keep).reshape(n, -1).any(axis=1)
    largest = region_size.reshape(n, -1).max(axis=1)
    only_small = np.flatnonzero((largest > 0) & (largest < min_area))
    if only_small.size:
        sub_labels = labels[only_small]
        is_largest = region_size[only_small] == largest[only_small, None, None]
        first = np.where(is_largest, sub_labels, np.iinfo(sub_labels.dtype).max)
        first = first.reshape(only_small.size, -1).min(axis=1)
        keep[only_small] = sub_labels == first[:, None, None]
    return keep, changed


def encode_rles(
    masks: np.ndarray, height: int, width: int, offset: tuple[int, int] = (0, 0)
) -> list[dict]:
    """COCO RLE of N masks pasted at ``offset`` into a (height, width) image, in one call.

    Args:
        masks: bool or uint8 (N, h, w), with offset (x0, y0) + (w, h) inside the image.
    Returns:
        N dicts ``{"size": [height, width], "counts": str}`` (compressed COCO RLE).
    """
    n, h, w = masks.shape
    x0, y0 = offset
    if x0 < 0 or y0 < 0 or x0 + w > width or y0 + h > height:
        raise ValueError(f"masks of {(h, w)} at {offset} do not fit a {(height, width)} image")
    if n == 0:
        return []
    # RLE reads columns: paste into an (N, W, H) buffer, whose (N, H, W) view is column-major,
    # so the encoder needs no further transposing copy.
    columns = np.zeros((n, width, height), dtype=np.uint8)
    columns[:, x0 : x0 + w, y0 : y0 + h] = masks.transpose(0, 2, 1)
    return rle.encode_batch(columns.transpose(0, 2, 1))


def decode_rles(rles: list[dict]) -> np.ndarray:
    """Inverse of ``encode_rles`` for RLEs of one size: bool (N, H, W). For the engine's own
    RLEs only: unlike engine.rle.decode it does not validate (it is one pycocotools call)."""
    if not rles:
        raise ValueError("decode_rles needs at least one RLE (it takes the size from them)")
    return mask_utils.decode(rles).transpose(2, 0, 1).astype(bool)
