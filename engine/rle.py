"""COCO run-length encoding, the one mask format at every boundary of the engine.

An RLE is ``{"size": [h, w], "counts": str}``: run lengths of alternating 0s and 1s (starting
with 0s) over the mask read in column-major (Fortran) order, in pycocotools' compressed string.

Compressed strings from outside are parsed and checked here, in NumPy, before pycocotools sees
them: its C parser trusts its input and reads or writes out of bounds on malformed strings.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

# pycocotools keeps sizes and run lengths in 32-bit unsigned ints.
MAX_PIXELS = 2**32 - 1
# A value of the compressed string is a run length (<= MAX_PIXELS) or the difference of two
# (|d| <= MAX_PIXELS): 33 bits plus a sign fit in 7 characters of 5 bits. Longer values are
# refused before any arithmetic, so every parsed value is below 2**35 in magnitude and no sum
# over a string of at most 2**28 values can leave int64.
_MAX_CHARS_PER_VALUE = 7


class RLEError(ValueError):
    """An RLE that is malformed or does not fit the image; the message says what is wrong."""


def encode(mask: np.ndarray) -> dict[str, Any]:
    """COCO RLE of one mask.

    Args:
        mask: bool or integer array (H, W); any non-zero value is foreground.
    Returns:
        {"size": [H, W], "counts": str}.
    Raises:
        RLEError: not a 2-D bool/integer array, or more than 2**32 - 1 pixels.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise RLEError(f"mask must be 2-D (H, W), got shape {mask.shape}")
    return encode_batch(mask[None])[0]


def encode_batch(masks: np.ndarray) -> list[dict[str, Any]]:
    """COCO RLEs of N masks of one size in a single pycocotools call.

    Args:
        masks: bool or integer array (N, H, W); any non-zero value is foreground.
    Returns:
        N dicts {"size": [H, W], "counts": str}, in order.
    """
    masks = np.asarray(masks)
    if masks.ndim != 3:
        raise RLEError(f"masks must be 3-D (N, H, W), got shape {masks.shape}")
    if masks.dtype != bool and not np.issubdtype(masks.dtype, np.integer):
        raise RLEError(f"masks must be bool or integer, got {masks.dtype}; threshold them first")
    n, h, w = masks.shape
    if h * w > MAX_PIXELS:
        raise RLEError(f"a {h}x{w} mask has more pixels than COCO RLE can hold ({MAX_PIXELS})")
    if n == 0:
        return []
    # pycocotools wants (H, W, N) uint8 holding only 0 and 1, column-major.
    fortran = np.asfortranarray((masks != 0).transpose(1, 2, 0), dtype=np.uint8)
    return [
        {"size": [int(h), int(w)], "counts": r["counts"].decode("ascii")}
        for r in mask_utils.encode(fortran)
    ]


def _parse_size(size: object) -> tuple[int, int]:
    if not isinstance(size, list | tuple) or len(size) != 2:
        raise RLEError(f'RLE "size" must be [height, width], got {size!r}')
    if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in size):
        raise RLEError(f'RLE "size" must hold two integers, got {size!r}')
    h, w = int(size[0]), int(size[1])
    if h < 0 or w < 0:
        raise RLEError(f'RLE "size" must not be negative, got {[h, w]}')
    if h * w > MAX_PIXELS:
        raise RLEError(f"RLE size {h}x{w} is more pixels than COCO RLE can hold ({MAX_PIXELS})")
    return h, w


