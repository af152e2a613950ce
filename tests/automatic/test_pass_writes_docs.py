"""A fully automatic pass writes each image's SA-1B document once its masks are committed, so
the export that follows copies it; a pre-fill (stage 2, edited by people next) does not, and a
document that cannot be written does not fail the pass."""

from __future__ import annotations

import pytest

from annotation.models import ImageDoc, Stage
from annotation.services import automatic
from annotation.services.export_format import ExportFilters
from annotation.services.image_holds import change_stage
from tests import factories
from tests.automatic.conftest import RELAXED
from tests.exports.sa1b_docs_helpers import assert_export_is_the_reference, valid_docs

pytestmark = pytest.mark.django_db(transaction=True)


def mask_rows_read(queries: list[str]) -> int:
    return sum('"annotation_mask"."rle"' in sql for sql in queries)


def test_a_pass_writes_the_documents_the_export_then_copies(
    dataset, dataset_admin, stage3_images, tmp_path
):
    run = automatic.launch_automatic_pass(dataset, dataset_admin, "automatic", config=RELAXED)
    automatic.run_automatic_pass(run.pk)

    assert valid_docs() == {image.pk for image in stage3_images}
    queries: list[str] = []
    manifest = assert_export_is_the_reference(dataset, tmp_path / "out", ExportFilters(), queries)
    # Every mask of the pass is stored with its RLE's own box and area, so none fails the
    # export's check of stored rows (the generator's box is Meta's, one pixel short).
    assert manifest["failed_masks"] == [] and manifest["masks"] == 24
    assert mask_rows_read(queries) == 0


def test_a_prefill_pass_writes_no_document(dataset, dataset_admin, tiny_model):
    images = [factories.add_image(dataset, 40, 32, seed=seed) for seed in (1, 2)]
    change_stage(dataset, [image.pk for image in images], Stage.SEMI_AUTOMATIC)
    run = automatic.launch_automatic_pass(dataset, dataset_admin, "prefill", config=RELAXED)
    automatic.run_automatic_pass(run.pk)

    assert run.items.filter(status="done").count() == 2
    assert not ImageDoc.objects.filter(doc_revision__isnull=False).exists()


def test_a_document_that_cannot_be_written_does_not_fail_the_pass(
    dataset, dataset_admin, stage3_images, tmp_path, settings
):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("in the way")
    settings.SA1B_DOC_DIR = blocker
    run = automatic.launch_automatic_pass(dataset, dataset_admin, "automatic", config=RELAXED)
    automatic.run_automatic_pass(run.pk)

    run.refresh_from_db()
    assert run.status == "done" and run.items.filter(status="done").count() == 2
    assert not ImageDoc.objects.filter(doc_revision__isnull=False).exists()
