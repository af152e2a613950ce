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


@lru_cache(maxsize=64)
def _axis_band(low: int, up: int, keep: int, out: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``_axis_matrix`` stored by rows as its few non-zero entries: (taps, out) column indices
    and (taps, out) weights, a row with fewer taps padded with weight 0. Two bilinear steps give
    each output at most four (in practice three) low-res neighbours along an axis."""
    matrix = _axis_matrix(low, up, keep, out)
    nonzero = matrix != 0
    taps = max(1, int(nonzero.sum(dim=1).max()))
    # Stable sort puts each row's non-zero columns first, in column order.
    order = torch.sort(nonzero.to(torch.int8), dim=1, descending=True, stable=True).indices
    index = order[:, :taps]
    weight = torch.gather(matrix, 1, index) * torch.gather(nonzero, 1, index)
    return index.T.contiguous(), weight.T.contiguous()


def _resample_rows(x: torch.Tensor, index: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """out[..., r, :] = sum over taps t of weight[t, r] * x[..., index[t, r], :]: whole rows
    gathered and scaled, so every step runs over contiguous memory."""
    out = x.index_select(-2, index[0]) * weight[0, :, None]
    for tap in range(1, index.shape[0]):
        out.add_(x.index_select(-2, index[tap]) * weight[tap, :, None])
    return out


def upscale_logits(
    low_res: torch.Tensor,
    input_size: tuple[int, int],
    original_size: tuple[int, int],
    img_size: int = 1024,
    low_size: tuple[int, int] | None = None,
) -> torch.Tensor:
    """(B, M, 256, 256) low-res logits -> (B, M, H, W) logits at the original image size.

    Equal (to float rounding) to upsampling to img_size x img_size, cropping the padding and
    resizing to the original size, all bilinear. Each axis of that operator is a band of three
    taps per output, so it is applied as gathers of whole rows (the columns after one
    transpose) instead of dense matrix products: about a third of the time. The result is a
    transposed view, column-major in memory like COCO's RLE.
    ``low_size`` is the full low-res size when ``low_res`` holds only its top-left part (at
    least ``used_low_res(...)`` of it); by default ``low_res`` is whole.
    """
    low_h, low_w = low_size if low_size is not None else low_res.shape[-2:]
    row_index, row_weight = _axis_band(low_h, img_size, input_size[0], original_size[0])
    col_index, col_weight = _axis_band(low_w, img_size, input_size[1], original_size[1])
    device, dtype = low_res.device, low_res.dtype
    rows = _resample_rows(low_res, row_index.to(device), row_weight.to(device, dtype))
    columns = rows.transpose(-1, -2).contiguous()
    out = _resample_rows(columns, col_index.to(device), col_weight.to(device, dtype))
    return out.transpose(-1, -2)


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


# The logit a stored (binary) mask becomes as a mask prompt: +MASK_PROMPT_LOGIT where the mask
# covers a whole low-res cell, -MASK_PROMPT_LOGIT where it covers none, linear in between. Ten
# is a confident answer of the decoder itself (sigmoid(10) = 0.99995; SAM's low-res logits on a
# clear object sit around 5 to 20), so the decoder reads the prompt as "this mask, surely",
# while a boundary cell's partial coverage keeps where the edge runs inside it.
MASK_PROMPT_LOGIT = 10.0


def mask_prompt_logits(
    mask: np.ndarray,
    img_size: int = 1024,
    low_size: int = 256,
    magnitude: float = MASK_PROMPT_LOGIT,
) -> np.ndarray:
    """A binary mask in original-image pixels -> (1, low_size, low_size) float32 low-res logits,
    the frame of ``Prediction.low_res_logits``: the mask resized like the image (longest side
    ``img_size``), padded bottom/right to ``img_size`` square, averaged over each cell of
    ``img_size // low_size`` pixels, then the fraction covered f mapped to (2f - 1) * magnitude.
    The padding is background (-magnitude), as a mask never reaches there.
    Args:
        mask: (H, W) bool or 0/1 array.
    """
    if mask.ndim != 2 or 0 in mask.shape:
        raise ValueError(f"mask must be a non-empty (H, W) array, got shape {mask.shape}")
    h, w = resized_shape(mask.shape[0], mask.shape[1], img_size)
    # Pillow's box filter on 0/255 bytes is the area average without a float copy of a
    # photo-sized mask; the cells are then sums over whole blocks of bytes (NumPy: a fraction of
    # the time of a torch pooling over the padded square).
    resized = Image.fromarray(np.where(mask, 255, 0).astype(np.uint8)).resize(
        (w, h), Image.Resampling.BOX
    )
    cell = img_size // low_size
    rows, cols = -(-h // cell), -(-w // cell)
    blocks = np.zeros((rows * cell, cols * cell), np.uint32)
    blocks[:h, :w] = np.asarray(resized)
    fraction = np.zeros((low_size, low_size), np.float32)
    fraction[:rows, :cols] = blocks.reshape(rows, cell, cols, cell).sum(axis=(1, 3)) / (
        cell * cell * 255.0
    )
    return ((fraction * 2.0 - 1.0) * magnitude)[None].astype(np.float32)
