"""Automatic passes on tiny images with the seeded vit_tiny. Its random weights are confident
about nothing, so the tests lower the thresholds (a config override, as an admin can) to get
masks to count."""

from __future__ import annotations

import pytest

from annotation.models import Stage
from annotation.services.image_holds import change_stage
from tests import factories

# Every threshold and the NMS off, a 2x2 grid and no crops: 12 masks per image (4 points x 3).
RELAXED = {
    "points_per_side": 2,
    "box_nms_thresh": 1.0,
    "crop_n_layers": 0,
    "pred_iou_thresh": 0.0,
    "stability_score_thresh": 0.0,
    "min_mask_region_area": 0,
    "max_mask_region_area_ratio": None,
}


@pytest.fixture(autouse=True)
def _isolated(isolated_storage):
    """Files under tmp_path, Celery inline (see tests/conftest.py)."""


@pytest.fixture
def stage3_images(dataset, tiny_model):
    """Two small images moved to stage 3."""
    images = [factories.add_image(dataset, 40, 32, seed=seed) for seed in (1, 2)]
    change_stage(dataset, [image.pk for image in images], Stage.FULLY_AUTOMATIC)
    for image in images:
        image.refresh_from_db()
    return images
