"""The metric code on crafted masks, against numbers worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from modeltrain.metrics import (
    Click,
    ObjectResult,
    bounding_box,
    clicks_to_reach,
    first_click,
    iou,
    iou_after,
    next_click,
    summarize,
)


def box_mask(shape, rows, cols):
    mask = np.zeros(shape, bool)
    mask[rows[0] : rows[1], cols[0] : cols[1]] = True
    return mask


def test_iou_counts_intersection_over_union():
    gt = box_mask((10, 10), (2, 6), (2, 6))  # 16 pixels
    pred = box_mask((10, 10), (2, 6), (2, 7))  # the same plus one column: 20 pixels

    assert iou(pred, gt) == pytest.approx(16 / 20)


def test_iou_leaves_the_ignore_band_out():
    gt = box_mask((10, 10), (2, 6), (2, 6))
    pred = box_mask((10, 10), (2, 6), (2, 7))
    band = box_mask((10, 10), (0, 10), (6, 7))  # the extra column is ignored

    assert iou(pred, gt, band) == 1.0
    # An ignored column inside the object: 12 of the 16 pixels count, the prediction has 12 too.
    inner = box_mask((10, 10), (0, 10), (2, 3))
    assert iou(pred, gt, inner) == pytest.approx(12 / 16)


def test_iou_of_two_empty_masks_is_one_and_shapes_must_match():
    empty = np.zeros((4, 4), bool)
    assert iou(empty, empty) == 1.0
    with pytest.raises(ValueError, match="shapes differ"):
        iou(empty, np.zeros((4, 5), bool))


def test_first_click_is_the_object_pixel_farthest_from_its_boundary():
    gt = box_mask((9, 9), (2, 7), (2, 7))  # 5x5 square, centre (4, 4), 3 pixels from outside

    assert first_click(gt) == Click(x=4, y=4, positive=True)


def test_the_image_border_counts_as_boundary():
    # A 3-row band along the top edge: its centre row is 1, not 0 (the border bounds it).
    gt = box_mask((8, 9), (0, 3), (0, 9))

    # Every pixel of row 1 from column 1 to 7 is 2 away from the outside; ties go to the first
    # pixel in row-major order.
    assert first_click(gt) == Click(x=1, y=1, positive=True)


def test_a_false_positive_blob_larger_than_the_misses_gets_a_negative_click():
    gt = box_mask((12, 12), (1, 6), (1, 6))
    pred = gt | box_mask((12, 12), (6, 11), (6, 11))  # a 5x5 false positive, centre (8, 8)
    pred[1, 1] = False  # one missed corner pixel: distance 1

    assert next_click(pred, gt) == Click(x=8, y=8, positive=False)


def test_misses_win_a_tie_and_no_error_means_no_click():
    gt = box_mask((10, 10), (0, 10), (0, 5))
    pred = box_mask((10, 10), (0, 10), (1, 6))  # misses column 0, adds column 5: tie

    click = next_click(pred, gt)
    assert click.positive and click.x == 0
    assert next_click(gt, gt) is None


def test_ignored_pixels_are_not_errors():
    gt = box_mask((10, 10), (2, 8), (2, 8))
    pred = box_mask((10, 10), (3, 7), (3, 7))  # misses a 1-pixel ring
    ring = gt & ~pred

    assert next_click(pred, gt, ignore=ring) is None


def test_clicks_to_reach_is_the_first_click_at_or_above_the_threshold():
    ious = [0.5, 0.86, 0.84, 0.92]

    assert clicks_to_reach(ious, 0.85, 20) == 2
    assert clicks_to_reach(ious, 0.90, 20) == 4
    assert clicks_to_reach(ious, 0.95, 20) == 20
    assert clicks_to_reach(ious, 0.90, 3) == 3  # reached only after the limit


def test_bounding_box_is_inclusive_like_sam_boxes():
    gt = box_mask((10, 10), (2, 5), (3, 8))

    assert bounding_box(gt) == [3.0, 2.0, 7.0, 4.0]
    assert bounding_box(np.zeros((3, 3), bool)) is None


def test_summary_averages_each_number_over_objects():
    results = [
        ObjectResult([0.9], 0.9, 0.95, 0.8, {0.85: 1, 0.90: 1}),
        ObjectResult([0.5] * 4 + [0.6] * 5 + [0.8] * 11, 0.5, 0.7, 0.6, {0.85: 20, 0.90: 20}),
    ]

    assert summarize(results, images=1) == {
        "images": 1,
        "masks": 2,
        "miou_1click_top": 0.7,
        "miou_1click_best": 0.825,
        "miou_5clicks": 0.75,  # (0.9 kept from click 1 + 0.6) / 2
        "miou_10clicks": 0.85,
        "miou_box": 0.7,
        "noc85": 10.5,
        "noc90": 10.5,
    }


def test_iou_after_a_click_keeps_the_last_iou_of_a_run_that_stopped_sooner():
    stopped = ObjectResult([0.3, 0.6, 0.92], 0.3, 0.4, 0.5, {0.85: 3, 0.90: 3})

    assert [iou_after(stopped, k) for k in (1, 2, 3, 5, 10)] == [0.3, 0.6, 0.92, 0.92, 0.92]
    with pytest.raises(ValueError, match="at least 1"):
        iou_after(stopped, 0)
