"""COCO run-length encoding, the one mask format at every boundary of the engine.

An RLE is ``{"size": [h, w], "counts": str}``: run lengths of alternating 0s and 1s (starting
with 0s) over the mask read in column-major (Fortran) order, in pycocotools' compressed string.

Compressed strings from outside are parsed and checked here, in NumPy, before pycocotools sees
them: its C parser trusts its input and reads or writes out of bounds on malformed strings.
No sum can wrap around on the way: a run from outside is bounded by h*w before any is added up
(list counts as Python integers, compressed values by their length), and what passes is handed
on in canonical form (``validate``, ``checked``), the string pycocotools' own encoder writes for
the same pixels, so that every later reader parses exactly the runs checked here.
"""

from __future__ import annotations

import numbers
from typing import Any, NamedTuple

import numpy as np
from pycocotools import mask as mask_utils

# pycocotools keeps sizes and run lengths in 32-bit unsigned ints.
MAX_PIXELS = 2**32 - 1
# A value of the compressed string is a run length (<= MAX_PIXELS) or the difference of two
# (|d| <= MAX_PIXELS): 33 bits plus a sign fit in 7 characters of 5 bits. Longer values are
# refused before any arithmetic, so every parsed value is below 2**35 in magnitude; each partial
# sum of the deltas is itself a run, checked against h*w, so none can wrap unnoticed.
_MAX_CHARS_PER_VALUE = 7
# Values of a compressed string parsed at a time: the per-character arithmetic's temporaries
# stay a few megabytes however long the string is.
_PARSE_BLOCK = 1 << 16
# k characters hold the values -2**(5k-1) .. 2**(5k-1) - 1.
_CHAR_BOUNDS = np.array([1 << (5 * k - 1) for k in range(1, _MAX_CHARS_PER_VALUE)], np.int64)


class RLEError(ValueError):
    """An RLE that is malformed or does not fit the image; the message says what is wrong."""


class CheckedRLE(NamedTuple):
    """An RLE from outside, or read back from storage, after ``checked``: the canonical RLE
    (what pycocotools' own encoder writes for the same pixels), its foreground pixel count and
    its tight box [x, y, w, h] (within the image by construction)."""

    rle: dict[str, Any]
    area: int
    bbox: list[float]


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


def _short(n: int) -> str:
    """An integer of any size for a message (str() refuses more than 4300 digits)."""
    return str(n) if n.bit_length() <= 128 else f"{'-' if n < 0 else ''}2**{n.bit_length() - 1}+"


