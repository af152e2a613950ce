"""Geometry between the original image, the model's input frame (longest side resized to 1024,
padded bottom/right to 1024x1024) and the 256x256 low-resolution mask frame."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


def resized_shape(height: int, width: int, long_side: int = 1024) -> tuple[int, int]:
    """(h, w) after scaling so the longest side is ``long_side`` (rounded half up, as SAM's
    reference does; at least 1, where the reference would produce an empty image)."""
    scale = long_side / max(height, width)
    return max(1, int(height * scale + 0.5)), max(1, int(width * scale + 0.5))


def resize_image(image: np.ndarray, long_side: int = 1024) -> np.ndarray:
    """uint8 (H, W, 3) RGB -> uint8 (h, w, 3) with the longest side ``long_side``.

    Pillow's bilinear filter (with its antialiasing when shrinking), the resampling SAM's
    reference preprocessing uses, so embeddings match those of Meta's code.
    """
    h, w = resized_shape(image.shape[0], image.shape[1], long_side)
    if (h, w) == image.shape[:2]:
        return image
    return np.array(Image.fromarray(image).resize((w, h), Image.Resampling.BILINEAR))


def scale_coords(
    coords: torch.Tensor, original_size: tuple[int, int], input_size: tuple[int, int]
) -> torch.Tensor:
    """(..., 2) (x, y) original-image pixels -> input-frame pixels."""
    scale = torch.tensor(
        [input_size[1] / original_size[1], input_size[0] / original_size[0]],
        dtype=coords.dtype,
        device=coords.device,
    )
    return coords * scale


@lru_cache(maxsize=64)
def _axis_matrix(low: int, up: int, keep: int, out: int) -> torch.Tensor:
    """(out, used) matrix of one axis of SAM's mask post-processing: bilinear upsampling from
    ``low`` to ``up`` cells, keeping the first ``keep`` (the unpadded input), then bilinear
    resizing to ``out``. Built by running F.interpolate on identity matrices, so it is exactly
    the operator of the two-step reference, without its (B, M, 1024, 1024) intermediate.
    Columns of low-res cells that only ever feed the padding are all zero and dropped: only the
    first ``used`` low-res cells contribute."""
    first = F.interpolate(
        torch.eye(low).view(1, 1, low, low), size=(up, low), mode="bilinear", align_corners=False
    )[0, 0, :keep]
    second = F.interpolate(
        torch.eye(keep).view(1, 1, keep, keep),
        size=(out, keep),
        mode="bilinear",
        align_corners=False,
    )[0, 0]
    matrix = second @ first
    used = int(matrix.abs().sum(0).nonzero().max()) + 1
    return matrix[:, :used].contiguous()


def upscale_logits(
    low_res: torch.Tensor,
    input_size: tuple[int, int],
    original_size: tuple[int, int],
    img_size: int = 1024,
    low_size: tuple[int, int] | None = None,
) -> torch.Tensor:
    """(B, M, 256, 256) low-res logits -> (B, M, H, W) logits at the original image size.

    Equal (to float rounding) to upsampling to img_size x img_size, cropping the padding and
    resizing to the original size, all bilinear; done as two small matrix products.
    ``low_size`` is the full low-res size when ``low_res`` holds only its top-left part (at
    least ``used_low_res(...)`` of it); by default ``low_res`` is whole.
    """
    low_h, low_w = low_size if low_size is not None else low_res.shape[-2:]
    rows = _axis_matrix(low_h, img_size, input_size[0], original_size[0]).to(low_res)
    cols = _axis_matrix(low_w, img_size, input_size[1], original_size[1]).to(low_res)
    used_h, used_w = rows.shape[1], cols.shape[1]
    x = low_res[..., :used_h, :used_w]
    out_h, out_w = original_size
    cols_first = used_h * out_w * (used_w + out_h)
    rows_first = out_h * used_w * (used_h + out_w)
    if cols_first <= rows_first:
        return rows @ (x @ cols.T)
    return (rows @ x) @ cols.T


def used_low_res(
    low_size: tuple[int, int],
    input_size: tuple[int, int],
    original_size: tuple[int, int],
    img_size: int = 1024,
) -> tuple[int, int]:
    """How many low-res rows and columns (from the top-left) reach the original-size logits at
    all: the rest only ever fed the padding."""
    rows = _axis_matrix(low_size[0], img_size, input_size[0], original_size[0])
    cols = _axis_matrix(low_size[1], img_size, input_size[1], original_size[1])
    return rows.shape[1], cols.shape[1]
