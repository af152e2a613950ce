"""Hungarian matching of masks on IoU, with figures known exactly."""

from __future__ import annotations

import numpy as np
import pytest

from annotation.services.matching import match_iou_matrix, match_masks
from tests.quality.conftest import rect

A = rect(0, 0, 10, 10)  # 100 px
B = rect(20, 20, 30, 30)  # 100 px
C = rect(40, 0, 50, 10)  # 100 px
A_SHIFTED = rect(2, 0, 12, 10)  # 80 / 120 with A
A_ERODED = rect(1, 1, 9, 9)  # 64 / 100 with A
A_HALF_OFF = rect(5, 0, 15, 10)  # 50 / 150 with A: below 0.5


def test_identical_sets_match_one_to_one_at_iou_one():
    result = match_masks([A, B, C], [C, A, B])

    assert result.pairs == [(0, 1, 1.0), (1, 2, 1.0), (2, 0, 1.0)]
    assert (result.matched, result.missed, result.extra) == (3, 0, 0)
    assert result.mean_iou == 1.0 and result.above_90 == 3


def test_shifted_and_eroded_masks_have_their_exact_iou():
    result = match_masks([A, B], [A_SHIFTED, rect(21, 21, 29, 29)])

    assert [(r, c) for r, c, _ in result.pairs] == [(0, 0), (1, 1)]
    assert result.pairs[0][2] == pytest.approx(80 / 120)
    assert result.pairs[1][2] == pytest.approx(64 / 100)
    assert result.mean_iou == pytest.approx((80 / 120 + 0.64) / 2)
    assert result.above_90 == 0


def test_more_objects_than_the_truth_count_as_extra():
    result = match_masks([A], [C, A_ERODED, B])

    assert [(r, c) for r, c, _ in result.pairs] == [(0, 1)]
    assert (result.reference_count, result.candidate_count) == (1, 3)
    assert (result.matched, result.missed, result.extra) == (1, 0, 2)


def test_fewer_objects_than_the_truth_count_as_missed():
    result = match_masks([A, B, C], [B])

    assert result.pairs == [(1, 0, 1.0)]
    assert (result.matched, result.missed, result.extra) == (1, 2, 0)


def test_a_pair_below_half_overlap_is_no_match():
    result = match_masks([A], [A_HALF_OFF])

    assert result.pairs == []
    assert (result.missed, result.extra) == (1, 1)
    assert result.mean_iou is None


def test_the_assignment_maximises_the_summed_iou_where_greedy_would_not():
    # Greedy takes 0.9 first and is left with 0.1 (no match); Hungarian pairs 0.8 and 0.85.
    result = match_iou_matrix(np.array([[0.9, 0.8], [0.85, 0.1]]))

    assert result.pairs == [(0, 1, 0.8), (1, 0, 0.85)]
    assert result.iou_sum == pytest.approx(1.65)


def test_exactly_half_overlap_counts_and_above_90_is_strict():
    result = match_iou_matrix(np.array([[0.5, 0.0], [0.0, 0.9]]))

    assert result.matched == 2 and result.above_90 == 0


@pytest.mark.parametrize("shape", [(0, 0), (0, 3), (2, 0)])
def test_an_empty_side_matches_nothing(shape):
    result = match_iou_matrix(np.zeros(shape))

    assert result.pairs == []
    assert (result.missed, result.extra) == shape


def test_masks_of_different_sizes_are_refused():
    with pytest.raises(ValueError):
        match_masks([A], [rect(0, 0, 4, 4, size=(10, 10))])
