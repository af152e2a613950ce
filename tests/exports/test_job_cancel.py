"""Cancelling exports and import jobs: a queued or running job becomes "cancelled" and stays so
(a task that starts or finishes later writes nothing), an ended one answers 409, only the
dataset's admins (and staff) may, and a cancelled export leaves no file behind."""

from __future__ import annotations

import pytest

from annotation import tasks
from annotation.models import Export, Image, ImportJob
from annotation.services import exports, imports, jobs, sa1b
from annotation.services.exports import export_dir, export_root
from tests import factories
from tests.exports.conftest import add_mask, blob

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_api(client_for, dataset_admin):
    return client_for(dataset_admin)


@pytest.fixture
def three_images(dataset):
    images = [factories.add_image(dataset, seed=s) for s in range(3)]
    for image in images:
        add_mask(image, blob(image, 20, 20, 6))
    return images


def new_export(dataset, **fields) -> Export:
    return Export.objects.create(dataset=dataset, shard_size=1, **fields)


def image_folder(tmp_path, count: int):
    folder = tmp_path / "incoming"
    folder.mkdir()
    for seed in range(count):
        (folder / f"{seed}.png").write_bytes(factories.image_bytes(seed=seed))
    return folder


def test_a_queued_export_is_cancelled_and_its_task_then_does_nothing(
    admin_api, dataset, three_images
):
    export = new_export(dataset)

    answer = admin_api.post(f"/api/exports/{export.pk}/cancel/")

    assert answer.status_code == 200, answer.content
    assert answer.json()["status"] == "cancelled"
    assert tasks.run_export_task.delay(export.pk).get() == "cancelled"
    export.refresh_from_db()
    assert export.status == "cancelled" and export.started_at is None
    assert not export_dir(export).exists()


def test_a_running_export_cancelled_midway_stays_cancelled_and_leaves_no_files(
    admin_api, dataset, three_images, monkeypatch
):
    export = new_export(dataset)
    real = sa1b._record
    answers = []

    def cancel_while_writing(*args):
        if not answers:  # the admin cancels while the worker writes the first image
            answers.append(admin_api.post(f"/api/exports/{export.pk}/cancel/"))
        return real(*args)

    monkeypatch.setattr(sa1b, "_record", cancel_while_writing)

    assert tasks.run_export_task.delay(export.pk).get() == "cancelled"

    assert answers[0].status_code == 200 and answers[0].json()["status"] == "cancelled"
    export.refresh_from_db()
    assert export.status == "cancelled" and export.report == {} and export.output == ""
    assert list(export_root().iterdir()) == []  # neither the folder nor a partial one


def test_an_export_finishing_after_its_cancel_does_not_overwrite_it(
    dataset, three_images, monkeypatch
):
    export = new_export(dataset)
    real_write = exports._write

    def write_then_cancelled(job, out_dir):
        report = real_write(job, out_dir)  # the files are complete ...
        Export.objects.filter(pk=job.pk).update(status="cancelled")  # ... and then the cancel
        return report

    monkeypatch.setattr(exports, "_write", write_then_cancelled)

    assert exports.run_export(export) == "cancelled"
    export.refresh_from_db()
    assert export.status == "cancelled" and export.report == {}
    assert not export_dir(export).exists()


def test_cancelling_an_export_removes_its_partial_files(admin_api, dataset):
    export = new_export(dataset, status="running")
    partial = export_root() / f".{export.pk}.abc.partial"
    partial.mkdir(parents=True)
    (partial / "sa_000000.tar").write_bytes(b"half a shard")

    assert admin_api.post(f"/api/exports/{export.pk}/cancel/").status_code == 200

    assert list(export_root().iterdir()) == []


@pytest.mark.parametrize("ended", ["done", "failed", "cancelled"])
def test_cancelling_an_ended_export_is_a_conflict(admin_api, dataset, ended):
    export = new_export(dataset, status=ended)

    answer = admin_api.post(f"/api/exports/{export.pk}/cancel/")

    assert answer.status_code == 409
    assert ended in answer.json()["detail"]
    export.refresh_from_db()
    assert export.status == ended


def test_staff_may_cancel_an_export(admin_client, dataset):
    export = new_export(dataset)
    assert admin_client.post(f"/api/exports/{export.pk}/cancel/").status_code == 200


@pytest.mark.parametrize("who", ["annotator_client", "outsider_client"])
def test_annotators_and_outsiders_cannot_cancel_jobs(request, dataset, who):
    client = request.getfixturevalue(who)
    export = new_export(dataset)
    job = ImportJob.objects.create(dataset=dataset, path="/nowhere")

    assert client.post(f"/api/exports/{export.pk}/cancel/").status_code in (403, 404)
    assert client.post(f"/api/import-jobs/{job.pk}/cancel/").status_code in (403, 404)

    export.refresh_from_db()
    job.refresh_from_db()
    assert export.status == job.status == "queued"


def test_a_queued_import_is_cancelled_and_its_task_then_imports_nothing(
    admin_api, dataset, tmp_path
):
    job = ImportJob.objects.create(dataset=dataset, path=str(image_folder(tmp_path, 2)))

    answer = admin_api.post(f"/api/import-jobs/{job.pk}/cancel/")

    assert answer.status_code == 200, answer.content
    assert answer.json()["status"] == "cancelled"
    assert tasks.import_path_task.delay(job.pk).get() == "cancelled"
    assert not Image.objects.filter(dataset=dataset).exists()


def test_a_running_import_stops_at_its_cancel_and_keeps_what_it_imported(
    admin_api, dataset, tmp_path, monkeypatch
):
    job = ImportJob.objects.create(dataset=dataset, path=str(image_folder(tmp_path, 3)))
    monkeypatch.setattr(jobs, "STOP_CHECK_SECONDS", 0.0)
    real = imports._import_one
    answers = []

    def cancel_after_the_first(*args):
        real(*args)
        if not answers:
            answers.append(admin_api.post(f"/api/import-jobs/{job.pk}/cancel/"))

    monkeypatch.setattr(imports, "_import_one", cancel_after_the_first)

    assert tasks.import_path_task.delay(job.pk).get() == "cancelled"

    assert answers[0].status_code == 200
    job.refresh_from_db()
    assert job.status == "cancelled" and job.report == {}
    assert Image.objects.filter(dataset=dataset).count() == 1


def test_cancelling_an_ended_import_is_a_conflict(admin_api, dataset):
    job = ImportJob.objects.create(dataset=dataset, path="/nowhere", status="done")

    answer = admin_api.post(f"/api/import-jobs/{job.pk}/cancel/")

    assert answer.status_code == 409
    assert "done" in answer.json()["detail"]
