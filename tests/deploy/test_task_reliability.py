"""Celery set for not losing work: late acknowledgement, redelivery of a lost worker's task,
time limits inside the visibility timeout, and retries with backoff for transient errors, which
the services let through instead of recording them as the job's failure. (Redelivery with real
workers: tests/integration/.)"""

from __future__ import annotations

from importlib import import_module
from unittest import mock

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import OperationalError

from annotation import tasks
from annotation.models import AutomaticPassImage, Export, Stage
from annotation.routing import RESOURCES
from annotation.services import automatic, exports
from annotation.services.image_holds import change_stage
from deploy.celery import app
from tests import factories

pytestmark = pytest.mark.django_db

import_module("modeltrain.tasks")  # registered as the worker registers it (autodiscovery)
TASKS = sorted(name for name in app.tasks if name.startswith(("annotation.", "modeltrain.")))


@pytest.fixture
def eager_without_propagation(isolated_storage):
    """Tasks run inline; a retry runs inline again (Celery applies it at once, eagerly)."""
    saved = app.conf.task_eager_propagates
    app.conf.task_eager_propagates = False
    yield
    app.conf.task_eager_propagates = saved


def test_there_are_tasks_to_check():
    assert {"annotation.embed_image", "annotation.run_export"} <= set(TASKS)
    assert any(name.startswith("modeltrain.") for name in TASKS)


@pytest.mark.parametrize("name", TASKS)
def test_each_task_acks_late_has_limits_and_retries_transient_errors(name):
    task = app.tasks[name]
    assert task.acks_late and task.reject_on_worker_lost
    assert app.conf.worker_prefetch_multiplier == 1
    assert task.resource in RESOURCES
    assert 0 < task.soft_time_limit < task.time_limit
    assert task.time_limit < settings.VISIBILITY_TIMEOUT, "a running task is never handed out again"
    assert OperationalError in task.autoretry_for
    assert task.retry_backoff and task.retry_jitter and task.max_retries >= 3


def test_a_task_retries_a_transient_database_error_and_then_succeeds(eager_without_propagation):
    calls = []

    def flaky() -> int:
        calls.append(1)
        if len(calls) < 3:
            raise OperationalError("server closed the connection unexpectedly")
        return 7

    with mock.patch.object(tasks.image_holds, "expire_holds", side_effect=flaky):
        result = tasks.expire_holds_task.apply()

    assert len(calls) == 3
    assert result.state == "SUCCESS" and result.result == 7


def test_retries_end_after_max_retries(eager_without_propagation):
    down = mock.Mock(side_effect=OperationalError("could not connect to server"))

    with mock.patch.object(tasks.image_holds, "expire_holds", down):
        result = tasks.expire_holds_task.apply()

    assert down.call_count == tasks.MAX_RETRIES + 1
    assert result.state == "FAILURE" and isinstance(result.result, OperationalError)


def test_a_job_is_not_failed_by_a_transient_error_and_a_retry_finishes_it(
    dataset, isolated_storage, eager_without_propagation
):
    factories.add_image(dataset, seed=3)
    export = Export.objects.create(dataset=dataset, format=Export.Format.COCO)
    real_write = exports._write
    attempts = []

    def write_once_the_database_is_back(job, out_dir):
        attempts.append(1)
        if len(attempts) == 1:
            raise OperationalError("terminating connection due to administrator command")
        return real_write(job, out_dir)

    with mock.patch.object(exports, "_write", side_effect=write_once_the_database_is_back):
        result = tasks.run_export_task.apply(args=[export.pk])

    export.refresh_from_db()
    assert len(attempts) == 2 and result.result == "done"
    assert export.status == Export.Status.DONE and export.error == ""
    assert exports.export_file(export).is_file()


def test_a_soft_time_limit_is_recorded_as_the_jobs_failure(dataset, isolated_storage):
    export = Export.objects.create(dataset=dataset, format=Export.Format.COCO)

    with mock.patch.object(exports, "_write", side_effect=SoftTimeLimitExceeded()):
        assert exports.run_export(export) == Export.Status.FAILED

    export.refresh_from_db()
    assert export.status == Export.Status.FAILED and "SoftTimeLimitExceeded" in export.error
    assert not (exports.export_root() / str(export.pk)).exists()


def test_a_transient_error_on_a_pass_image_leaves_it_pending_for_the_retry(
    dataset, admin_user, tiny_model
):
    image = factories.add_image(dataset, 40, 32, seed=4)
    change_stage(dataset, [image.pk], Stage.FULLY_AUTOMATIC)
    run = automatic.launch_automatic_pass(
        dataset, admin_user, "automatic", config={"points_per_side": 2, "crop_n_layers": 0}
    )
    AutomaticPassImage.objects.filter(automatic_pass=run).update(status="pending", runs=0)
    with mock.patch.object(automatic, "generate_masks", side_effect=OperationalError("gone")):
        with pytest.raises(OperationalError):
            automatic.run_pass_image(run.pk, image.pk, force=True)

    item = AutomaticPassImage.objects.get(automatic_pass=run)
    assert item.status == "pending" and item.error == ""
