"""Writing, recording and removing per-image SA-1B documents: the compare-and-set, never
inside a transaction, files of older revisions and of deleted images removed, every document
stale after a recount. Transactional tests: documents are recorded only after a commit."""

from __future__ import annotations

import pytest
from django.db import transaction

from annotation.models import ImageDoc
from annotation.services import sa1b_docs
from annotation.services.export_format import ExportFilters
from annotation.services.storage import delete_dataset, delete_images
from annotation.services.tallies import recount_tallies
from tests.exports.conftest import add_mask, blob
from tests.exports.sa1b_docs_helpers import (
    assert_export_is_the_reference,
    make_images,
    valid_docs,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def images(dataset):
    return make_images(dataset)


def doc_files(tmp_path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "sa1b_docs").rglob("*") if p.is_file())


def test_refresh_records_the_documents_the_export_would_build(dataset, images, tmp_path):
    ids = [images[key].pk for key in "ABCDE"]
    assert sa1b_docs.refresh_docs(ids) == 5  # E has no mask: its document holds none
    assert valid_docs() == set(ids)
    assert sa1b_docs.refresh_docs(ids) == 0  # all current: nothing written again
    assert_export_is_the_reference(dataset, tmp_path / "out", ExportFilters())


def test_a_mask_changed_after_the_revision_was_read_records_nothing(
    dataset, images, tmp_path, monkeypatch
):
    """The compare-and-set: the revision is read, then the masks; a change in between (made
    here where it could happen, between the two reads) leaves no document recorded."""
    real = sa1b_docs.sa1b_annotation_rows

    def change_in_between(batch, failed):
        ImageDoc.objects.filter(image_id__in=[i for i, _, _ in batch]).update(revision=999)
        return real(batch, failed)

    monkeypatch.setattr(sa1b_docs, "sa1b_annotation_rows", change_in_between)
    a = images["A"]
    built = sa1b_docs.build_docs([(a.pk, a.width, a.height)], record=True)

    assert list(built) == [a.pk]  # the caller still gets the document, unrecorded
    assert ImageDoc.objects.get(image=a).doc_revision is None
    assert doc_files(tmp_path) == []


def test_documents_wait_for_the_commit_and_go_with_a_rollback(dataset, images, tmp_path):
    d = images["D"]
    with transaction.atomic():
        add_mask(d, blob(d, 30, 30, 5), "manual")
        assert sa1b_docs.refresh_docs([d.pk]) == 0
        assert doc_files(tmp_path) == []
    assert valid_docs() == {d.pk}  # written once committed, with the new mask
    assert_export_is_the_reference(dataset, tmp_path / "out", ExportFilters())

    class Rollback(Exception):
        pass

    b = images["B"]
    recorded, files = valid_docs(), doc_files(tmp_path)
    with pytest.raises(Rollback), transaction.atomic():
        add_mask(b, blob(b, 50, 10, 4), "manual")
        sa1b_docs.refresh_docs([b.pk])
        raise Rollback
    assert valid_docs() == recorded and doc_files(tmp_path) == files
    assert_export_is_the_reference(dataset, tmp_path / "after", ExportFilters())


def test_a_newer_document_removes_the_older_file(dataset, images, tmp_path):
    d = images["D"]
    sa1b_docs.refresh_docs([d.pk])
    [old] = doc_files(tmp_path)
    add_mask(d, blob(d, 30, 30, 5), "manual")
    sa1b_docs.refresh_docs([d.pk])
    [new] = doc_files(tmp_path)
    revision = ImageDoc.objects.get(image=d).revision
    assert old != new == f"{d.pk}-{revision}.json"


def test_deleting_images_and_datasets_removes_their_document_files(dataset, images, tmp_path):
    ids = [images[key].pk for key in "ABCD"]
    sa1b_docs.refresh_docs(ids)
    assert len(doc_files(tmp_path)) == 4

    delete_images([images["A"]])
    assert sorted(doc_files(tmp_path)) == sorted(
        f"{doc.image_id}-{doc.revision}.json" for doc in ImageDoc.objects.all()
    )
    assert not ImageDoc.objects.filter(image_id=images["A"].pk).exists()
    delete_dataset(dataset)
    assert doc_files(tmp_path) == [] and not ImageDoc.objects.exists()


def test_a_recount_after_a_bulk_load_makes_every_document_stale(dataset, images, tmp_path):
    ids = [images[key].pk for key in "ABCD"]
    # B's masks as if loaded behind the triggers' back: no row.
    ImageDoc.objects.filter(image_id=images["B"].pk).delete()
    sa1b_docs.refresh_docs([images[key].pk for key in "ACD"])

    recount_tallies()
    assert valid_docs() == set()
    assert ImageDoc.objects.filter(image_id__in=ids).count() == 4  # B has its row again
    assert_export_is_the_reference(dataset, tmp_path / "out", ExportFilters())
    assert valid_docs() == set(ids)
    assert len(doc_files(tmp_path)) == 4  # the older files went as the new ones came
