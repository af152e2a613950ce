"""The automatic pass end to end on a drawn image whose right answer is known.

The predictor here is a colour segmenter (tests/engine/colour_segmenter.py): a point's mask is
every pixel of the point's colour in the crop it was embedded from, so each coloured rectangle
has exactly one right mask and the recipe (filters, crops, NMS, clean-up) is what these tests
check. test_automatic_model.py runs the same generator on the real (tiny) model.
"""

import numpy as np
import pytest

from engine import rle
from engine.automatic import AutomaticConfig, AutomaticMaskGenerator
from tests.engine.colour_segmenter import (
    BACKGROUND_AREA,
    BLUE,
    GREEN,
    HEIGHT,
    RED,
    WIDTH,
    ColourSegmenter,
    drawn_image,
)


def region(*rects) -> np.ndarray:
    mask = np.zeros((HEIGHT, WIDTH), dtype=bool)
    for rect in rects:
        mask[rect] = True
    return mask


def decoded(mask) -> np.ndarray:
    return rle.decode(mask.segmentation)


def run(config: AutomaticConfig, image=None, **kwargs):
    segmenter = ColourSegmenter()
    masks = AutomaticMaskGenerator(segmenter, config).generate(
        drawn_image() if image is None else image, **kwargs
    )
    return masks, segmenter


def test_whole_image_pass_finds_each_region_once_in_grid_order():
    masks, _ = run(AutomaticConfig(points_per_side=8))
    expected = [~region(RED, GREEN, BLUE), region(BLUE), region(RED), region(GREEN)]
    assert len(masks) == 4
    for mask, want in zip(masks, expected, strict=True):
        assert np.array_equal(decoded(mask), want)
        assert mask.area == want.sum()
        assert mask.predicted_iou == pytest.approx(0.95)
        assert mask.stability_score == 1.0
        assert mask.crop_box == [0.0, 0.0, 160.0, 120.0]
    # the first grid point (cell centres of 20 x 15 cells) that falls on each region
    assert [m.point_coords for m in masks] == [
        [[10, 7.5]],
        [[150, 7.5]],
        [[30, 22.5]],
        [[110, 82.5]],
    ]
    assert masks[2].bbox == [30.0, 20.0, 49.0, 29.0]  # inclusive extent: last column 79, row 49


def test_zoomed_crops_win_over_the_whole_image_and_cut_masks_are_dropped():
    # 2x2 crops of 100 x 80 at x 0/60, y 0/40 with 4x4 grids. Red lies inside the top-left
    # crop, blue inside the top-right, green inside the bottom-right; the other crops cut them
    # at an inner side. The background touches inner sides of every crop: whole image only.
    config = AutomaticConfig(points_per_side=8, crop_n_layers=1, crop_n_points_downscale_factor=2)
    masks, segmenter = run(config)
    assert segmenter.embed_calls == 5
    expected = [
        (region(RED), [0, 0, 100, 80], [37.5, 30.0]),
        (region(BLUE), [60, 0, 100, 80], [147.5, 10.0]),
        (region(GREEN), [60, 40, 100, 80], [122.5, 70.0]),
        (~region(RED, GREEN, BLUE), [0, 0, 160, 120], [10.0, 7.5]),
    ]
    assert len(masks) == len(expected)
    for mask, (want, crop_box, point) in zip(masks, expected, strict=True):
        assert np.array_equal(decoded(mask), want)
        assert mask.crop_box == crop_box
        assert mask.point_coords == [point]


def test_masks_covering_too_much_of_the_image_are_dropped():
    masks, _ = run(AutomaticConfig(points_per_side=8, max_mask_region_area_ratio=0.8))
    assert [m.area for m in masks] == [150, 1500, 2000]
    masks, _ = run(AutomaticConfig(points_per_side=8, max_mask_region_area_ratio=0.82))
    assert [m.area for m in masks] == [BACKGROUND_AREA, 150, 1500, 2000]


def test_clean_up_fills_the_hole_removes_the_island_and_ranks_untouched_masks_first():
    masks, _ = run(AutomaticConfig(points_per_side=8, min_mask_region_area=10), drawn_image(True))
    # the hole is a 9-pixel hole in red and a 9-pixel island of the background mask
    expected = [region(BLUE), region(GREEN), ~region(RED, GREEN, BLUE), region(RED)]
    assert [m.area for m in masks] == [150, 2000, BACKGROUND_AREA, 1500]
    for mask, want in zip(masks, expected, strict=True):
        assert np.array_equal(decoded(mask), want)
    assert masks[3].bbox == [30.0, 20.0, 49.0, 29.0]
    masks, _ = run(AutomaticConfig(points_per_side=8, min_mask_region_area=9), drawn_image(True))
    assert sorted(m.area for m in masks) == [150, 1491, 2000, BACKGROUND_AREA + 9]


