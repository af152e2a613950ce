"""Export jobs: queued on commit, run by the cpu task with progress, downloaded; a failed or
interrupted export leaves nothing under its final name."""

from __future__ import annotations

import json

import pytest

from annotation.models import Export
from annotation.services import exports, sa1b
from annotation.services.exports import export_root, queue_export, run_export
from annotation.services.sa1b import export_sa1b
from annotation.tasks import run_export_task
from tests import factories
from tests.exports.conftest import add_mask, blob, shard_records

pytestmark = pytest.mark.django_db


@pytest.fixture
def three_images(dataset):
    images = [factories.add_image(dataset, seed=s) for s in range(3)]
    for image in images:
        add_mask(image, blob(image, 20, 20, 6))
        add_mask(image, blob(image, 45, 25, 4), "automatic", predicted_iou=0.5)
    return images


def fail_on_call(monkeypatch, n: int, exc: BaseException):
    """Make writing the n-th image's JSON raise ``exc``."""
    real = sa1b._record
    calls = []

    def flaky(*args):
        calls.append(args)
        if len(calls) == n:
            raise exc
        return real(*args)

    monkeypatch.setattr(sa1b, "_record", flaky)


@pytest.mark.parametrize("exc", [RuntimeError("disk on fire"), KeyboardInterrupt()])
def test_an_export_failing_midway_leaves_no_file_under_the_final_name(
    three_images, tmp_path, monkeypatch, exc
):
    fail_on_call(monkeypatch, 3, exc)  # shard_size 1: two shards are complete by then
    parent = tmp_path / "exports"
    with pytest.raises(type(exc)):
        export_sa1b(three_images[0].dataset, parent / "out", shard_size=1)

    assert not (parent / "out").exists()
    assert list(parent.iterdir()) == []  # the staging folder is gone too


def test_an_existing_nonempty_folder_is_refused(three_images, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(Exception, match="already exists and is not an empty folder"):
        export_sa1b(three_images[0].dataset, tmp_path / "out")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["keep.txt"]


def test_queued_export_runs_on_commit_with_progress(
    three_images, dataset_admin, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        export = queue_export(
            three_images[0].dataset,
            dataset_admin,
            filters={"source": "automatic"},
            shard_size=2,
        )
    export.refresh_from_db()
    assert export.status == Export.Status.DONE, export.error
    assert (export.progress_done, export.progress_total) == (3, 3)
    assert export.report["masks"] == 3 and len(export.report["shards"]) == 2
    out = export_root() / str(export.pk)
    assert export.output == str(out)
    records = shard_records(out)
    assert sorted(records) == [im.pk for im in three_images]
    assert all(len(r["annotations"]) == 1 for r in records.values())
    assert run_export_task(export.pk) == "done"  # a finished export is not run again


def test_failed_job_records_the_error_and_leaves_no_output(
    three_images, dataset_admin, monkeypatch
):
    export = Export.objects.create(dataset=three_images[0].dataset, shard_size=1)
    fail_on_call(monkeypatch, 2, OSError("No space left on device"))
    assert run_export(export) == Export.Status.FAILED

    export.refresh_from_db()
    assert export.error == "OSError: No space left on device"
    assert export.finished_at is not None
    assert not (export_root() / str(export.pk)).exists()
    assert list(export_root().iterdir()) == []


def test_an_interrupted_job_starts_over_cleanly(three_images):
    export = Export.objects.create(dataset=three_images[0].dataset, status="running")
    leftover = export_root() / f".{export.pk}.deadbeef.partial"
    leftover.mkdir(parents=True)
    (leftover / "sa_000000.tar").write_bytes(b"half")

    assert run_export(export) == Export.Status.DONE
    assert not leftover.exists()
    assert len(shard_records(export_root() / str(export.pk))) == 3


def test_coco_job_writes_one_json(three_images, dataset_admin):
    export = queue_export(three_images[0].dataset, dataset_admin, format="coco")
    run_export(export)
    export.refresh_from_db()
    assert export.status == "done", export.error
    doc = json.loads(exports.export_file(export).read_text())
    assert len(doc["images"]) == 3 and len(doc["annotations"]) == 6


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"format": "zip"}, "format must be one of"),
        ({"filters": {"stage": 7}}, "stage must be one of"),
        ({"filters": {"min_predicted_iou": 1.5}}, "min_predicted_iou must be a number"),
        ({"filters": {"model_version": 999}}, "no model version with id 999"),
        ({"filters": {"colour": "red"}}, "unknown export filters: colour"),
        ({"shard_size": 0}, None),  # 0 means the default
        ({"shard_size": -3}, "shard_size must be from 1"),
    ],
)
def test_queue_export_checks_its_input(dataset, dataset_admin, body, message):
    if message is None:
        assert queue_export(dataset, dataset_admin, **body).shard_size == 1000
        return
    with pytest.raises(Exception, match=message):
        queue_export(dataset, dataset_admin, **body)
    assert not Export.objects.exists()


def test_progress_is_reported_from_the_start_to_the_end(three_images, tmp_path, monkeypatch):
    monkeypatch.setattr(sa1b, "PROGRESS_EVERY", 2)
    calls = []
    export_sa1b(three_images[0].dataset, tmp_path / "out", progress=lambda *a: calls.append(a))
    assert calls == [(0, 3), (2, 3), (3, 3)]


def test_the_task_runs_on_the_cpu_queue_and_ignores_deleted_exports():
    from annotation.routing import route_by_resource

    assert route_by_resource(run_export_task.name, (), {}, {}, task=run_export_task) == {
        "queue": "cpu"
    }
    assert run_export_task(987654) == "gone"
