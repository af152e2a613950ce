"""The audit's figures on constructed masks whose values are known by hand."""

from __future__ import annotations

import numpy as np
import pytest

from annotation.services import audit_metrics as m


def square(size: int = 100, top: int = 40, left: int = 40, side: int = 20) -> np.ndarray:
    mask = np.zeros((size, size), bool)
    mask[top : top + side, left : left + side] = True
    return mask


def test_iou_of_a_square_shifted_by_two_pixels_is_two_thirds():
    # 20x20 shifted 2 columns: 18*20 shared, 22*20 in the union.
    assert m.iou(square(), square(left=42)) == pytest.approx(360 / 440)
    # 10x10 shifted 2: 80 / 120.
    assert m.iou(square(side=10), square(side=10, left=42)) == pytest.approx(2 / 3)


def test_iou_of_an_eroded_square_and_of_disjoint_and_empty_masks():
    assert m.iou(square(), square(top=42, left=42, side=16)) == pytest.approx(256 / 400)
    assert m.iou(square(), square(top=0, left=0, side=10)) == 0.0
    empty = np.zeros((10, 10), bool)
    assert m.iou(empty, empty) == 1.0
    with pytest.raises(ValueError, match="shapes"):
        m.iou(empty, np.zeros((10, 11), bool))


def test_boundary_band_of_a_square_is_a_ring_of_width_d():
    band = m.boundary_band(square(), 2)
    assert band.sum() == 400 - 16 * 16
    assert not band[44:56, 44:56].any() and band[40, 40] and band[41, 59]
    # The image border counts as contour: a full image's band is its outer ring.
    assert m.boundary_band(np.ones((10, 10), bool), 1).sum() == 100 - 64


def test_boundary_iou_of_eroded_squares():
    # Eroded by 1: rings at depth 0-1 (144 px) and 1-2 of the smaller one (128 px) share the
    # depth-1 ring of the larger square (18*18 - 16*16 = 68 px): 68 / (144 + 128 - 68).
    assert m.boundary_iou(square(), square(top=41, left=41, side=18), 2) == pytest.approx(1 / 3)
    # Eroded by 2: the bands do not touch, although the mask IoU is 0.64.
    assert m.boundary_iou(square(), square(top=42, left=42, side=16), 2) == 0.0
    assert m.boundary_iou(square(), square(), 2) == 1.0


def test_boundary_distance_is_two_percent_of_the_diagonal():
    assert m.boundary_distance(300, 400) == 10  # diagonal 500
    assert m.boundary_distance(10, 10) == 1  # 0.28 px, at least one


def test_histogram_bins_of_width_five_hundredths():
    counts = m.histogram([0.0, 0.05, 0.15, 0.949, 0.95, 0.999, 1.0])
    assert len(counts) == 20 and sum(counts) == 7
    assert counts[0] == 1 and counts[1] == 1 and counts[3] == 1
    assert counts[18] == 1 and counts[19] == 3
    assert m.histogram_edges()[:3] == [0.0, 0.05, 0.1] and m.histogram_edges()[-1] == 1.0


def test_summary_of_kept_fixed_deleted_and_added_masks():
    ious = [1.0, 1.0, 0.95, 0.8, 0.6, 0.3]
    figures = m.summarize(ious, [1.0, 0.5], deleted=2, added=4)
    assert figures["originals"] == 8 and figures["pairs"] == 6 and figures["unchanged"] == 2
    assert figures["share_iou_90"] == pytest.approx(3 / 6)
    assert figures["share_iou_75"] == pytest.approx(4 / 6)
    assert figures["share_iou_50"] == pytest.approx(5 / 6)
    assert figures["median_iou"] == pytest.approx((0.95 + 0.8) / 2)
    assert figures["mean_boundary_iou"] == pytest.approx(0.75)
    assert figures["precision"] == pytest.approx(6 / 8)
    assert figures["recall"] == pytest.approx(6 / 10)
    assert figures["histogram"][19] == 3 and figures["histogram"][16] == 1


def test_summary_with_everything_deleted_has_no_shares():
    figures = m.summarize([], [], deleted=3, added=0)
    assert figures["share_iou_90"] is None and figures["median_iou"] is None
    assert figures["precision"] == 0.0 and figures["recall"] is None
