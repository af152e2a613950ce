"""Crop geometry for the automatic pass: the overlapping zoomed-in windows, the point grid each
one is prompted with, and the moves between a crop's pixel frame and the image's.

Frames: boxes are XYXY in pixels with x right and y down. A *crop box* is half-open
(``x1``/``y1`` exclusive, so ``image[y0:y1, x0:x1]`` is the crop); a *mask box* is the
inclusive extent of a mask's pixels (``x1`` is the last column that holds a pixel), as the
Segment Anything reference and SA-1B define it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Crop:
    """One window of the image and the zoom layer it belongs to.

    Attributes:
        box: (x0, y0, x1, y1) half-open, in image pixels.
        layer: 0 for the whole image, 1 for the 2x2 windows, 2 for the 4x4 windows, ...
    """

    box: tuple[int, int, int, int]
    layer: int

    @property
    def width(self) -> int:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> int:
        return self.box[3] - self.box[1]


def crop_boxes(height: int, width: int, n_layers: int, overlap_ratio: float) -> list[Crop]:
    """The whole image, then for layer i = 1..n_layers a (2^i x 2^i) grid of overlapping windows.

    Neighbouring windows of layer i overlap by ``int(overlap_ratio * short_side * 2 / 2^i)``
    pixels, ``short_side = min(height, width)``; the windows of a layer have one size and their
    union is the image. Layers come in order, and inside a layer the windows go column by column
    (x outer, y inner).

    Returns:
        1 + 4 + 16 + ... crops; the first is ``(0, 0, width, height)``, layer 0.
    """
    crops = [Crop((0, 0, width, height), 0)]
    short_side = min(height, width)
    for layer in range(1, n_layers + 1):
        per_side = 2**layer
        overlap = int(overlap_ratio * short_side * 2 / per_side)
        crop_w = math.ceil((overlap * (per_side - 1) + width) / per_side)
        crop_h = math.ceil((overlap * (per_side - 1) + height) / per_side)
        x0s = [int((crop_w - overlap) * i) for i in range(per_side)]
        y0s = [int((crop_h - overlap) * i) for i in range(per_side)]
        for x0 in x0s:
            for y0 in y0s:
                box = (x0, y0, min(x0 + crop_w, width), min(y0 + crop_h, height))
                crops.append(Crop(box, layer))
    return crops


def point_grid(per_side: int) -> np.ndarray:
    """Cell centres of a (per_side x per_side) grid over the unit square.

    Returns:
        float64 (per_side**2, 2) of (x, y) in [0, 1], row by row (y outer, x inner).
    """
    centres = np.linspace(0.5 / per_side, 1 - 0.5 / per_side, per_side)
    xs = np.tile(centres[None, :], (per_side, 1))
    ys = np.tile(centres[:, None], (1, per_side))
    return np.stack([xs, ys], axis=-1).reshape(-1, 2)


def layer_grids(points_per_side: int, n_layers: int, downscale: int) -> list[np.ndarray]:
    """One unit-square grid per layer: layer i has ``int(points_per_side / downscale**i)`` points
    a side, so every crop of the paper's recipe gets a similar density of points per pixel."""
    return [point_grid(int(points_per_side / downscale**i)) for i in range(n_layers + 1)]


def uncrop_boxes(boxes: torch.Tensor, crop_box: tuple[int, int, int, int]) -> torch.Tensor:
    """(N, 4) XYXY boxes from a crop's frame to the image's (same dtype and device)."""
    x0, y0 = crop_box[0], crop_box[1]
    return boxes + torch.tensor([x0, y0, x0, y0], dtype=boxes.dtype, device=boxes.device)


def uncrop_points(points: np.ndarray, crop_box: tuple[int, int, int, int]) -> np.ndarray:
    """(N, 2) float (x, y) points from a crop's frame to the image's."""
    return points + np.asarray(crop_box[:2], dtype=points.dtype)


def boxes_near_crop_edge(
    boxes: torch.Tensor,
    crop_box: tuple[int, int, int, int],
    image_box: tuple[int, int, int, int],
    tolerance: float,
) -> torch.Tensor:
    """Which mask boxes touch a side of the crop that is not also a side of the image.

    A mask cut by such a side is probably part of an object that goes on outside the window,
    so the automatic pass drops it and lets the whole-image or a neighbouring crop find it.

    Args:
        boxes: (N, 4) XYXY mask boxes in image pixels.
        crop_box, image_box: XYXY in image pixels; each box coordinate is compared with the
            same coordinate of the crop box (x0 with x0, ..., y1 with y1).
        tolerance: how many pixels count as touching.
    Returns:
        bool (N,) on the boxes' device.
    """
    boxes = boxes.float()
    crop = torch.tensor(crop_box, dtype=torch.float32, device=boxes.device)
    image = torch.tensor(image_box, dtype=torch.float32, device=boxes.device)
    near_crop = (boxes - crop).abs() <= tolerance
    near_image = (boxes - image).abs() <= tolerance
    return (near_crop & ~near_image).any(dim=1)