def _parse_counts_string(counts: str) -> np.ndarray:
    """Run lengths (int64, possibly negative when malformed) from a compressed counts string.

    Each value is written as 5-bit groups, least significant first, one character per group:
    char = 48 + (group | 0x20 if more groups follow); the last group's 0x10 bit is the sign.
    Values from index 3 on are deltas from the run length two places back.
    """
    if not counts:
        return np.zeros(0, np.int64)
    if not counts.isascii():
        pos = next(i for i, ch in enumerate(counts) if not ch.isascii())
        raise RLEError(f"RLE counts has character {counts[pos]!r} at position {pos}, not ASCII")
    chars = np.frombuffer(counts.encode("ascii"), np.uint8).astype(np.int64) - 48
    bad = (chars < 0) | (chars > 63)
    if bad.any():
        pos = int(np.argmax(bad))
        raise RLEError(
            f"RLE counts has character {counts[pos]!r} at position {pos}, outside the "
            "compressed-RLE alphabet '0'..'o'"
        )
    ends = np.flatnonzero((chars & 0x20) == 0)  # groups without the continuation bit
    if ends.size == 0 or ends[-1] != chars.size - 1:
        raise RLEError("RLE counts is truncated: its last value is cut off mid-way")
    starts = np.concatenate(([0], ends[:-1] + 1))
    lengths = ends - starts + 1
    if int(lengths.max()) > _MAX_CHARS_PER_VALUE:
        pos = int(starts[np.argmax(lengths)])
        raise RLEError(f"RLE counts has an impossibly long value at position {pos}")
    shift = 5 * (np.arange(chars.size) - np.repeat(starts, lengths))
    values = np.add.reduceat((chars & 0x1F) << shift, starts)
    negative = (chars[ends] & 0x10) != 0
    values[negative] -= np.left_shift(1, 5 * lengths[negative])  # sign-extend
    runs = values.copy()
    runs[1::2] = np.cumsum(values[1::2])  # odd runs: deltas from 1, 3, 5, ...
    runs[2::2] = np.cumsum(values[2::2])  # even runs from index 2: deltas from 2, 4, ...
    return runs


def _check_runs(runs: np.ndarray, h: int, w: int) -> None:
    """Each run within 0..h*w *before* summing (so the int64 sum, at most len * h*w, cannot
    wrap), then the total exactly h*w."""
    if runs.size and int(runs.min()) < 0:
        idx = int(np.argmax(runs < 0))
        raise RLEError(f"RLE counts decodes to a negative run length {int(runs[idx])} at run {idx}")
    if runs.size and int(runs.max()) > h * w:
        idx = int(np.argmax(runs > h * w))
        raise RLEError(
            f"RLE run {idx} is {int(runs[idx])} pixels long, more than the {h}x{w} mask holds"
        )
    total = int(runs.sum())
    if total != h * w:
        raise RLEError(f"RLE run lengths sum to {total}, but size {[h, w]} has {h * w} pixels")


def _list_runs(counts: list, h: int, w: int) -> np.ndarray:
    """Uncompressed counts checked as Python integers (any size) before NumPy sees them."""
    for i, v in enumerate(counts):
        if not isinstance(v, numbers.Integral) or isinstance(v, bool):
            raise RLEError(
                f"uncompressed RLE counts must be a list of integers; run {i} is {v!r:.40}"
            )
        if v < 0:
            raise RLEError(f"RLE counts decodes to a negative run length {str(v)[:40]} at run {i}")
        if v > h * w:
            raise RLEError(
                f"RLE run {i} is {str(v)[:40]} pixels long, more than the {h}x{w} mask holds"
            )
    if len(counts) > h * w + 1:  # more runs than pixels (+1 for a leading empty run)
        raise RLEError(f"RLE has {len(counts)} runs, more than a {h}x{w} mask can hold")
    runs = np.asarray(counts, dtype=np.int64)
    _check_runs(runs, h, w)
    return runs


def _is_canonical(counts: str, runs: np.ndarray) -> bool:
    """Whether ``counts`` spells ``runs`` the way pycocotools writes them (every value in its
    fewest characters). Anything else (padded values, say) is re-encoded before it is stored or
    handed on, so that any reader parses exactly the runs checked here."""
    values = runs.copy()
    values[3:] -= runs[1:-2]  # values from index 3 on are deltas from two places back
    chars = np.ones(values.size, np.int64)
    for k in range(1, _MAX_CHARS_PER_VALUE):
        half = 1 << (5 * k - 1)  # k characters hold -half .. half - 1
        chars += (values < -half) | (values >= half)
    return int(chars.sum()) == len(counts)


def _runs_to_string(runs: list[int] | np.ndarray) -> str:
    """Compressed counts string of run lengths (the inverse of ``_parse_counts_string``)."""
    out = []
    for i, run in enumerate(runs):
        x = int(run) - (int(runs[i - 2]) if i > 2 else 0)
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = x != -1 if c & 0x10 else x != 0
            out.append(chr(48 + (c | 0x20 if more else c)))
    return "".join(out)


