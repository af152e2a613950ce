"""Fixtures of the retraining tests: a dataset of small synthetic images, each with one object
mask, split between training and held-out images; settings that keep rounds to seconds."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image as PILImage

from annotation.models import Image, Mask, MaskSource
from annotation.services.imports import Candidate, import_images
from engine import rle as rle_codec
from modeltrain.models import ImageSplit

# What every evaluation summary reports (modeltrain.metrics.summarize), besides its counts.
HELDOUT_METRICS = {
    "miou_1click_top",
    "miou_1click_best",
    "miou_5clicks",
    "miou_10clicks",
    "miou_box",
    "noc85",
    "noc90",
}


@pytest.fixture(autouse=True)
def _isolated(isolated_storage, settings):
    """Files under tmp_path, Celery inline (see tests/conftest.py); rounds kept short."""
    settings.TRAINING_DIR = isolated_storage / "training"
    settings.TRAINING_PROGRESS_SECONDS = 0.0
    settings.TRAINING_EVAL_MAX_CLICKS = 1
    settings.TRAINING_HELDOUT_FRACTION = 0.5
    settings.TRAINING_STEPS = 2
    settings.TRAINING_MODE = "decoder"


def object_image(seed: int, width: int = 64, height: int = 48) -> tuple[bytes, np.ndarray]:
    """A flat background with one flat-coloured rectangle: PNG bytes and the rectangle's mask."""
    rng = np.random.default_rng(seed)
    pixels = np.empty((height, width, 3), np.uint8)
    pixels[:] = rng.integers(0, 100, 3)
    x0, y0 = int(rng.integers(2, width // 3)), int(rng.integers(2, height // 3))
    x1, y1 = x0 + int(rng.integers(12, width // 2)), y0 + int(rng.integers(10, height // 2))
    mask = np.zeros((height, width), bool)
    mask[y0:y1, x0:x1] = True
    pixels[mask] = rng.integers(150, 256, 3)
    buf = io.BytesIO()
    PILImage.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue(), mask


def add_masked_image(dataset, seed: int, source: str = MaskSource.MANUAL) -> Image:
    data, mask = object_image(seed)
    report = import_images(dataset, [Candidate(f"obj-{seed}.png", read=lambda: data)])
    image = Image.objects.get(pk=report.imported[0]["id"])
    add_mask(image, mask, source)
    return image


def add_mask(image: Image, mask: np.ndarray, source: str = MaskSource.MANUAL) -> Mask:
    rle = rle_codec.encode(mask)
    return Mask.objects.create(
        image=image,
        rle=rle,
        bbox=rle_codec.bbox_xywh(rle),
        area=int(mask.sum()),
        source=source,
        stage=image.stage,
    )


@pytest.fixture
def masked_dataset(dataset, tiny_model):
    """The ``dataset`` fixture with four images of one object each; at least one held out
    and one for training (the split follows the images' hashes, so it is fixed)."""
    from modeltrain.round_export import assign_splits

    for seed in range(4):
        add_masked_image(dataset, seed)
    assign_splits(dataset)
    heldout = ImageSplit.objects.filter(dataset=dataset, heldout=True).count()
    assert 0 < heldout < 4, heldout
    return dataset
