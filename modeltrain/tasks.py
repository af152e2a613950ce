"""Celery tasks of retraining: ids in, re-fetch, one service call (see annotation.tasks for the
shared options: late acknowledgement, retries of transient errors, soft before hard limits)."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from annotation.tasks import task_options
from modeltrain import round_pipeline, rounds, versions
from registry.models import ModelVersion


@shared_task(
    name="modeltrain.run_training_round",
    **task_options("gpu", settings.TRAINING_TASK_TIME_LIMIT),
)
def run_training_round_task(round_id: int) -> str:
    return round_pipeline.run_training_round(round_id)


@shared_task(name="modeltrain.nightly_training_rounds", **task_options("cpu", 600))
def nightly_training_rounds_task() -> list[int]:
    return rounds.nightly_training_rounds()


@shared_task(name="modeltrain.reembed_images", **task_options("cpu", 600))
def reembed_images_task(version_id: int) -> int:
    version = ModelVersion.objects.filter(pk=version_id).first()
    if version is None:
        return 0
    return versions.reembed_images(version)
