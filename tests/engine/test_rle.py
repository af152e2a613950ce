"""engine.rle: COCO RLE encoding, validation of untrusted RLEs, and mask measures."""

import time

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from engine import rle
from engine.rle import RLEError


def random_masks(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    masks = []
    for shape in [(1, 1), (1, 7), (9, 1), (5, 8), (37, 23), (64, 64)]:
        masks += [
            rng.random(shape) < 0.5,
            rng.random(shape) < 0.05,
            np.zeros(shape, bool),
            np.ones(shape, bool),
        ]
    return masks


def test_round_trip_random_empty_full_tiny_and_non_square():
    for mask in random_masks():
        encoded = rle.encode(mask)
        assert encoded["size"] == list(mask.shape) and isinstance(encoded["counts"], str)
        decoded = rle.decode(encoded)
        assert decoded.dtype == bool and decoded.flags.c_contiguous
        np.testing.assert_array_equal(decoded, mask)


def test_encode_matches_pycocotools():
    for mask in random_masks(seed=1):
        ours = rle.encode(mask.astype(np.uint8))
        theirs = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        assert ours["counts"] == theirs["counts"].decode("ascii")
        assert ours["size"] == list(theirs["size"])


def test_encode_treats_any_nonzero_as_foreground():
    values = np.array([[0, 1, 2], [255, 0, 7]], np.uint8)
    np.testing.assert_array_equal(rle.decode(rle.encode(values)), values != 0)


def test_encode_batch_equals_one_at_a_time():
    rng = np.random.default_rng(2)
    masks = rng.random((5, 13, 21)) < 0.3
    assert rle.encode_batch(masks) == [rle.encode(m) for m in masks]
    assert rle.encode_batch(np.zeros((0, 4, 4), bool)) == []


def test_encode_rejects_float_and_wrong_rank():
    with pytest.raises(RLEError, match="threshold"):
        rle.encode(np.zeros((3, 3), np.float32))
    with pytest.raises(RLEError, match="2-D"):
        rle.encode(np.zeros((3, 3, 1), bool))


def test_uncompressed_counts_become_compressed():
    mask = np.zeros((4, 5), bool)
    mask[1:3, 2:4] = True  # column-major runs: 9 off, 2 on, 2 off, 2 on, 5 off
    valid = rle.validate({"size": [4, 5], "counts": [9, 2, 2, 2, 5]})
    assert valid == rle.encode(mask)
    theirs = mask_utils.frPyObjects({"size": [4, 5], "counts": [9, 2, 2, 2, 5]}, 4, 5)
    assert valid["counts"] == theirs["counts"].decode("ascii")


def test_validate_accepts_pycocotools_bytes_and_tuples():
    encoded = mask_utils.encode(np.asfortranarray(np.eye(6, dtype=np.uint8)))
    valid = rle.validate({"size": tuple(encoded["size"]), "counts": encoded["counts"]})
    assert valid == {"size": [6, 6], "counts": encoded["counts"].decode("ascii")}


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ([3, 4], "must be a dict"),
        ({"counts": "0"}, "missing 'size'"),
        ({"size": [2, 2]}, "missing 'counts'"),
        ({"size": [2], "counts": "4"}, r"must be \[height, width\]"),
        ({"size": "2x2", "counts": "4"}, r"must be \[height, width\]"),
        ({"size": [2.0, 2], "counts": "4"}, "two integers"),
        ({"size": [True, 2], "counts": "4"}, "two integers"),
        ({"size": [-2, 2], "counts": "4"}, "must not be negative"),
        ({"size": [70000, 70000], "counts": "4"}, "more pixels than COCO RLE can hold"),
        ({"size": [2, 2], "counts": 4}, "compressed string or a list"),
        ({"size": [2, 2], "counts": [1, "3"]}, "list of integers"),
        ({"size": [2, 2], "counts": [2, -1, 3]}, "negative run length -1 at run 1"),
        ({"size": [2, 2], "counts": [1, 2]}, r"sum to 3, but size \[2, 2\] has 4"),
        ({"size": [2, 2], "counts": "4 "}, "character ' ' at position 1, outside"),
        ({"size": [2, 2], "counts": "4p"}, "character 'p' at position 1, outside"),
        ({"size": [2, 2], "counts": "4\u00e9"}, "not ASCII"),
        ({"size": [2, 2], "counts": "0P"}, "truncated"),  # 'P' = 32: continuation bit set
        ({"size": [2, 2], "counts": "O"}, "negative run length -1 at run 0"),  # 'O' = -1
        ({"size": [2, 2], "counts": "3"}, "sum to 3"),
        ({"size": [2, 2], "counts": ""}, "sum to 0"),
        ({"size": [2, 2], "counts": "P" * 13 + "0"}, "impossibly long value"),
    ],
)
def test_validate_rejects_malformed_rle_with_a_helpful_message(bad, message):
    with pytest.raises(RLEError, match=message):
        rle.validate(bad)


