"""A round's export streams: the manifest is written a line per image as the masks are read a
page at a time, and read back as places in the file, so the memory of an export does not grow
with the number of masks (SA-1B size: millions of images)."""

from __future__ import annotations

import hashlib
import tracemalloc

import numpy as np
import pytest

from annotation.models import Dataset, Image, Mask, MaskSource
from engine import rle as rle_codec
from modeltrain import round_export
from modeltrain.data import MANIFEST, RecordList, read_round

pytestmark = pytest.mark.django_db

MASKS_PER_IMAGE = 16
HEIGHT, WIDTH = 96, 128


def filled_dataset(name: str, images: int) -> Dataset:
    """``images`` image rows (no files: an export without embeddings reads none) with
    ``MASKS_PER_IMAGE`` people's masks each, of realistic RLE length."""
    rng = np.random.default_rng(len(name))
    dataset = Dataset.objects.create(name=name)
    digests = [hashlib.sha256(f"{name}-{i}".encode()).hexdigest() for i in range(images)]
    rows = Image.objects.bulk_create(
        Image(
            dataset=dataset,
            file=f"images/{name}/{i}.png",
            original_name=f"{i}.png",
            sha256=digests[i],
            content_sha256=digests[i],
            format="PNG",
            width=WIDTH,
            height=HEIGHT,
            file_size=1,
        )
        for i in range(images)
    )
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    masks = []
    for image in rows:
        for _ in range(MASKS_PER_IMAGE):
            cx, cy = rng.uniform(20, WIDTH - 20), rng.uniform(20, HEIGHT - 20)
            blob = ((xx - cx) / 18) ** 2 + ((yy - cy) / 14) ** 2 <= 1 + rng.random((HEIGHT, WIDTH))
            rle = rle_codec.encode(blob)
            masks.append(
                Mask(
                    image=image,
                    rle=rle,
                    bbox=rle_codec.bbox_xywh(rle),
                    area=rle_codec.area(rle),
                    source=MaskSource.MANUAL,
                    stage=1,
                )
            )
    Mask.objects.bulk_create(masks, batch_size=500)
    return dataset


def peak_of_export(dataset: Dataset, folder, version) -> tuple[int, object]:
    tracemalloc.start()
    try:
        data, _ = round_export.export_round(dataset, folder, version, with_embeddings=False)
        masks = sum(len(record.masks) for record in data.train)  # reading every record
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak, (data, masks)


def test_export_memory_does_not_grow_with_the_masks(monkeypatch, tiny_model, tmp_path, settings):
    monkeypatch.setattr(round_export, "PAGE", 2)  # pages of splits: 32 images
    settings.TRAINING_HELDOUT_FRACTION = 0.2
    small, large = filled_dataset("small", 40), filled_dataset("large", 400)
    peak_of_export(small, tmp_path / "warm", tiny_model)  # first-use allocations

    small_peak, _ = peak_of_export(small, tmp_path / "small", tiny_model)
    large_peak, (data, masks) = peak_of_export(large, tmp_path / "large", tiny_model)

    assert data.train_masks + data.heldout_masks == 400 * MASKS_PER_IMAGE
    assert masks == data.train_masks and len(data.train) + len(data.heldout) == 400
    manifest_bytes = (tmp_path / "large" / MANIFEST).stat().st_size
    # Ten times the masks, about the same memory: it grows by much less than the large
    # manifest's size (what does grow is per query, not per mask: the database layer's), while
    # holding the records as Python objects would take several times that size.
    print(f"peaks: {small_peak} B for 40 images, {large_peak} B for 400; {manifest_bytes} B")
    assert large_peak - small_peak < manifest_bytes / 4, (small_peak, large_peak, manifest_bytes)


def test_records_are_read_from_the_file_when_asked_for(tiny_model, tmp_path):
    dataset = filled_dataset("lazy", 12)
    data, _ = round_export.export_round(dataset, tmp_path / "r", tiny_model, with_embeddings=False)
    assert isinstance(data.train, RecordList) and isinstance(data.heldout, RecordList)
    assert not any(isinstance(value, list) for value in vars(data.train).values())
    records = [*data.train, *data.heldout]
    assert sorted(r.image_id for r in records) == sorted(
        Image.objects.filter(dataset=dataset).values_list("pk", flat=True)
    )
    assert data.train[len(data.train) - 1] == list(data.train)[-1]
    first = data.train[0]
    stored = Mask.objects.filter(image_id=first.image_id).order_by("pk")
    assert [(m.id, m.rle) for m in first.masks] == [(m.pk, m.rle) for m in stored]


def test_a_manifest_cut_short_is_refused(tiny_model, tmp_path):
    dataset = filled_dataset("cut", 6)
    round_export.export_round(dataset, tmp_path / "r", tiny_model, with_embeddings=False)
    path = tmp_path / "r" / MANIFEST
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-1]))  # the end line lost
    with pytest.raises(ValueError, match="cut short"):
        read_round(tmp_path / "r")
