"""Celery tasks: routed by resource, ids in, idempotent."""

from __future__ import annotations

import pytest

from annotation import tasks
from annotation.models import EmbeddingStatus, Image, ImportJob
from annotation.services.embeddings import embedding_store
from deploy.celery import app as celery_app
from tests import factories


@pytest.mark.parametrize(
    ("task", "queue"),
    [
        (tasks.embed_image_task, "gpu"),
        (tasks.import_path_task, "cpu"),
        (tasks.expire_holds_task, "cpu"),
    ],
)
def test_tasks_are_routed_to_the_queue_of_their_resource(task, queue):
    route = celery_app.amqp.router.route({}, task.name, (), {}, task)

    assert route["queue"].name == queue


@pytest.mark.django_db
def test_embed_image_task_is_idempotent(image, tiny_model):
    assert tasks.embed_image_task.delay(image.pk).get() is True
    path = embedding_store().path(image.content_sha256, tiny_model.encoder_key)
    mtime = path.stat().st_mtime_ns

    assert tasks.embed_image_task.delay(image.pk).get() is True

    image.refresh_from_db()
    assert image.embedding_status == EmbeddingStatus.DONE
    assert path.stat().st_mtime_ns >= mtime
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


@pytest.mark.django_db
def test_embed_image_task_for_a_deleted_image_does_nothing(tiny_model):
    assert tasks.embed_image_task.delay(987654).get() is False


@pytest.mark.django_db
def test_import_path_task_runs_the_job_once_and_keeps_its_report(dataset, tmp_path, admin_user):
    folder = tmp_path / "incoming"
    folder.mkdir()
    (folder / "a.png").write_bytes(factories.image_bytes(seed=1))
    (folder / "b.txt").write_bytes(b"nope")
    job = ImportJob.objects.create(dataset=dataset, path=str(folder), created_by=admin_user)

    assert tasks.import_path_task.delay(job.pk).get() == "done"
    assert tasks.import_path_task.delay(job.pk).get() == "done"  # a redelivery does nothing

    job.refresh_from_db()
    assert [item["name"] for item in job.report["imported"]] == ["a.png"]
    assert job.report["rejected"][0]["name"] == "b.txt"
    assert job.finished_at is not None
    assert Image.objects.filter(dataset=dataset).count() == 1


@pytest.mark.django_db
def test_import_job_for_a_vanished_path_fails_with_the_reason(dataset, tmp_path):
    job = ImportJob.objects.create(dataset=dataset, path=str(tmp_path / "gone"))

    assert tasks.import_path_task.delay(job.pk).get() == "failed"
    job.refresh_from_db()
    assert "does not exist" in job.error


@pytest.mark.django_db
def test_expire_holds_task_clears_expired_holds(image, annotator):
    from datetime import timedelta

    from django.utils import timezone

    Image.objects.filter(pk=image.pk).update(
        held_by=annotator, held_until=timezone.now() - timedelta(seconds=1)
    )
    assert tasks.expire_holds_task.delay().get() == 1
    image.refresh_from_db()
    assert image.held_by is None and image.held_until is None