def test_thresholds_filter_on_predicted_iou_and_stability():
    masks, _ = run(AutomaticConfig(points_per_side=8, pred_iou_thresh=0.95))
    assert masks == []  # 0.95 is not above 0.95
    no_nms = {"points_per_side": 8, "pred_iou_thresh": 0.4, "box_nms_thresh": 1.0}
    masks, _ = run(AutomaticConfig(**no_nms))
    assert len(masks) == 64 * 2  # every region mask and its duplicate; no whole-crop mask
    masks, _ = run(AutomaticConfig(**no_nms, stability_score_thresh=0.0))
    assert len(masks) == 64 * 3
    unstable = [m for m in masks if m.predicted_iou == pytest.approx(0.5)]
    assert {m.area for m in unstable} == {HEIGHT * WIDTH}
    region_areas = {BACKGROUND_AREA, 150, 1500, 2000}
    assert {round(m.stability_score * HEIGHT * WIDTH) for m in unstable} == region_areas


def test_batches_bound_the_decoder_calls_without_changing_the_answer():
    whole, _ = run(AutomaticConfig(points_per_side=8))
    calls = []
    batched, segmenter = run(
        AutomaticConfig(points_per_side=8, points_per_batch=10),
        progress=lambda done, total: calls.append((done, total)),
    )
    assert segmenter.batch_sizes == [10] * 6 + [4]
    assert calls == [(i, 7) for i in range(1, 8)]
    assert [m.to_dict() for m in batched] == [m.to_dict() for m in whole]


def test_a_given_embedding_replaces_the_whole_image_encoder_run():
    image = drawn_image()
    segmenter = ColourSegmenter()
    embedding = segmenter.embed(image)
    generator = AutomaticMaskGenerator(segmenter, AutomaticConfig(points_per_side=8))
    assert len(generator.generate(image, embedding=embedding)) == 4
    assert segmenter.embed_calls == 1
    with pytest.raises(ValueError, match="embedding"):
        generator.generate(image[:100], embedding=embedding)


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((10, 10, 3), dtype=np.float32),
        np.zeros((10, 10), dtype=np.uint8),
        np.zeros((10, 10, 4), dtype=np.uint8),
        np.zeros((0, 10, 3), dtype=np.uint8),
    ],
)
def test_generate_rejects_what_is_not_an_rgb_uint8_image(image):
    with pytest.raises(ValueError):
        AutomaticMaskGenerator(ColourSegmenter()).generate(image)


def test_records_serialise_to_sa1b_annotation_fields():
    masks, _ = run(AutomaticConfig(points_per_side=8))
    record = masks[2].to_dict()
    assert set(record) == {
        "segmentation",
        "bbox",
        "area",
        "predicted_iou",
        "stability_score",
        "point_coords",
        "crop_box",
    }
    assert record["segmentation"]["size"] == [HEIGHT, WIDTH]
    assert isinstance(record["segmentation"]["counts"], str)
    assert rle.area(record["segmentation"]) == record["area"] == 1500
    coco_box = rle.bbox_xywh(record["segmentation"])
    assert record["bbox"] == [coco_box[0], coco_box[1], coco_box[2] - 1, coco_box[3] - 1]


def test_the_size_limit_applies_to_masks_after_their_holes_are_filled():
    image = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
    image[RED] = (255, 0, 0)
    image[90:108:4, 100:118:4] = (0, 0, 255)  # 25 blue 2x2 dots, none under a grid point
    image[91:108:4, 100:118:4] = (0, 0, 255)
    image[90:108:4, 101:118:4] = (0, 0, 255)
    image[91:108:4, 101:118:4] = (0, 0, 255)
    assert (image == (0, 0, 255)).all(axis=2).sum() == 100
    # the background: 17600 pixels (91.7%) with 25 holes, 17700 (92.2%) once they are filled
    settings = {"points_per_side": 8, "min_mask_region_area": 10}
    masks, _ = run(AutomaticConfig(**settings, max_mask_region_area_ratio=0.92), image)
    assert [m.area for m in masks] == [1500]
    masks, _ = run(AutomaticConfig(**settings, max_mask_region_area_ratio=0.925), image)
    assert sorted(m.area for m in masks) == [1500, HEIGHT * WIDTH - 1500]
