"""Plain functions that make test data: users, datasets, image files, imported images, masks."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable

import numpy as np
from django.contrib.auth import get_user_model
from PIL import Image as PILImage
from PIL import ImageDraw

from annotation.models import Dataset, DatasetMembership, Image, Mask, Role
from annotation.services.imports import Candidate, import_images
from engine import rle as rle_codec


def make_user(username: str, *, staff: bool = False, password: str = "pw-for-tests"):
    return get_user_model().objects.create_user(
        username=username, password=password, is_staff=staff
    )


def make_dataset(name: str, members: Iterable[tuple] = ()) -> Dataset:
    dataset = Dataset.objects.create(name=name)
    for user, role in members:
        DatasetMembership.objects.create(dataset=dataset, user=user, role=role or Role.ANNOTATOR)
    return dataset


def shapes_array(width: int = 64, height: int = 48, seed: int = 0) -> np.ndarray:
    """A cartoon: flat background with a few flat-coloured shapes (what masks outline)."""
    rng = np.random.default_rng(seed)
    im = PILImage.new("RGB", (width, height), tuple(int(v) for v in rng.integers(0, 256, 3)))
    draw = ImageDraw.Draw(im)
    for _ in range(3):
        x0, y0 = int(rng.integers(0, width // 2)), int(rng.integers(0, height // 2))
        x1 = x0 + int(rng.integers(width // 6, width // 2))
        y1 = y0 + int(rng.integers(height // 6, height // 2))
        draw.ellipse([x0, y0, x1, y1], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    return np.asarray(im)


def image_bytes(
    width: int = 64, height: int = 48, seed: int = 0, fmt: str = "PNG", **save_options
) -> bytes:
    buf = io.BytesIO()
    PILImage.fromarray(shapes_array(width, height, seed)).save(buf, format=fmt, **save_options)
    return buf.getvalue()


def jpeg_with_orientation(width: int, height: int, orientation: int, seed: int = 0) -> bytes:
    exif = PILImage.Exif()
    exif[0x0112] = orientation
    return image_bytes(width, height, seed, "JPEG", exif=exif.tobytes(), quality=95)


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, data in entries.items():
            archive.writestr(zipfile.ZipInfo(name), data)
    return buf.getvalue()


def add_image(dataset: Dataset, width: int = 64, height: int = 48, seed: int = 0) -> Image:
    """Import one generated image through the real import service."""
    data = image_bytes(width, height, seed)
    report = import_images(dataset, [Candidate(f"img-{seed}.png", read=lambda: data)])
    assert report.imported, report.as_dict()
    return Image.objects.get(pk=report.imported[0]["id"])


def rect_rle(image: Image, x0: int, y0: int, x1: int, y1: int) -> dict:
    """RLE of the rectangle [x0, x1) x [y0, y1) on ``image``."""
    mask = np.zeros((image.height, image.width), bool)
    mask[y0:y1, x0:x1] = True
    return rle_codec.encode(mask)


def add_mask(image: Image, *, source: str = "manual", model_version=None, **fields) -> Mask:
    """A mask written straight to the database (as the engine's passes do), a 4x4 square at the
    top-left unless ``rle`` is given."""
    rle = fields.pop("rle", None) or rect_rle(image, 0, 0, 4, 4)
    return Mask.objects.create(
        image=image,
        rle=rle,
        bbox=rle_codec.bbox_xywh(rle),
        area=rle_codec.area(rle),
        source=source,
        stage=fields.pop("stage", image.stage),
        model_version=model_version,
        **fields,
    )


def child_version(parent, name: str = "child", **fields):
    """A model version trained from ``parent`` that loads the same file (same encoder), so
    promoting it or predicting with it works in tests."""
    from registry.models import ModelVersion

    fields = {"trained_on": "a round", **fields}
    return ModelVersion.objects.create(
        name=name,
        model_type=parent.model_type,
        checkpoint=parent.checkpoint,
        encoder_key=parent.encoder_key,
        parent=parent,
        **fields,
    )
