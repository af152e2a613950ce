"""engine.rle_batch against engine.rle.checked, mask by mask: whatever the batch check passes,
the one-by-one check returns unchanged with the same area and box; every canonical valid RLE
passes; nothing malformed does."""

from __future__ import annotations

import numpy as np
import pytest

from engine import rle
from engine.rle_batch import check_counts


def _masks(rng: np.random.Generator, n: int) -> list[tuple[str, tuple[int, int]]]:
    out = []
    for i in range(n):
        h, w = int(rng.integers(1, 40)), int(rng.integers(1, 40))
        if i % 4 == 0:  # blocks: long runs, values of several characters
            mask = np.zeros((h, w), bool)
            mask[rng.integers(h) :, rng.integers(w) :] = True
        elif i % 4 == 1:
            mask = np.zeros((h, w), bool)  # empty, and (below) full
            mask[:] = bool(i % 8 == 1)
        else:
            mask = rng.random((h, w)) < rng.random()
        out.append((rle.encode(mask)["counts"], (h, w)))
    big = np.zeros((1500, 2250), bool)
    big[100:1400, 30:2000] = True  # runs over 2**15: values of four characters
    out.append((rle.encode(big)["counts"], (1500, 2250)))
    return out


def _corrupt(rng: np.random.Generator, counts: str, size: tuple[int, int]):
    """A damaged copy (or, once in a while, the RLE itself under another size)."""
    choice = int(rng.integers(7))
    if choice == 0 and counts:
        j = int(rng.integers(len(counts)))
        return counts[:j] + chr(int(rng.integers(33, 127))) + counts[j + 1 :], size
    if choice == 1:
        return counts[:-1], size  # truncated
    if choice == 2:
        return counts + "1", size  # a run too many
    if choice == 3:
        return counts + "o", size  # ends mid-value
    if choice == 4:
        return counts.replace("0", "P", 1), size  # a zero run spelt in two characters
    if choice == 5:
        return counts, (size[0] + 1, size[1])
    return counts + "é", size


def _agree(items: list[tuple[str, tuple[int, int]]]) -> np.ndarray:
    batch = check_counts([c for c, _ in items], [s for _, s in items])
    for i, (counts, size) in enumerate(items):
        try:
            valid = rle.checked({"size": list(size), "counts": counts}, size)
        except rle.RLEError:
            valid = None
        canonical = valid is not None and valid.rle["counts"] == counts
        assert bool(batch.ok[i]) == canonical, (i, counts, size)
        if canonical:
            assert int(batch.area[i]) == valid.area
            assert batch.bbox[i].tolist() == valid.bbox
    return batch.ok


def test_every_valid_canonical_rle_passes_with_its_area_and_box():
    items = _masks(np.random.default_rng(0), 400)
    assert _agree(items).all()


def test_damaged_rles_are_left_to_the_one_by_one_check():
    rng = np.random.default_rng(1)
    items = [_corrupt(rng, c, s) for c, s in _masks(rng, 400)]
    ok = _agree(items)
    assert (~ok).sum() > 300  # most damage makes an RLE invalid or not canonical


def test_valid_and_damaged_mixed_in_one_batch_do_not_disturb_each_other():
    rng = np.random.default_rng(2)
    items = []
    for counts, size in _masks(rng, 300):
        items.append((counts, size))
        items.append(_corrupt(rng, counts, size))
    ok = _agree(items)
    assert ok[0::2].all()


@pytest.mark.parametrize(
    "counts, size",
    [("", (2, 2)), ("0", (0, 0)), ("4", (2, 2)), ("04", (2, 2)), ("d", (300, 300))],
)
def test_edge_cases_agree(counts, size):
    _agree([(counts, size)])


def test_sizes_out_of_range_and_other_types_are_undecided():
    batch = check_counts(["4", "4", None, ["4"]], [(-2, -2), (2**32, 2), (2, 2), (2, 2)])
    assert not batch.ok.any()


def test_long_batches_split_and_agree():
    rng = np.random.default_rng(3)
    items = _masks(rng, 50) * 200  # more characters than one pass parses
    assert _agree(items).all()
