"""The SA-1B export copies per-image documents where they are current and whole, and its
output (JSON bytes, failed masks, counts) is the same as built from the mask rows whatever the
documents' state: absent, present, stale after changes on any path, tampered with, unwritable.
Transactional tests: documents are recorded only outside a transaction."""

from __future__ import annotations

import pytest
from django.db import connection

from annotation.models import ImageDoc, Mask
from annotation.services.export_format import ExportFilters
from tests import factories
from tests.exports.sa1b_docs_helpers import (
    FILTERS,
    assert_export_is_the_reference,
    filters_of,
    make_images,
    valid_docs,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def images(dataset):
    return make_images(dataset)


def with_masks(images) -> set[int]:
    return {images[key].pk for key in "ABCD"}


def mask_rows_read(queries: list[str]) -> int:
    return sum('"annotation_mask"."rle"' in sql for sql in queries)


def test_a_cold_export_records_documents_and_warm_exports_copy_them(dataset, images, tmp_path):
    assert valid_docs() == set()
    assert_export_is_the_reference(dataset, tmp_path / "cold", ExportFilters())
    assert valid_docs() == with_masks(images)

    for n, raw in enumerate(FILTERS):
        queries: list[str] = []
        manifest = assert_export_is_the_reference(
            dataset, tmp_path / f"warm-{n}", filters_of(raw, images), queries
        )
        assert mask_rows_read(queries) == 0, raw
        assert manifest["filters"] == filters_of(raw, images).as_dict()


def test_a_first_export_with_filters_records_every_mask_of_its_images(dataset, images, tmp_path):
    filters = ExportFilters(source="manual")
    assert_export_is_the_reference(dataset, tmp_path / "manual", filters)
    assert valid_docs() == {images["A"].pk, images["D"].pk}  # the images that filter selects

    queries: list[str] = []
    assert_export_is_the_reference(dataset, tmp_path / "all", ExportFilters(), queries)
    assert mask_rows_read(queries) == 1  # one batch: B and C, read from their rows
    assert valid_docs() == with_masks(images)


def test_changes_through_the_api_and_raw_sql_make_documents_stale(
    dataset, images, annotator_client, tmp_path
):
    assert_export_is_the_reference(dataset, tmp_path / "0", ExportFilters())
    a, b, d = images["A"], images["B"], images["D"]

    created = annotator_client.post(
        "/api/masks/", {"image": d.pk, "rle": factories.rect_rle(d, 2, 3, 9, 12)}, format="json"
    )
    assert created.status_code == 201
    assert valid_docs() == with_masks(images) - {d.pk}
    for n, raw in enumerate(FILTERS):
        assert_export_is_the_reference(dataset, tmp_path / f"saved-{n}", filters_of(raw, images))
    assert valid_docs() == with_masks(images)

    mask = created.json()
    edited = annotator_client.patch(
        f"/api/masks/{mask['id']}/",
        {"rle": factories.rect_rle(d, 0, 0, 4, 5), "version": mask["version"]},
        format="json",
    )
    assert edited.status_code == 200
    assert valid_docs() == with_masks(images) - {d.pk}
    assert_export_is_the_reference(dataset, tmp_path / "edited", ExportFilters())

    version = edited.json()["version"]
    deleted = annotator_client.delete(f"/api/masks/{mask['id']}/?version={version}")
    assert deleted.status_code == 204
    assert valid_docs() == with_masks(images) - {d.pk}
    assert_export_is_the_reference(dataset, tmp_path / "deleted", ExportFilters(stage=1))

    # A row changed behind every service's back: the trigger sees it all the same.
    automatic = Mask.objects.filter(image=b, source="automatic").order_by("pk").first()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE annotation_mask SET predicted_iou = 0.25 WHERE id = %s", [automatic.pk]
        )
    assert valid_docs() == with_masks(images) - {b.pk}
    for n, raw in enumerate(FILTERS):
        assert_export_is_the_reference(dataset, tmp_path / f"raw-{n}", filters_of(raw, images))

    # A mask prompt changes the fallback point of a mask stored without one.
    manual = Mask.objects.get(image=a, source="manual")
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE annotation_maskprompt SET points = %s WHERE mask_id = %s",
            ["[[1.0, 1.0], [30.0, 22.0]]", manual.pk],
        )
    assert valid_docs() == with_masks(images) - {a.pk}
    assert_export_is_the_reference(dataset, tmp_path / "prompt", ExportFilters())
    assert valid_docs() == with_masks(images)


def test_a_tampered_or_missing_file_is_rebuilt_not_trusted(dataset, images, tmp_path):
    from annotation.services.sa1b_docs import doc_path

    assert_export_is_the_reference(dataset, tmp_path / "0", ExportFilters())
    a, b = (ImageDoc.objects.get(image=images[key]) for key in "AB")
    path_a, path_b = doc_path(a.image_id, a.revision), doc_path(b.image_id, b.revision)
    data = bytearray(path_a.read_bytes())
    at = data.index(b'"counts": "') + 12
    data[at] = ord("A") if data[at] != ord("A") else ord("B")  # same size, another mask
    path_a.write_bytes(bytes(data))
    path_b.unlink()

    for n, raw in enumerate(FILTERS):
        assert_export_is_the_reference(dataset, tmp_path / f"t-{n}", filters_of(raw, images))
    assert path_a.read_bytes() != bytes(data) and path_b.is_file()  # written again
    assert valid_docs() == with_masks(images)


def test_an_unwritable_document_folder_does_not_fail_the_export(
    dataset, images, tmp_path, settings
):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("in the way")
    settings.SA1B_DOC_DIR = blocker

    for n, raw in enumerate(FILTERS[:4]):
        assert_export_is_the_reference(dataset, tmp_path / f"{n}", filters_of(raw, images))
    assert not ImageDoc.objects.filter(doc_revision__isnull=False).exists()


def test_an_export_inside_a_transaction_records_nothing(dataset, images, tmp_path):
    from django.db import transaction

    with transaction.atomic():
        assert_export_is_the_reference(dataset, tmp_path / "0", ExportFilters())
    assert valid_docs() == set()
    assert not (tmp_path / "sa1b_docs").exists()
