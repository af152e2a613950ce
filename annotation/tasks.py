"""Celery tasks: ids in, re-fetch, one service call. Routed by resource: ``gpu`` for the
encoder, ``cpu`` for imports and bookkeeping. All are idempotent."""

from __future__ import annotations

import logging

from celery import shared_task

from annotation.models import Image, ImportJob
from annotation.services import embeddings, imports, work

logger = logging.getLogger(__name__)


@shared_task(resource="gpu", name="annotation.embed_image")
def embed_image(image_id: int) -> bool:
    image = Image.objects.filter(pk=image_id).first()
    if image is None:  # deleted since it was queued
        return False
    return embeddings.embed_image(image)


@shared_task(resource="cpu", name="annotation.import_path")
def import_path(job_id: int) -> str:
    job = ImportJob.objects.filter(pk=job_id).first()
    if job is None:
        return "gone"
    return imports.run_import_job(job)


@shared_task(resource="cpu", name="annotation.expire_holds")
def expire_holds() -> int:
    return work.expire_holds()