def test_negative_run_hidden_in_a_delta_is_caught():
    # from index 3 on, values are deltas from two runs back: 1, 1, 1 then a delta making -2
    counts = rle._runs_to_string([1, 1, 1, -2, 3])
    with pytest.raises(RLEError, match="negative run length -2 at run 3"):
        rle.validate({"size": [2, 2], "counts": counts})


def test_validate_checks_the_expected_size():
    encoded = rle.encode(np.zeros((3, 4), bool))
    assert rle.validate(encoded, expected_size=(3, 4)) == encoded
    with pytest.raises(RLEError, match=r"\[3, 4\] does not match the expected size \[4, 3\]"):
        rle.validate(encoded, expected_size=(4, 3))


def test_decode_rejects_runs_that_overshoot_the_mask():
    # runs past h*w: a decoder that trusted them (pycocotools does) writes past its buffer
    with pytest.raises(RLEError, match="more than the 2x2 mask holds"):
        rle.decode({"size": [2, 2], "counts": rle._runs_to_string([3, 1000])})


def test_validation_of_a_large_mask_is_fast():
    rng = np.random.default_rng(3)
    mask = np.zeros((1500, 2000), bool)
    for _ in range(150):
        y, x = rng.integers(0, 1400), rng.integers(0, 1900)
        mask[y : y + rng.integers(5, 100), x : x + rng.integers(1, 4)] = True
    encoded = rle.encode(mask)
    start = time.perf_counter()
    for _ in range(20):
        rle.validate(encoded)
    assert (time.perf_counter() - start) / 20 < 0.010


def test_area_and_bbox_match_numpy():
    for mask in random_masks(seed=4):
        encoded = rle.encode(mask)
        assert rle.area(encoded) == int(mask.sum())
        ys, xs = np.nonzero(mask)
        expected = (
            [0.0, 0.0, 0.0, 0.0]
            if ys.size == 0
            else [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
        )
        assert rle.bbox_xywh(encoded) == [float(v) for v in expected]


def test_bbox_of_a_single_pixel_is_one_by_one():
    mask = np.zeros((10, 20), bool)
    mask[3, 17] = True
    assert rle.bbox_xywh(rle.encode(mask)) == [17.0, 3.0, 1.0, 1.0]


def test_iou_matches_numpy_and_checks_sizes():
    rng = np.random.default_rng(5)
    a, b = rng.random((2, 30, 40)) < 0.4
    expected = (a & b).sum() / (a | b).sum()
    assert rle.iou(rle.encode(a), rle.encode(b)) == pytest.approx(expected)
    assert rle.iou(rle.encode(a), rle.encode(a)) == 1.0
    empty = rle.encode(np.zeros((30, 40), bool))
    assert rle.iou(empty, empty) == 0.0
    with pytest.raises(RLEError, match="does not match"):
        rle.iou(rle.encode(a), rle.encode(a.T))


def test_zero_sized_masks_round_trip():
    for shape in [(0, 4), (3, 0)]:
        encoded = rle.encode(np.zeros(shape, bool))
        assert rle.decode(encoded).shape == shape
        assert rle.area(encoded) == 0 and rle.bbox_xywh(encoded) == [0.0, 0.0, 0.0, 0.0]


def test_mask_stats_equal_rle_area_and_bbox():
    from engine.rle import area, bbox_xywh, encode, mask_stats

    rng = np.random.default_rng(7)
    masks = np.zeros((4, 37, 53), dtype=bool)
    masks[0, 5:9, 10:30] = True
    masks[1] = rng.random((37, 53)) > 0.7
    masks[2, 36, 52] = True  # one pixel in the last corner
    # masks[3] stays empty
    areas, boxes = mask_stats(masks)
    for mask, a, box in zip(masks, areas, boxes, strict=True):
        rle = encode(mask)
        assert a == area(rle)
        assert box == bbox_xywh(rle)
