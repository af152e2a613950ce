"""Celery tasks: ids in, re-fetch, one service call. Routed by resource: ``gpu`` for the
encoder, ``cpu`` for imports and bookkeeping. All are idempotent."""

from __future__ import annotations

import logging

from celery import shared_task

from annotation.models import Export, Image, ImportJob
from annotation.services import automatic, embeddings, exports, imports, work

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


@shared_task(resource="cpu", name="annotation.run_export")
def run_export(export_id: int) -> str:
    export = Export.objects.filter(pk=export_id).first()
    if export is None:
        return "gone"
    return exports.run_export(export)


@shared_task(resource="gpu", name="annotation.run_automatic_pass")
def run_automatic_pass(pass_id: int) -> int:
    """Fan a pass out: one automatic_pass_image task per image not done yet."""
    return automatic.run_automatic_pass(pass_id)


@shared_task(resource="gpu", name="annotation.automatic_pass_image")
def automatic_pass_image(pass_id: int, image_id: int) -> str:
    return automatic.run_pass_image(pass_id, image_id)
