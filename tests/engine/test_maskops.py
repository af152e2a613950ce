"""Known-answer tests of the automatic pass's vectorised mask operations."""

import numpy as np
import pytest
import torch

from engine import rle
from engine.maskops import (
    box_iou,
    decode_rles,
    encode_rles,
    mask_boxes,
    nms,
    remove_small_regions,
    stability_scores,
)


def test_stability_is_the_ratio_of_pixels_above_plus_and_minus_the_offset():
    logits = torch.tensor(
        [
            [[5.0, 2.0, 0.5, -0.5], [-0.9, -1.5, -3.0, 1.5]],  # 3 above +1, 6 above -1
            [[-2.0, -2.0, -2.0, -2.0], [-2.0, -2.0, -2.0, -2.0]],  # nothing above -1
            [[0.5, 0.5, -0.5, -3.0], [-3.0, -3.0, -3.0, -3.0]],  # 0 above +1, 3 above -1
        ]
    )
    scores = stability_scores(logits, offset=1.0)
    assert scores.dtype == torch.float32
    assert scores.tolist() == pytest.approx([0.5, 0.0, 0.0])
    assert stability_scores(logits, offset=0.6).tolist() == pytest.approx([3 / 5, 0.0, 0.0])


def test_mask_boxes_are_inclusive_extents_and_zero_for_empty_masks():
    masks = torch.zeros((3, 6, 8), dtype=torch.bool)
    masks[0, 1:4, 2:7] = True
    masks[1, 5, 0] = True
    boxes = mask_boxes(masks)
    assert boxes.dtype == torch.int64
    assert boxes.tolist() == [[2, 1, 6, 3], [0, 5, 0, 5], [0, 0, 0, 0]]
    assert mask_boxes(torch.zeros((0, 4, 4), dtype=torch.bool)).shape == (0, 4)


def test_box_iou_matches_hand_computed_overlaps():
    boxes = torch.tensor([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [3, 3, 3, 3]])
    iou = box_iou(boxes)
    assert iou[0, 1].item() == pytest.approx(50 / 150)
    assert iou[0, 0].item() == pytest.approx(1.0)
    assert iou[0, 2].item() == 0.0
    assert iou[3, 3].item() == 0.0  # zero-area box: no overlap with anything, itself included
    assert torch.equal(iou, iou.T)
    assert torch.equal(box_iou(boxes[:2], boxes), iou[:2])


def test_nms_keeps_a_box_whose_only_suppressor_was_itself_suppressed():
    boxes = torch.tensor(
        [
            [0, 0, 100, 100],  # A
            [10, 0, 110, 100],  # B: IoU(A, B) = 0.82
            [20, 0, 120, 100],  # C: IoU(B, C) = 0.82, IoU(A, C) = 0.67
            [300, 300, 310, 310],  # D: alone
        ]
    )
    scores = torch.tensor([0.9, 0.8, 0.7, 0.1])
    assert nms(boxes, scores, 0.7).tolist() == [0, 2, 3]
    assert nms(boxes, scores, 0.6).tolist() == [0, 3]


def test_nms_returns_kept_indices_by_decreasing_score_with_ties_in_input_order():
    boxes = torch.tensor([[0, 0, 10, 10], [50, 50, 60, 60], [0, 0, 10, 11], [80, 0, 90, 5]])
    scores = torch.tensor([0.5, 0.9, 0.5, 0.5])
    assert nms(boxes, scores, 0.7).tolist() == [1, 0, 3]
    assert nms(boxes[:0], scores[:0], 0.7).tolist() == []


def _greedy_nms(boxes, scores, threshold):
    order = sorted(range(len(scores)), key=lambda i: -float(scores[i]))
    iou = box_iou(boxes)
    kept = []
    for i in order:
        if all(iou[j, i] <= threshold for j in kept):
            kept.append(i)
    return kept


def test_nms_agrees_with_a_plain_greedy_loop_on_random_overlapping_boxes():
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        xy = torch.randint(0, 40, (60, 2), generator=gen)
        wh = torch.randint(20, 30, (60, 2), generator=gen)
        boxes = torch.cat([xy, xy + wh], dim=1)
        scores = torch.rand(60, generator=gen)
        expected = _greedy_nms(boxes, scores, 0.5)
        assert nms(boxes, scores, 0.5).tolist() == expected
        assert nms(boxes, scores, 0.5, block=7).tolist() == expected  # across blocks too