def _brief(value: object, limit: int = 60) -> str:
    """Any value from outside for a message: its repr, cut short."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # an int of over 4300 digits, a deeply nested list
        return f"a {type(value).__name__}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _parse_size(size: object) -> tuple[int, int]:
    if not isinstance(size, list | tuple) or len(size) != 2:
        raise RLEError(f'RLE "size" must be [height, width], got {_brief(size)}')
    if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in size):
        raise RLEError(f'RLE "size" must hold two integers, got {_brief(size)}')
    h, w = int(size[0]), int(size[1])
    if h < 0 or w < 0:
        raise RLEError(f'RLE "size" must not be negative, got [{_short(h)}, {_short(w)}]')
    if h > MAX_PIXELS or w > MAX_PIXELS:  # even when the other is 0
        raise RLEError(f'RLE "size" [{_short(h)}, {_short(w)}] has a side over {MAX_PIXELS} pixels')
    if h * w > MAX_PIXELS:
        raise RLEError(f"RLE size {h}x{w} is more pixels than COCO RLE can hold ({MAX_PIXELS})")
    return h, w


def _parse_counts_string(counts: str, max_runs: int) -> np.ndarray:
    """Run lengths (int64, possibly negative when malformed) from a compressed counts string of
    at most ``max_runs`` values.

    Each value is written as 5-bit groups, least significant first, one character per group:
    char = 48 + (group | 0x20 if more groups follow); the last group's 0x10 bit is the sign.
    Values from index 3 on are deltas from the run length two places back.
    Memory: about 20 bytes a value, whatever the string holds (values are parsed in blocks).
    """
    if not counts:
        return np.zeros(0, np.int64)
    if len(counts) > _MAX_CHARS_PER_VALUE * max_runs:
        raise RLEError(
            f"RLE counts is {len(counts)} characters long, more than {max_runs} runs of at most "
            f"{_MAX_CHARS_PER_VALUE} characters can be"
        )
    if not counts.isascii():
        pos = next(i for i, ch in enumerate(counts) if not ch.isascii())
        raise RLEError(f"RLE counts has character {counts[pos]!r} at position {pos}, not ASCII")
    chars = np.frombuffer(counts.encode("ascii"), np.uint8)
    bad = (chars < 48) | (chars > 111)
    if bad.any():
        pos = int(np.argmax(bad))
        raise RLEError(
            f"RLE counts has character {counts[pos]!r} at position {pos}, outside the "
            "compressed-RLE alphabet '0'..'o'"
        )
    del bad
    chars = chars - 48  # uint8: 0..63
    last_groups = (chars & 0x20) == 0  # groups without the continuation bit end a value
    if not last_groups[-1]:
        raise RLEError("RLE counts is truncated: its last value is cut off mid-way")
    if np.count_nonzero(last_groups) > max_runs:
        raise RLEError(f"RLE counts holds more than {max_runs} runs, more than the mask can hold")
    ends = np.flatnonzero(last_groups)
    del last_groups
    values = np.empty(ends.size, np.int64)
    for lo in range(0, ends.size, _PARSE_BLOCK):
        values[lo : lo + _PARSE_BLOCK] = _parse_values(chars, ends, lo)
    values[1::2] = np.cumsum(values[1::2])  # odd runs: deltas from 1, 3, 5, ...
    values[2::2] = np.cumsum(values[2::2])  # even runs from index 2: deltas from 2, 4, ...
    return values


def _parse_values(chars: np.ndarray, ends: np.ndarray, lo: int) -> np.ndarray:
    """The values ending at ``ends[lo : lo + _PARSE_BLOCK]`` (raw: before the deltas)."""
    block_ends = ends[lo : lo + _PARSE_BLOCK]
    first = int(ends[lo - 1]) + 1 if lo else 0
    groups = chars[first : int(block_ends[-1]) + 1].astype(np.int64)
    stops = block_ends - first
    starts = np.concatenate(([0], stops[:-1] + 1))
    lengths = stops - starts + 1
    if int(lengths.max()) > _MAX_CHARS_PER_VALUE:
        pos = first + int(starts[np.argmax(lengths)])
        raise RLEError(f"RLE counts has an impossibly long value at position {pos}")
    shift = 5 * (np.arange(groups.size) - np.repeat(starts, lengths))
    values = np.add.reduceat((groups & 0x1F) << shift, starts)
    negative = (groups[stops] & 0x10) != 0
    values[negative] -= np.left_shift(1, 5 * lengths[negative])  # sign-extend
    return values


def _check_runs(runs: np.ndarray, h: int, w: int) -> None:
    """Run lengths checked so that no sum can wrap: at most h*w + 1 of them (a leading empty
    run, then at most one per pixel), each within 0..h*w *before* anything is added up; then
    their total, below 2**64 by those bounds and so exact in uint64, must be h*w."""
    if runs.size > h * w + 1:
        raise RLEError(f"RLE has {runs.size} runs, more than a {h}x{w} mask can hold")
    if runs.size and int(runs.min()) < 0:
        idx = int(np.argmax(runs < 0))
        raise RLEError(f"RLE counts decodes to a negative run length {int(runs[idx])} at run {idx}")
    if runs.size and int(runs.max()) > h * w:
        idx = int(np.argmax(runs > h * w))
        raise RLEError(
            f"RLE run {idx} is {int(runs[idx])} pixels long, more than the {h}x{w} mask holds"
        )
    total = int(runs.sum(dtype=np.uint64))
    if total != h * w:
        raise RLEError(f"RLE run lengths sum to {total}, but size {[h, w]} has {h * w} pixels")


def _list_runs(counts: list, h: int, w: int) -> np.ndarray:
    """Uncompressed counts checked as Python integers (any size) before NumPy sees them."""
    if len(counts) > h * w + 1:
        raise RLEError(f"RLE has {len(counts)} runs, more than a {h}x{w} mask can hold")
    for i, v in enumerate(counts):
        if not isinstance(v, numbers.Integral) or isinstance(v, bool):
            raise RLEError(
                f"uncompressed RLE counts must be a list of integers; run {i} is {_brief(v)}"
            )
        run = int(v)
        if run < 0:
            raise RLEError(f"RLE counts decodes to a negative run length {_short(run)} at run {i}")
        if run > h * w:
            raise RLEError(
                f"RLE run {i} is {_short(run)} pixels long, more than the {h}x{w} mask holds"
            )
    runs = np.asarray(counts, dtype=np.int64).reshape(-1)
    _check_runs(runs, h, w)
    return runs


def _canonical_runs(runs: np.ndarray) -> np.ndarray:
    """The runs pycocotools' encoder writes for the same pixels: empty runs after the first
    (which alone may be empty: the mask starts with foreground) merged into their neighbours.
    Returns ``runs`` itself when there is none."""
    if runs.size < 2 or bool(runs[1:].all()):
        return runs
    keep = runs > 0
    keep[0] = True
    kept, colour = runs[keep], (np.arange(runs.size) % 2)[keep]
    starts = np.flatnonzero(np.concatenate(([True], colour[1:] != colour[:-1])))
    return np.add.reduceat(kept, starts)


def _is_canonical(counts: str, runs: np.ndarray) -> bool:
    """Whether ``counts`` spells ``runs`` the way pycocotools writes them (every value in its
    fewest characters). Anything else (padded values, say) is re-encoded before it is stored or
    handed on, so that any reader parses exactly the runs checked here."""
    values = runs.copy()
    values[3:] -= runs[1:-2]  # values from index 3 on are deltas from two places back
    magnitude = values ^ (values >> 63)  # v, or -v - 1 for a negative v
    # A value needs one character more than k while its magnitude reaches the k-th bound.
    chars = values.size + int(np.searchsorted(_CHAR_BOUNDS, magnitude, side="right").sum())
    return chars == len(counts)


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
    """(the canonical RLE, its canonical runs), or RLEError."""
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
        parsed = _parse_counts_string(counts, max_runs=h * w + 1)
        _check_runs(parsed, h, w)
        runs = _canonical_runs(parsed)
        if runs is not parsed or not _is_canonical(counts, runs):
            counts = _runs_to_string(runs)
    elif isinstance(counts, list):
        runs = _canonical_runs(_list_runs(counts, h, w))
        counts = _runs_to_string(runs)
    else:
        raise RLEError(
            f"RLE counts must be a compressed string or a list of run lengths, "
            f"got {type(counts).__name__}"
        )
    return {"size": [h, w], "counts": counts}, runs


def validate(rle: object, expected_size: tuple[int, int] | None = None) -> dict[str, Any]:
    """Check an RLE from outside and return it in canonical form: {"size": [h, w], "counts":
    str} as pycocotools' encoder writes the same pixels (so that any later reader parses
    exactly the runs checked here).

    Accepts compressed counts (str, or the bytes pycocotools returns) and uncompressed counts
    (a list of non-negative run lengths, converted to the compressed string). No sum can wrap
    around: each run is checked against h*w before any is added up (list counts as Python
    integers of any size, compressed values of at most 7 characters).
    Args:
        expected_size: (height, width) the mask must have, e.g. its image's size.
    Raises:
        RLEError: what is wrong, e.g. a missing key, a bad size, a size other than
            ``expected_size``, an invalid character, a truncated or over-long value, a negative
            run, a run longer than the mask, or run lengths that do not add up to h * w.
    """
    return _validate(rle, expected_size)[0]


def checked(rle: object, expected_size: tuple[int, int]) -> CheckedRLE:
    """``validate``, ``area`` and ``bbox_xywh`` in one parse, for every way in (the API,
    imports) and for readers of stored masks that must not trust them (exports, training
    data, ``check_masks``).

    Raises:
        RLEError: as ``validate``.
    """
    valid, runs = _validate(rle, expected_size)
    return CheckedRLE(valid, int(runs[1::2].sum()), _bbox(runs, valid["size"][0]))


def _bbox(runs: np.ndarray, h: int) -> list[float]:
    """Tight [x, y, w, h] of canonical runs (no empty foreground run) of a mask h pixels tall."""
    ends = np.cumsum(runs)  # at most h*w: exact in int64
    last = ends[1::2] - 1  # last pixel of each foreground run, column-major
    if last.size == 0:
        return [0.0, 0.0, 0.0, 0.0]
    first = ends[0::2][: last.size]  # and its first: where the background run before it ends
    x0, x1 = first // h, last // h
    if bool((x1 != x0).any()):  # a run across a column's end covers its bottom and next top
        y0, y1 = 0, h - 1
    else:
        y0, y1 = int((first % h).min()), int((last % h).max())
    left, right = int(x0[0]), int(x1[-1])  # runs come in pixel order
    return [float(left), float(y0), float(right - left + 1), float(y1 - y0 + 1)]


def _to_coco(rle: dict[str, Any]) -> dict[str, Any]:
    return {"size": rle["size"], "counts": rle["counts"].encode("ascii")}


def decode(rle: object, expected_size: tuple[int, int] | None = None) -> np.ndarray:
    """The mask of an RLE (validated first, against ``expected_size`` when given) as a
    C-contiguous bool array (H, W). Allocates the H*W mask and arrays the size of the runs,
    nothing more, whatever the input."""
    valid, runs = _validate(rle, expected_size)
    h, w = valid["size"]
    values = np.zeros(runs.size, bool)
    values[1::2] = True  # runs alternate 0s and 1s, starting with 0s
    column_major = np.repeat(values, runs)
    return np.ascontiguousarray(column_major.reshape(w, h).T)


def area(rle: object) -> int:
    """Number of foreground pixels."""
    runs = _validate(rle, None)[1]
    return int(runs[1::2].sum())


def bbox_xywh(rle: object) -> list[float]:
    """Tight box around the foreground as [x, y, w, h] in pixels (x right, y down, w and h in
    whole pixels); [0, 0, 0, 0] for an empty mask. The same as pycocotools' ``toBbox``."""
    valid, runs = _validate(rle, None)
    return _bbox(runs, valid["size"][0])


def iou(a: object, b: object) -> float:
    """Intersection over union of two masks of the same size; 0.0 when both are empty."""
    va = validate(a)
    vb = validate(b, expected_size=tuple(va["size"]))
    if va["size"][0] * va["size"][1] == 0:
        return 0.0
    return float(mask_utils.iou([_to_coco(va)], [_to_coco(vb)], [0])[0, 0])


def iou_matrix(a: list[object], b: list[object]) -> np.ndarray:
    """IoU of every mask of ``a`` with every mask of ``b`` (all of one size), float64 (len(a),
    len(b)); an empty side gives an empty matrix."""
    if not a or not b:
        return np.zeros((len(a), len(b)))
    size = tuple(validate(a[0])["size"])
    left = [_to_coco(validate(rle, expected_size=size)) for rle in a]
    right = [_to_coco(validate(rle, expected_size=size)) for rle in b]
    return np.asarray(mask_utils.iou(left, right, [0] * len(right)), dtype=np.float64)


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
