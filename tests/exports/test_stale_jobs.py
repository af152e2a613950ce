"""A job left "running" by a task that is gone (a killed worker, a lost machine) is marked
failed once it has run past its task's hard time limit plus a margin: by the periodic
bookkeeping task, and when the API reads it, so nobody sees "running" forever."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from annotation import tasks
from annotation.models import Export, ImportJob
from annotation.services.jobs import LOST_MARGIN_SECONDS
from modeltrain.models import TrainingRound
from registry.models import ModelVersion

pytestmark = pytest.mark.django_db

LIMIT = 3600
GONE = "the worker running this job is gone"


@pytest.fixture(autouse=True)
def _limits(settings):
    settings.CELERY_TASK_TIME_LIMIT = LIMIT
    settings.TRAINING_TASK_TIME_LIMIT = 2 * LIMIT


@pytest.fixture
def admin_api(client_for, dataset_admin):
    return client_for(dataset_admin)


def started(seconds_ago: float):
    return timezone.now() - timedelta(seconds=seconds_ago)


PAST_LIMIT = LIMIT + LOST_MARGIN_SECONDS + 60


def test_a_running_export_past_its_time_limit_reads_as_failed(admin_api, dataset):
    lost = Export.objects.create(dataset=dataset, status="running", started_at=started(PAST_LIMIT))
    alive = Export.objects.create(dataset=dataset, status="running", started_at=started(LIMIT))

    one = admin_api.get(f"/api/exports/{lost.pk}/").json()
    listed = {row["id"]: row for row in admin_api.get("/api/exports/").json()["results"]}

    assert one["status"] == "failed" and GONE in one["error"]
    assert one["finished_at"] is not None
    assert listed[lost.pk]["status"] == "failed"
    assert listed[alive.pk]["status"] == "running"  # within its limit: maybe still working


def test_a_dataset_export_list_shows_a_lost_export_as_failed(admin_api, dataset):
    Export.objects.create(dataset=dataset, status="running", started_at=started(PAST_LIMIT))

    (row,) = admin_api.get(f"/api/datasets/{dataset.pk}/exports/").json()

    assert row["status"] == "failed" and GONE in row["error"]


def test_a_running_import_past_its_time_limit_reads_as_failed(admin_api, dataset):
    job = ImportJob.objects.create(
        dataset=dataset, path="/x", status="running", started_at=started(PAST_LIMIT)
    )

    answer = admin_api.get(f"/api/import-jobs/{job.pk}/").json()

    assert answer["status"] == "failed" and GONE in answer["error"]


def test_the_bookkeeping_task_fails_every_kind_of_lost_job(dataset, other_dataset):
    export = Export.objects.create(
        dataset=dataset, status="running", started_at=started(PAST_LIMIT)
    )
    queued = Export.objects.create(dataset=dataset, status="queued")  # waiting is not lost
    job = ImportJob.objects.create(
        dataset=dataset, path="/x", status="running", started_at=started(PAST_LIMIT)
    )
    version = ModelVersion.objects.create(
        name="v0", model_type="vit_b", checkpoint="x.pt", encoder_key="k", trained_on="-"
    )
    # A round's limit is its own (TRAINING_TASK_TIME_LIMIT): past the import limit, not its own.
    young_round = TrainingRound.objects.create(
        dataset=dataset, parent=version, status="running", started_at=started(PAST_LIMIT)
    )
    old_round = TrainingRound.objects.create(  # one active round per dataset
        dataset=other_dataset, parent=version, status="running", started_at=started(3 * LIMIT)
    )

    counts = tasks.fail_lost_jobs_task.delay().get()

    assert counts == {"ImportJob": 1, "Export": 1, "TrainingRound": 1}
    for row in (export, job, old_round):
        row.refresh_from_db()
        assert row.status == "failed" and GONE in row.error
    for row, status in ((queued, "queued"), (young_round, "running")):
        row.refresh_from_db()
        assert row.status == status
    assert tasks.fail_lost_jobs_task.delay().get() == {
        "ImportJob": 0,
        "Export": 0,
        "TrainingRound": 0,
    }


def test_a_task_delivered_again_after_its_job_was_found_lost_does_nothing(dataset):
    export = Export.objects.create(
        dataset=dataset, status="running", started_at=started(PAST_LIMIT)
    )
    tasks.fail_lost_jobs_task.delay().get()

    assert tasks.run_export_task.delay(export.pk).get() == "failed"
    export.refresh_from_db()
    assert GONE in export.error


def test_a_lost_training_round_reads_as_failed_through_the_api(
    admin_client, dataset, tiny_model, settings
):
    long_ago = timezone.now() - timedelta(seconds=settings.TRAINING_TASK_TIME_LIMIT + 3600)
    run = TrainingRound.objects.create(
        dataset=dataset, parent=tiny_model, status="running", started_at=long_ago
    )

    answer = admin_client.get(f"/api/training-rounds/{run.pk}/").json()

    assert answer["status"] == "failed" and GONE in answer["error"]