def test_nms_settles_a_long_chain_of_overlaps_inside_and_across_blocks():
    # box i overlaps box i + 1 (IoU 0.94) and no other: greedy keeps every other box
    n = 50
    x0 = torch.arange(n) * 3.0
    boxes = torch.stack([x0, torch.zeros(n), x0 + 100, torch.full((n,), 100.0)], dim=1)
    scores = torch.linspace(1, 0, n)
    assert box_iou(boxes[:1], boxes[2:3]).item() < 0.9 < box_iou(boxes[:1], boxes[1:2]).item()
    for block in (256, 16, 1):
        assert nms(boxes, scores, 0.9, block=block).tolist() == list(range(0, n, 2))


def test_small_holes_are_filled_and_large_holes_kept():
    mask = np.zeros((1, 20, 20), dtype=bool)
    mask[0, 2:18, 2:18] = True
    mask[0, 4:7, 4:7] = False  # 9-pixel hole
    mask[0, 10:14, 10:14] = False  # 16-pixel hole
    cleaned, changed = remove_small_regions(mask, min_area=10)
    expected = mask.copy()
    expected[0, 4:7, 4:7] = True
    assert np.array_equal(cleaned, expected)
    assert changed.tolist() == [True]


def test_small_islands_are_removed_and_diagonal_neighbours_stay_connected():
    mask = np.zeros((1, 20, 20), dtype=bool)
    mask[0, 0:5, 0:5] = True  # 25-pixel body
    mask[0, 5, 5] = True  # touches the body's corner: part of it under 8-connectivity
    mask[0, 15:17, 15:17] = True  # 4-pixel island
    cleaned, changed = remove_small_regions(mask, min_area=10)
    expected = mask.copy()
    expected[0, 15:17, 15:17] = False
    assert np.array_equal(cleaned, expected)
    assert changed.tolist() == [True]


def test_a_mask_of_only_small_islands_keeps_its_largest_and_the_first_among_equals():
    masks = np.zeros((3, 12, 12), dtype=bool)
    masks[0, 1:3, 1:3] = True  # 4 pixels
    masks[0, 8:11, 8:11] = True  # 9 pixels: the largest
    masks[1, 6:8, 6:8] = True  # two islands of 4: the first in raster order is kept
    masks[1, 1:3, 9:11] = True
    masks[2, 0:12, 0:12] = True  # nothing small anywhere
    cleaned, changed = remove_small_regions(masks, min_area=20)
    assert np.array_equal(np.argwhere(cleaned[0]), np.argwhere(masks[0] & (np.arange(12) >= 8)))
    expected = np.zeros((12, 12), dtype=bool)
    expected[1:3, 9:11] = True
    assert np.array_equal(cleaned[1], expected)
    assert np.array_equal(cleaned[2], masks[2])
    assert changed.tolist() == [True, True, False]


def test_a_small_piece_of_background_at_the_image_border_counts_as_a_hole():
    mask = np.ones((1, 10, 10), dtype=bool)
    mask[0, 0:2, 0:2] = False  # 4 background pixels cut off in a corner
    cleaned, changed = remove_small_regions(mask, min_area=5)
    assert cleaned.all() and changed.tolist() == [True]


def test_unchanged_masks_report_no_change():
    masks = np.zeros((2, 8, 8), dtype=bool)
    masks[0, 2:6, 2:6] = True
    cleaned, changed = remove_small_regions(masks, min_area=4)
    assert np.array_equal(cleaned, masks) and changed.tolist() == [False, False]


def test_encoding_pastes_crop_masks_at_their_offset_into_the_image():
    masks = np.zeros((2, 3, 4), dtype=bool)
    masks[0, 0, 0] = True
    masks[1, 1:3, 1:4] = True
    rles = encode_rles(masks, height=6, width=9, offset=(5, 2))
    assert all(r["size"] == [6, 9] and isinstance(r["counts"], str) for r in rles)
    decoded = decode_rles(rles)
    expected = np.zeros((2, 6, 9), dtype=bool)
    expected[:, 2:5, 5:9] = masks
    assert np.array_equal(decoded, expected)
    assert [rle.area(r) for r in rles] == [1, 6]
    assert encode_rles(masks[:0], 6, 9) == []
    with pytest.raises(ValueError):
        encode_rles(masks, height=6, width=9, offset=(6, 2))
