"""Importing images: formats, EXIF, duplicates, downscale, bad files rejected one by one."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from PIL import Image as PILImage

from annotation.models import EmbeddingStatus, Image
from annotation.services.imports import Candidate, import_images, zip_candidates
from tests import factories

pytestmark = pytest.mark.django_db


def candidates(**files: bytes) -> list[Candidate]:
    return [Candidate(name, read=lambda data=data: data) for name, data in files.items()]


def test_imports_each_supported_format(dataset):
    files = {
        f"a.{fmt.lower()}": factories.image_bytes(40, 30, seed=i, fmt=fmt)
        for i, fmt in enumerate(["PNG", "JPEG", "BMP", "WEBP", "TIFF"])
    }
    report = import_images(dataset, candidates(**files))

    assert [item["name"] for item in report.imported] == list(files)
    assert not report.rejected and not report.duplicates
    formats = set(Image.objects.values_list("format", flat=True))
    assert formats == {"PNG", "JPEG", "BMP", "WEBP", "TIFF"}
    tiff = Image.objects.get(format="TIFF")
    assert tiff.file.endswith(".png")  # browsers cannot show TIFF: stored re-encoded


def test_stores_the_file_under_its_hash_and_records_its_size(dataset):
    data = factories.image_bytes(50, 20)
    report = import_images(dataset, candidates(**{"x.png": data}))

    image = Image.objects.get(pk=report.imported[0]["id"])
    digest = hashlib.sha256(data).hexdigest()
    assert image.sha256 == digest == image.content_sha256  # stored as it came
    assert image.file == f"images/{dataset.pk}/{digest[:2]}/{digest}.png"
    assert (Path(settings.MEDIA_ROOT) / image.file).read_bytes() == data
    assert (image.width, image.height, image.file_size) == (50, 20, len(data))
    assert image.original_name == "x.png" and image.stage == 1 and image.status == "pending"
    assert not list(Path(settings.MEDIA_ROOT).rglob("*.tmp"))


def test_applies_exif_orientation(dataset):
    data = factories.jpeg_with_orientation(60, 20, orientation=6)  # rotate 90 degrees
    report = import_images(dataset, candidates(**{"rotated.jpg": data}))

    image = Image.objects.get(pk=report.imported[0]["id"])
    assert (image.width, image.height) == (20, 60)
    assert report.imported[0]["transformed"] is True
    assert image.sha256 == hashlib.sha256(data).hexdigest() != image.content_sha256
    with PILImage.open(Path(settings.MEDIA_ROOT) / image.file) as stored:
        assert stored.size == (20, 60)


def test_downscales_so_the_short_side_is_at_most_n(dataset):
    report = import_images(
        dataset, candidates(**{"big.png": factories.image_bytes(300, 120)}), short_side=60
    )

    assert (report.imported[0]["width"], report.imported[0]["height"]) == (150, 60)


def test_short_side_larger_than_the_image_keeps_it(dataset):
    report = import_images(
        dataset, candidates(**{"s.png": factories.image_bytes(30, 20)}), short_side=1500
    )
    assert (report.imported[0]["width"], report.imported[0]["height"]) == (30, 20)


def test_duplicates_are_skipped_and_reported_with_the_existing_id(dataset):
    data = factories.image_bytes(seed=5)
    first = import_images(dataset, candidates(**{"one.png": data}))
    again = import_images(dataset, candidates(**{"copy.png": data, "two.png": data}))

    existing = first.imported[0]["id"]
    assert again.duplicates == [
        {"name": "copy.png", "existing_id": existing},
        {"name": "two.png", "existing_id": existing},
    ]
    assert Image.objects.count() == 1


def test_the_same_file_may_live_in_two_datasets(dataset, other_dataset):
    data = factories.image_bytes(seed=9)
    import_images(dataset, candidates(**{"a.png": data}))
    report = import_images(other_dataset, candidates(**{"a.png": data}))

    assert len(report.imported) == 1 and Image.objects.count() == 2


def test_each_bad_file_is_rejected_with_its_reason_and_the_good_ones_are_imported(
    dataset, settings
):
    settings.IMPORT_MAX_PIXELS = 100 * 100
    png = factories.image_bytes(40, 30, seed=1)
    report = import_images(
        dataset,
        candidates(
            **{
                "good.png": png,
                "truncated.png": factories.image_bytes(80, 60, seed=2)[:200],
                "notes.txt": b"hello, not an image",
                "bomb.png": factories.image_bytes(200, 200, seed=3),
                "empty.png": b"",
                "also-good.jpg": factories.image_bytes(30, 30, seed=4, fmt="JPEG"),
            }
        ),
    )

    assert [item["name"] for item in report.imported] == ["good.png", "also-good.jpg"]
    reasons = {item["name"]: item["reason"] for item in report.rejected}
    assert set(reasons) == {"truncated.png", "notes.txt", "bomb.png", "empty.png"}
    assert "truncated" in reasons["truncated.png"]
    assert "not an image" in reasons["notes.txt"]
    assert "over the limit of 10000 pixels" in reasons["bomb.png"]
    assert "empty" in reasons["empty.png"]
    assert Image.objects.count() == 2


def test_files_over_the_byte_limit_are_rejected_before_decoding(dataset, settings):
    settings.IMPORT_MAX_FILE_BYTES = 100
    report = import_images(dataset, candidates(**{"a.png": factories.image_bytes()}))

    assert "over the limit of 100 bytes" in report.rejected[0]["reason"]


def test_zip_entries_with_dotdot_or_absolute_paths_are_rejected_one_by_one(dataset):
    archive = factories.zip_bytes(
        {
            "ok/a.png": factories.image_bytes(seed=1),
            "../evil.png": factories.image_bytes(seed=2),
            "x/../../evil2.png": factories.image_bytes(seed=3),
            "/etc/abs.png": factories.image_bytes(seed=4),
            "C:/win.png": factories.image_bytes(seed=5),
            "ok/b.jpg": factories.image_bytes(seed=6, fmt="JPEG"),
        }
    )
    import io

    report = import_images(dataset, zip_candidates("batch.zip", io.BytesIO(archive)))

    assert [item["name"] for item in report.imported] == [
        "batch.zip/ok/a.png",
        "batch.zip/ok/b.jpg",
    ]
    assert {item["name"] for item in report.rejected} == {
        "batch.zip/../evil.png",
        "batch.zip/x/../../evil2.png",
        "batch.zip//etc/abs.png",
        "batch.zip/C:/win.png",
    }
    assert all("unsafe path" in item["reason"] for item in report.rejected)
    assert not list(Path(settings.MEDIA_ROOT).parent.rglob("evil*"))


def test_a_corrupt_zip_is_one_rejection(dataset):
    import io

    report = import_images(dataset, zip_candidates("bad.zip", io.BytesIO(b"PK\x03\x04garbage")))
    assert report.rejected[0]["name"] == "bad.zip"
    assert "zip" in report.rejected[0]["reason"]


def test_import_queues_the_embedding_on_the_gpu_queue_after_commit(
    dataset, tiny_model, django_capture_on_commit_callbacks
):
    from annotation.tasks import embed_image_task

    assert embed_image_task.resource == "gpu"
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        report = import_images(dataset, candidates(**{"a.png": factories.image_bytes(seed=1)}))
    image = Image.objects.get(pk=report.imported[0]["id"])
    assert image.embedding_status == EmbeddingStatus.QUEUED
    assert len(callbacks) == 1

    callbacks[0]()  # what the commit does: the task runs (inline in tests)

    image.refresh_from_db()
    assert image.embedding_status == EmbeddingStatus.DONE
    assert image.encoder_key == tiny_model.encoder_key


def test_a_failed_insert_leaves_neither_row_nor_file(dataset, monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(Image.objects, "create", fail)
    with pytest.raises(RuntimeError):
        import_images(dataset, candidates(**{"a.png": factories.image_bytes()}))

    assert not Image.objects.exists()
    media = Path(settings.MEDIA_ROOT)
    assert not [p for p in media.rglob("*") if p.is_file()] if media.exists() else True


def test_negative_short_side_is_refused(dataset):
    from annotation.services.errors import InvalidInput

    with pytest.raises(InvalidInput, match="short_side"):
        import_images(dataset, [], short_side=-1)


def test_decoded_pixels_match_the_stored_file(dataset):
    report = import_images(dataset, candidates(**{"a.bmp": factories.image_bytes(fmt="BMP")}))
    image = Image.objects.get(pk=report.imported[0]["id"])
    with PILImage.open(Path(settings.MEDIA_ROOT) / image.file) as stored:
        assert np.array_equal(np.asarray(stored.convert("RGB")), factories.shapes_array())
