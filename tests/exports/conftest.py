"""Datasets with masks of every kind, made directly (the export reads what is stored), and
readers of what the exports wrote."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np
import pytest

from annotation.models import Image, Mask, MaskPrompt
from annotation.services.imports import Candidate, import_images
from engine import rle as rle_codec
from tests import factories


@pytest.fixture(autouse=True)
def _isolated(isolated_storage):
    """Files under tmp_path, Celery inline (see tests/conftest.py)."""


def add_jpeg_image(dataset, seed: int = 0, width: int = 64, height: int = 48) -> Image:
    data = factories.image_bytes(width, height, seed, "JPEG", quality=90)
    report = import_images(dataset, [Candidate(f"photo-{seed}.jpg", read=lambda: data)])
    return Image.objects.get(pk=report.imported[0]["id"])


def blob(image: Image, cx: float, cy: float, r: float) -> np.ndarray:
    """A filled disc, clipped to the image."""
    yy, xx = np.mgrid[: image.height, : image.width]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def add_mask(image: Image, pixels: np.ndarray, source: str = "manual", **fields) -> Mask:
    rle = rle_codec.encode(pixels)
    prompt = fields.pop("prompt", None)
    mask = Mask.objects.create(
        image=image,
        rle=rle,
        bbox=rle_codec.bbox_xywh(rle),
        area=rle_codec.area(rle),
        source=source,
        stage=fields.pop("stage", image.stage),
        **fields,
    )
    if prompt is not None:
        MaskPrompt.objects.create(mask=mask, **prompt)
    return mask


def read_shard(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as archive:
        return {m.name: archive.extractfile(m).read() for m in archive.getmembers()}


def shard_records(out_dir: Path) -> dict[int, dict]:
    """image id -> its SA-1B JSON, over every shard of an export folder."""
    records = {}
    for shard in sorted(out_dir.glob("sa_*.tar")):
        for name, data in read_shard(shard).items():
            if name.endswith(".json"):
                record = json.loads(data)
                records[record["image"]["image_id"]] = record
    return records


def stored_masks(images) -> dict[int, list[np.ndarray]]:
    """image id -> its masks' pixels in id order."""
    return {
        image.pk: [rle_codec.decode(m.rle) for m in image.masks.order_by("pk")] for image in images
    }
