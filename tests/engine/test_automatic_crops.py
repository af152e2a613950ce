"""Crop windows, point grids, moves between frames, and the configuration of the automatic pass."""

import numpy as np
import pytest
import torch

from engine.automatic_config import AutomaticConfig
from engine.crops import (
    boxes_near_crop_edge,
    crop_boxes,
    layer_grids,
    point_grid,
    uncrop_boxes,
    uncrop_points,
)

OVERLAP = 512 / 1500


def test_layer_zero_is_the_whole_image_only():
    crops = crop_boxes(300, 500, 0, OVERLAP)
    assert [(c.box, c.layer) for c in crops] == [((0, 0, 500, 300), 0)]


def test_layer_one_is_four_overlapping_windows_of_a_non_square_image():
    # short side 300: overlap int(512 / 1500 * 300) = 102; width ceil((102 + 500) / 2) = 301,
    # height ceil((102 + 300) / 2) = 201; windows start at 0 and 301 - 102 = 199 (x), 99 (y).
    crops = crop_boxes(300, 500, 1, OVERLAP)
    assert [c.box for c in crops[1:]] == [
        (0, 0, 301, 201),
        (0, 99, 301, 300),
        (199, 0, 500, 201),
        (199, 99, 500, 300),
    ]
    assert [c.layer for c in crops] == [0, 1, 1, 1, 1]


@pytest.mark.parametrize("height, width", [(300, 500), (500, 300), (257, 1023)])
def test_every_layer_tiles_the_image_with_equal_overlapping_windows(height, width):
    crops = crop_boxes(height, width, 2, OVERLAP)
    assert len(crops) == 1 + 4 + 16
    for layer, per_side in ((1, 2), (2, 4)):
        boxes = np.array([c.box for c in crops if c.layer == layer])
        assert len(boxes) == per_side**2
        covered = np.zeros((height, width), dtype=int)
        for x0, y0, x1, y1 in boxes:
            covered[y0:y1, x0:x1] += 1
        assert (covered >= 1).all()
        overlap = int(OVERLAP * min(height, width) * 2 / per_side)
        x_starts = np.unique(boxes[:, 0])
        x_ends = np.unique(boxes[:, 2])
        assert len(x_starts) == per_side
        assert ((x_ends[:-1] - x_starts[1:]) == overlap).all()  # neighbours share `overlap`
        widths = boxes[:, 2] - boxes[:, 0]
        inner = widths[boxes[:, 2] < width]
        assert (inner == inner[0]).all()  # one size; the last column is clipped by the rounding
        assert (inner[0] - per_side < widths).all()


def test_point_grid_is_cell_centres_row_by_row():
    assert point_grid(2).tolist() == [[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.75, 0.75]]
    grid = point_grid(32)
    assert grid.shape == (1024, 2) and grid.dtype == np.float64
    assert grid.min() == pytest.approx(1 / 64) and grid.max() == pytest.approx(63 / 64)


def test_deeper_layers_get_fewer_points_per_side():
    assert [len(g) for g in layer_grids(32, 2, 2)] == [32 * 32, 16 * 16, 8 * 8]
    assert [len(g) for g in layer_grids(12, 1, 3)] == [144, 16]


def test_uncropping_moves_boxes_and_points_by_the_crop_origin():
    boxes = torch.tensor([[0, 0, 4, 5], [10, 20, 30, 40]])
    assert uncrop_boxes(boxes, (100, 50, 300, 250)).tolist() == [
        [100, 50, 104, 55],
        [110, 70, 130, 90],
    ]
    points = np.array([[0.5, 1.5], [10.0, 0.0]])
    assert uncrop_points(points, (100, 50, 300, 250)).tolist() == [[100.5, 51.5], [110.0, 50.0]]


def test_boxes_touching_an_inner_crop_side_are_flagged_but_not_image_sides():
    image = (0, 0, 400, 200)
    crop = (100, 0, 300, 200)  # its top and bottom are the image's, left and right are not
    boxes = torch.tensor(
        [
            [115, 50, 150, 90],  # 15 px from the crop's left side: cut
            [150, 0, 200, 199],  # touches top and bottom, which are image sides: fine
            [130, 40, 170, 80],  # well inside
            [200, 60, 285, 90],  # 15 px from the right side: cut
            [200, 60, 279, 90],  # 21 px away: fine
        ]
    )
    flagged = boxes_near_crop_edge(boxes, crop, image, tolerance=20)
    assert flagged.tolist() == [True, False, False, True, False]
    assert not boxes_near_crop_edge(boxes, image, image, tolerance=20).any()


def test_presets_carry_the_papers_numbers():
    default = AutomaticConfig()
    assert (default.points_per_side, default.pred_iou_thresh) == (32, 0.88)
    assert (default.stability_score_thresh, default.box_nms_thresh) == (0.95, 0.7)
    assert (default.crop_n_layers, default.min_mask_region_area) == (0, 0)
    assert default.max_mask_region_area_ratio is None
    paper = AutomaticConfig.paper()
    assert default.crop_n_points_downscale_factor == 1
    assert (paper.crop_n_layers, paper.min_mask_region_area) == (2, 100)
    assert paper.crop_n_points_downscale_factor == 2
    assert paper.max_mask_region_area_ratio == 0.95
    prefill = AutomaticConfig.prefill()
    assert prefill.pred_iou_thresh > paper.pred_iou_thresh
    assert prefill.stability_score_thresh > paper.stability_score_thresh
    with pytest.raises(AttributeError):
        paper.points_per_side = 16  # type: ignore[misc]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"points_per_side": 0},
        {"points_per_batch": 0},
        {"crop_n_layers": -1},
        # layer 3 would get 4 / 2^3 -> 0 points
        {"points_per_side": 4, "crop_n_layers": 3, "crop_n_points_downscale_factor": 2},
        {"crop_overlap_ratio": 1.0},
        {"stability_score_thresh": 1.5},
        {"box_nms_thresh": -0.1},
        {"min_mask_region_area": -1},
        {"max_mask_region_area_ratio": 0.0},
    ],
)
def test_config_rejects_values_that_cannot_work(kwargs):
    with pytest.raises(ValueError):
        AutomaticConfig(**kwargs)
