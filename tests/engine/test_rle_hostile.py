"""RLEs built to break a decoder: run lengths that wrap a 64-bit sum around to exactly h*w, runs
past 2**63, negative runs, over-long values, padded spellings. Each is refused with a message
naming what is wrong (or, for a harmless respelling, normalised) before any array is made."""

from __future__ import annotations

import numpy as np
import pytest

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
