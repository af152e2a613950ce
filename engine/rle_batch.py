"""Many stored RLEs checked at once, for readers of millions of masks (exports, training data).

``engine.rle.checked`` parses one compressed counts string in a dozen NumPy calls: at about
0.1 ms a mask that is the whole cost of an SA-1B export (100 masks an image). Here the counts
strings of a batch are concatenated and parsed, summed and boxed by the same arithmetic in one
pass of array operations over all of them, with segment sums in place of per-string loops.

The answer is conservative: ``ok[i]`` means that ``rle.checked({"size": sizes[i], "counts":
counts[i]}, sizes[i])`` would return that very string unchanged (it is canonical), with area
``area[i]`` and box ``bbox[i]``. Anything else (a malformed string, a non-canonical one, an
empty one, a size out of range) is False, and the caller checks that mask with
``rle.checked``, which says what is wrong or gives the canonical form. The tests compare the
two on valid, re-encoded and corrupted RLEs.

No sum can wrap unnoticed: values longer than 7 characters mark their string undecided before
their magnitude matters (their shift is capped), every value of a decided string is below
2**35 in magnitude, a batch holds fewer than 2**27 values (larger batches are split), and the
segment sums are differences of running sums, exact modulo 2**64 and so exact whenever the
true sum fits, which the bounds ensure.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from engine.rle import _CHAR_BOUNDS, _MAX_CHARS_PER_VALUE, MAX_PIXELS

# Characters parsed in one pass: about 150 SA-1B-sized masks, enough that the per-call overhead
# is spread thin, few enough that the temporaries (~30 arrays of int64) stay in the CPU's cache:
# 2**16 checks a 440-character mask in ~10 us of CPU here, 2**18 in ~27 us.
MAX_BATCH_CHARS = 1 << 16
# _LIMITS[k]: the magnitudes k characters hold are below it (0 for none).
_LIMITS = np.concatenate(([0], _CHAR_BOUNDS)).astype(np.int64)


class BatchCheck(NamedTuple):
    """Per string: decided valid and canonical; foreground pixels; tight box [x, y, w, h]."""

    ok: np.ndarray  # bool (N,)
    area: np.ndarray  # int64 (N,)
    bbox: np.ndarray  # float64 (N, 4)


def plain_counts(rle: Any, size: tuple[int, int]) -> str | None:
    """The counts string of ``rle`` when it is exactly ``{"size": <size>, "counts": str}`` (what
    ``check_counts`` can decide), else None: the caller checks it with ``rle.checked``."""
    if (
        isinstance(rle, dict)
        and len(rle) == 2
        and rle.get("size") == list(size)
        and all(type(v) is int for v in rle["size"])
        and isinstance(rle.get("counts"), str)
    ):
        return rle["counts"]
    return None


def check_counts(counts: Sequence[object], sizes: Sequence[tuple[int, int]]) -> BatchCheck:
    """Check compressed counts strings against their masks' sizes ((h, w) each); see the
    module docstring for what ``ok`` promises."""
    n = len(counts)
    if len(sizes) != n:
        raise ValueError(f"{n} counts strings but {len(sizes)} sizes")
    ok, area, bbox = np.zeros(n, bool), np.zeros(n, np.int64), np.zeros((n, 4))
    start = 0
    while start < n:  # split so that one pass parses at most MAX_BATCH_CHARS characters
        stop, chars = start, 0
        while stop < n and (stop == start or chars < MAX_BATCH_CHARS):
            item = counts[stop]
            chars += len(item) if isinstance(item, str) else 0
            stop += 1
        part = _check(counts[start:stop], sizes[start:stop])
        ok[start:stop], area[start:stop], bbox[start:stop] = part
        start = stop
    return BatchCheck(ok, area, bbox)


def _check(counts: Sequence[object], sizes: Sequence[tuple[int, int]]) -> BatchCheck:
    n = len(counts)
    texts = [c if isinstance(c, str) and c.isascii() else "" for c in counts]
    lengths = np.fromiter(map(len, texts), np.int64, n)
    hw = np.array([_size_or_invalid(s) for s in sizes], np.int64).reshape(n, 2)
    h, pixels = hw[:, 0], hw[:, 0] * hw[:, 1]
    ok = (lengths > 0) & (h >= 0)
    area, bbox = np.zeros(n, np.int64), np.zeros((n, 4))
    chars = np.frombuffer("".join(texts).encode("ascii"), np.uint8)
    if chars.size == 0 or chars.size >= 1 << 27:
        return BatchCheck(np.zeros(n, bool), area, bbox)
    cum = np.cumsum(lengths)
    groups = chars - np.uint8(48)  # wraps below '0': anything outside the alphabet is > 63
    outside = groups > 63
    if outside.any():
        ok[np.searchsorted(cum, np.flatnonzero(outside), side="right")] = False
    # Within the alphabet, a group without the continuation bit ((c - 48) & 0x20) is c < 80.
    terminal = chars < 80
    nonempty = np.flatnonzero(lengths)
    lasts = cum[nonempty] - 1
    ok[nonempty[~terminal[lasts]]] = False  # truncated: its last value is cut off
    terminal[lasts] = True  # a value never runs on into the next string
    ends = np.flatnonzero(terminal)
    nvals = np.zeros(n, np.int64)
    nvals[nonempty] = np.diff(np.searchsorted(ends, lasts) + 1, prepend=0)
    vfirst = np.cumsum(nvals) - nvals
    vsid = np.repeat(np.arange(n), nvals)  # the string of each value
    k = np.arange(ends.size) - np.repeat(vfirst, nvals)  # its index in the string
    vstart = np.concatenate(([0], ends[:-1] + 1))
    vlen = ends - vstart + 1
    ok[vsid[vlen > _MAX_CHARS_PER_VALUE]] = False
    raw = (groups[vstart] & 0x1F).astype(np.int64)
    for j in range(1, _MAX_CHARS_PER_VALUE):  # the j-th group of each value that has one
        more = np.flatnonzero(vlen > j)
        if more.size == 0:
            break
        raw[more] += (groups[vstart[more] + j] & 0x1F).astype(np.int64) << (5 * j)
    negative = np.flatnonzero(groups[ends] & 0x10)
    raw[negative] -= np.left_shift(1, 5 * np.minimum(vlen[negative], _MAX_CHARS_PER_VALUE))
    # Canonical: each value in its fewest characters, i.e. its magnitude reaches the bound of
    # one character fewer (k characters hold magnitudes below _LIMITS[k]).
    magnitude = raw ^ (raw >> 63)  # v, or -v - 1 for a negative v
    longer = magnitude < _LIMITS[np.minimum(vlen, _MAX_CHARS_PER_VALUE) - 1]
    ok[vsid[longer]] = False

    runs = _runs(raw, k, vfirst, nvals)
    bad_run = (runs < 0) | (runs > pixels[vsid]) | ((k >= 1) & (runs == 0))  # no empty run
    ok[vsid[bad_run]] = False
    before = np.concatenate(([0], np.cumsum(runs)))  # exact modulo 2**64, see the docstring
    ok &= before[vfirst + nvals] - before[vfirst] == pixels
    ends_px = before[1:] - np.repeat(before[vfirst], nvals)  # where each run ends in its mask

    fg = np.flatnonzero(k & 1)
    if fg.size == 0:
        return BatchCheck(ok, area, bbox)
    fsid = vsid[fg]
    nfg = nvals // 2
    fg_before = np.concatenate(([0], np.cumsum(runs[fg])))
    fg_first = np.cumsum(nfg) - nfg
    area[:] = fg_before[fg_first + nfg] - fg_before[fg_first]
    hh = np.maximum(h[fsid], 1)
    last = ends_px[fg] - 1
    first = ends_px[fg - 1]
    x0, first_y = np.divmod(first, hh)
    x1, last_y = np.divmod(last, hh)
    has = np.flatnonzero(nfg)
    seg = fg_first[has]
    across = np.zeros(n, bool)
    across[fsid[x1 != x0]] = True
    y0 = np.where(across[has], 0, np.minimum.reduceat(first_y, seg))
    y1 = np.where(across[has], h[has] - 1, np.maximum.reduceat(last_y, seg))
    left, right = x0[seg], x1[seg + nfg[has] - 1]
    bbox[has] = np.stack([left, y0, right - left + 1, y1 - y0 + 1], axis=1)
    return BatchCheck(ok, area, bbox)


def _runs(raw: np.ndarray, k: np.ndarray, vfirst: np.ndarray, nvals: np.ndarray) -> np.ndarray:
    """Run lengths from parsed values: from a string's fourth value on, each is a delta from
    the run two places back, so a run is a sum over its string's values of its parity (odd
    places from the second, even places from the third). One running sum along each parity
    of the global index serves every string: a string's sums are differences of it."""
    chain = np.empty_like(raw)
    chain[0::2] = np.cumsum(raw[0::2])
    chain[1::2] = np.cumsum(raw[1::2])
    padded = np.concatenate(([0], chain))
    last = max(raw.size - 1, 0)
    odd_base = np.repeat(padded[vfirst], nvals)  # the chain just before the string's 2nd value
    even_base = np.repeat(chain[np.minimum(vfirst, last)], nvals)  # the string's 1st value
    runs = chain - np.where(k & 1, odd_base, even_base)
    first = k == 0
    runs[first] = raw[first]
    return runs


def _size_or_invalid(size: tuple[int, int]) -> tuple[int, int]:
    """(h, w) when within COCO RLE's bounds, else (-1, 0): undecided."""
    try:
        h, w = int(size[0]), int(size[1])
    except (TypeError, ValueError, IndexError, OverflowError):
        return -1, 0
    if h < 0 or w < 0 or h > MAX_PIXELS or w > MAX_PIXELS or h * w > MAX_PIXELS:
        return -1, 0
    return h, w