def _validate(rle: object, expected_size: tuple[int, int] | None) -> tuple[dict, np.ndarray]:
    if not isinstance(rle, dict):
        raise RLEError(f"RLE must be a dict with 'size' and 'counts', got {type(rle).__name__}")
    for key in ("size", "counts"):
        if key not in rle:
            raise RLEError(f"RLE is missing {key!r}")
    h, w = _parse_size(rle["size"])
    if expected_size is not None and (h, w) != tuple(expected_size):
        raise RLEError(f"RLE size {[h, w]} does not match the expected size {list(expected_size)}")
    counts = rle["counts"]
    if isinstance(counts, bytes):  # what pycocotools itself returns
        counts = counts.decode("ascii", errors="replace")
    if isinstance(counts, str):
        runs = _parse_counts_string(counts)
        _check_runs(runs, h, w)
        if not _is_canonical(counts, runs):
            counts = _runs_to_string(runs)
    elif isinstance(counts, list):
        runs = _list_runs(counts, h, w)
        counts = _runs_to_string(runs)
    else:
        raise RLEError(
            f"RLE counts must be a compressed string or a list of run lengths, "
            f"got {type(counts).__name__}"
        )
    return {"size": [h, w], "counts": counts}, runs


def validate(rle: object, expected_size: tuple[int, int] | None = None) -> dict[str, Any]:
    """Check an RLE from outside and return it normalised as {"size": [h, w], "counts": str}.

    Accepts compressed counts (str, or the bytes pycocotools returns) and uncompressed counts
    (a list of non-negative run lengths, converted to the compressed string).
    Args:
        expected_size: (height, width) the mask must have, e.g. its image's size.
    Raises:
        RLEError: what is wrong, e.g. a missing key, a bad size, a size other than
            ``expected_size``, an invalid character, a truncated value, a negative run or run
            lengths that do not add up to h * w.
    """
    return _validate(rle, expected_size)[0]


def checked(rle: object, expected_size: tuple[int, int]) -> tuple[dict[str, Any], int]:
    """``validate`` and ``area`` in one parse, for readers of stored masks that must not trust
    them (exports, training data): (the normalised RLE, its foreground pixel count).

    Raises:
        RLEError: as ``validate``.
    """
    valid, runs = _validate(rle, expected_size)
    return valid, int(runs[1::2].sum())


def _to_coco(rle: dict[str, Any]) -> dict[str, Any]:
    return {"size": rle["size"], "counts": rle["counts"].encode("ascii")}


def decode(rle: object) -> np.ndarray:
    """The mask of an RLE (validated first) as a C-contiguous bool array (H, W)."""
    valid, runs = _validate(rle, None)
    h, w = valid["size"]
    values = np.arange(runs.size) % 2 == 1  # runs alternate 0s and 1s, starting with 0s
    column_major = np.repeat(values, runs)
    return np.ascontiguousarray(column_major.reshape(w, h).T)


def area(rle: object) -> int:
    """Number of foreground pixels."""
    runs = _validate(rle, None)[1]
    return int(runs[1::2].sum())


def bbox_xywh(rle: object) -> list[float]:
    """Tight box around the foreground as [x, y, w, h] in pixels (x right, y down, w and h in
    whole pixels); [0, 0, 0, 0] for an empty mask."""
    valid = validate(rle)
    if valid["size"][0] * valid["size"][1] == 0:
        return [0.0, 0.0, 0.0, 0.0]
    return [float(v) for v in mask_utils.toBbox(_to_coco(valid))]


def iou(a: object, b: object) -> float:
    """Intersection over union of two masks of the same size; 0.0 when both are empty."""
    va = validate(a)
    vb = validate(b, expected_size=tuple(va["size"]))
    if va["size"][0] * va["size"][1] == 0:
        return 0.0
    return float(mask_utils.iou([_to_coco(va)], [_to_coco(vb)], [0])[0, 0])


def mask_stats(masks: np.ndarray) -> tuple[list[int], list[list[float]]]:
    """Areas and ``bbox_xywh`` boxes of (N, H, W) masks computed from the pixels, for masks the
    caller has in hand (cheaper than re-reading their RLE; the same numbers)."""
    masks = np.asarray(masks, dtype=bool)
    areas = masks.sum(axis=(1, 2)).tolist()
    rows = np.asarray(masks.any(axis=2))
    cols = np.asarray(masks.any(axis=1))
    boxes = []
    for row, col, n in zip(rows, cols, areas, strict=True):
        if n == 0:
            boxes.append([0.0, 0.0, 0.0, 0.0])
            continue
        y0, y1 = int(row.argmax()), len(row) - int(row[::-1].argmax())
        x0, x1 = int(col.argmax()), len(col) - int(col[::-1].argmax())
        boxes.append([float(x0), float(y0), float(x1 - x0), float(y1 - y0)])
    return [int(a) for a in areas], boxes
