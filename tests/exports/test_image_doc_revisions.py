"""An image's revision (ImageDoc) is raised by the database on every write to its masks or
their prompts, whoever writes them; on PostgreSQL once per statement, however many rows."""

from __future__ import annotations

import importlib
from types import SimpleNamespace

import pytest
from django.db import connection

from annotation.models import ImageDoc, Mask, MaskPrompt
from engine import rle as rle_codec
from tests.exports.conftest import add_jpeg_image, add_mask, blob

pytestmark = pytest.mark.django_db


def revision(image) -> int | None:
    row = ImageDoc.objects.filter(image=image).first()
    return None if row is None else row.revision


def unsaved_masks(image, n: int) -> list[Mask]:
    pixels = blob(image, 20, 20, 5)
    rle = rle_codec.encode(pixels)
    fields = {"bbox": rle_codec.bbox_xywh(rle), "area": rle_codec.area(rle)}
    return [Mask(image=image, rle=rle, source="automatic", stage=3, **fields) for _ in range(n)]


def test_every_kind_of_write_raises_the_revision(dataset):
    image, other = add_jpeg_image(dataset, seed=1), add_jpeg_image(dataset, seed=2)
    assert revision(image) is None
    mask = add_mask(image, blob(image, 20, 20, 6))
    first = revision(image)
    assert first is not None and first >= 1

    Mask.objects.filter(pk=mask.pk).update(predicted_iou=0.5)
    assert revision(image) == first + 1
    with connection.cursor() as cursor:
        cursor.execute("UPDATE annotation_mask SET area = area WHERE id = %s", [mask.pk])
    assert revision(image) == first + 2

    MaskPrompt.objects.create(mask=mask, points=[[1.0, 2.0]], labels=[1])
    assert revision(image) == first + 3
    MaskPrompt.objects.filter(mask=mask).update(points=[[3.0, 4.0]])
    assert revision(image) == first + 4

    add_mask(other, blob(other, 10, 10, 4))
    before_other = revision(other)
    Mask.objects.filter(pk=mask.pk).update(image=other)  # a mask moved: both images changed
    assert revision(image) == first + 5 and revision(other) == before_other + 1

    MaskPrompt.objects.filter(mask=mask).delete()
    Mask.objects.filter(pk=mask.pk).delete()
    assert revision(other) == before_other + 3


def test_a_statement_of_many_rows_raises_the_revision(dataset):
    image = add_jpeg_image(dataset, seed=3)
    Mask.objects.bulk_create(unsaved_masks(image, 100))
    assert revision(image) >= 1
    before = revision(image)
    Mask.objects.filter(image=image).update(predicted_iou=0.7)
    assert revision(image) > before


@pytest.mark.postgres
def test_postgresql_raises_it_once_per_statement(dataset):
    image, other = add_jpeg_image(dataset, seed=4), add_jpeg_image(dataset, seed=5)
    Mask.objects.bulk_create(unsaved_masks(image, 100) + unsaved_masks(other, 100))
    assert revision(image) == revision(other) == 1

    Mask.objects.filter(image__in=[image, other]).update(predicted_iou=0.7)
    assert revision(image) == revision(other) == 2
    Mask.objects.filter(image=image).delete()
    assert revision(image) == 3 and revision(other) == 2


def test_the_triggers_survive_the_sqlite_table_rebuild_step(dataset):
    """Migrations that alter annotation_mask end with ``recreate_sqlite_triggers`` (on SQLite
    the table is rebuilt and its triggers dropped); it must put these back too."""
    step = importlib.import_module("annotation.migrations.0011_labels_and_external_ids")
    docs = importlib.import_module("annotation.migrations.0014_image_docs")
    with connection.cursor() as cursor:
        # The schema editor's part the step uses (a real one cannot open inside a test's
        # transaction on SQLite).
        editor = SimpleNamespace(connection=connection, execute=cursor.execute)
        if connection.vendor == "sqlite":  # what a rebuild does to the table's triggers
            for statement in docs.SQLITE_DROP:
                cursor.execute(statement)
        step.recreate_sqlite_triggers(None, editor)
    image = add_jpeg_image(dataset, seed=6)
    mask = add_mask(image, blob(image, 20, 20, 6))
    before = revision(image)
    Mask.objects.filter(pk=mask.pk).update(area=mask.area)
    assert before >= 1 and revision(image) == before + 1
