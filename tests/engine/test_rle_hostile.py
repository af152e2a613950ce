"""RLEs built to break a decoder: run lengths that wrap a 64-bit sum around to exactly h*w, runs
past 2**63, negative runs, over-long values, padded spellings. Each is refused with a message
naming what is wrong (or, for a harmless respelling, normalised) before any array is made; and
what passes is canonical, with an area and a box inside the image."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from engine import rle
from engine.rle import RLEError

H, W = 6, 5


def wrapping_runs() -> list[int]:
    """Runs whose sum is 2**64 + H*W: an int64 or uint64 sum reads it as exactly H*W."""
    return [0, 2**63, 2**63, H * W]


def test_a_sum_that_wraps_around_to_h_times_w_is_refused_as_a_list():
    runs = wrapping_runs()
    assert sum(runs) % 2**64 == H * W

    with pytest.raises(RLEError, match="run 1 is 9223372036854775808 pixels long"):
        rle.validate({"size": [H, W], "counts": runs}, expected_size=(H, W))


def test_a_sum_that_wraps_around_is_refused_as_a_compressed_string():
    counts = rle._runs_to_string(wrapping_runs())

    with pytest.raises(RLEError, match="impossibly long value"):
        rle.decode({"size": [H, W], "counts": counts})


def test_seven_character_runs_that_would_wrap_a_32_bit_sum_are_refused():
    # Each run fits in 7 characters (< 2**35) but exceeds the mask: caught per run, not by a sum.
    counts = rle._runs_to_string([0, 2**32 - 1, 2**32 - 1, 2])

    with pytest.raises(RLEError, match="more than the 6x5 mask holds"):
        rle.area({"size": [H, W], "counts": counts})


@pytest.mark.parametrize("huge", [2**63, 2**64, 10**40, -(2**63) - 1])
def test_runs_beyond_64_bits_are_an_rle_error_not_an_overflow(huge):
    with pytest.raises(RLEError):
        rle.validate({"size": [H, W], "counts": [huge, H * W]})


def test_more_runs_than_pixels_are_refused():
    with pytest.raises(RLEError, match="more than a 6x5 mask can hold"):
        rle.validate({"size": [H, W], "counts": [0] * (H * W + 5) + [H * W]})


def test_a_padded_spelling_is_stored_in_the_canonical_form():
    mask = np.zeros((H, W), bool)
    mask[1:4, 2:4] = True
    canonical = rle.encode(mask)["counts"]
    first = ord(canonical[0]) - 48
    assert first < 16  # one character holding a small positive run
    padded = chr(48 + (first | 0x20)) + "0" + canonical[1:]  # same value in two characters

    normalised = rle.validate({"size": [H, W], "counts": padded})

    assert normalised["counts"] == canonical
    assert np.array_equal(rle.decode({"size": [H, W], "counts": padded}), mask)


def test_a_valid_mask_keeps_its_own_string():
    mask = np.random.default_rng(1).random((40, 30)) > 0.5
    encoded = rle.encode(mask)

    assert rle.validate(encoded)["counts"] is encoded["counts"]


def test_a_compressed_string_with_more_runs_than_pixels_is_refused_before_parsing():
    counts = "0" * (H * W + 5) + rle._runs_to_string([H * W])

    with pytest.raises(RLEError, match="more than 31 runs"):
        rle.validate({"size": [H, W], "counts": counts})
    with pytest.raises(RLEError, match="characters long"):
        rle.validate({"size": [H, W], "counts": "0" * 7 * (H * W + 2)})


@pytest.mark.parametrize(
    "size", [[10**400, 0], [0, 2**64], [-(10**5000), 3], [2**32, 1], [65536, 65536]]
)
def test_sizes_beyond_what_rle_holds_are_refused_whatever_the_other_side(size):
    with pytest.raises(RLEError, match='RLE "size"|more pixels than COCO RLE can hold'):
        rle.decode({"size": size, "counts": ""})


def test_messages_stay_short_for_numbers_python_cannot_print():
    # str() refuses integers of over 4300 digits: the message must not raise instead.
    with pytest.raises(RLEError, match=r"run 0 is 2\*\*16609\+ pixels long"):
        rle.validate({"size": [H, W], "counts": [10**5000, H * W]})
    with pytest.raises(RLEError, match="must hold two integers") as caught:
        rle.validate({"size": [H, [[1] * 10_000]], "counts": ""})
    assert len(str(caught.value)) < 120


def test_decoding_a_hostile_rle_allocates_nothing_like_its_claimed_size():
    # A 65535 x 65535 mask would be 4 GB; its runs wrap a 64-bit sum around to h*w.
    side = 65535
    counts = rle._runs_to_string([0, 2**63, 2**63, side * side])
    tracemalloc.start()
    try:
        with pytest.raises(RLEError):
            rle.decode({"size": [side, side], "counts": counts})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


def test_decoding_allocates_the_mask_and_a_few_bytes_a_run():
    mask = np.random.default_rng(2).random((600, 500)) < 0.5  # about 150,000 runs
    encoded = rle.encode(mask)
    chars = len(encoded["counts"])  # at least one a run
    tracemalloc.start()
    try:
        decoded = rle.decode(encoded)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert np.array_equal(decoded, mask)
    assert peak < 2 * mask.size + 40 * chars


def test_empty_runs_inside_the_counts_are_merged_into_the_canonical_form():
    mask = np.zeros((H, W), bool)
    mask[4:, 1] = mask[:3, 2] = True  # pixels 10..14 in column-major order
    canonical = rle.encode(mask)
    for runs in ([0, 0, 10, 5, 15], [10, 5, 0, 0, 15, 0], [10, 2, 0, 3, 15]):
        for counts in (runs, rle._runs_to_string(runs)):
            checked = rle.checked({"size": [H, W], "counts": counts}, expected_size=(H, W))

            assert checked.rle == canonical, runs
            assert (checked.area, checked.bbox) == (5, [1.0, 0.0, 2.0, 6.0])


def test_checked_area_and_box_equal_pycocotools_and_stay_inside_the_image():
    rng = np.random.default_rng(8)
    for shape in [(1, 1), (7, 1), (1, 9), (6, 5), (40, 30), (3, 200)]:
        for density in (0.002, 0.05, 0.5, 0.98):
            mask = rng.random(shape) < density
            encoded = rle.encode(mask)

            checked = rle.checked(encoded, expected_size=shape)

            coco = {"size": encoded["size"], "counts": encoded["counts"].encode()}
            assert checked.area == int(mask_utils.area(coco)) == int(mask.sum())
            assert checked.bbox == [float(v) for v in mask_utils.toBbox(coco)]
            x, y, w, h = checked.bbox
            assert 0 <= x and 0 <= y and x + w <= shape[1] and y + h <= shape[0]


def test_decode_checks_the_expected_size():
    encoded = rle.encode(np.ones((H, W), bool))

    assert rle.decode(encoded, expected_size=(H, W)).all()
    with pytest.raises(RLEError, match="does not match the expected size"):
        rle.decode(encoded, expected_size=(W, H))
