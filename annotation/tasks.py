"""Celery tasks: ids in, re-fetch, one service call. Routed by resource: ``gpu`` for the
encoder, ``cpu`` for imports and bookkeeping.

Not losing work (settings: late ack, reject on a lost worker, prefetch 1, a visibility timeout
longer than any time limit): every task is idempotent, so a second delivery (a worker killed
before its ack, a broker restart) is harmless: a finished job or image is skipped, an
interrupted one starts over. Transient failures (the database or the broker away for a moment)
are retried with exponential backoff; each task has a soft time limit before its hard one, so
that the service records the failure in the database rather than being killed silently.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from django.conf import settings
from kombu.exceptions import OperationalError as BrokerOperationalError

from annotation.models import Export, Image, ImportJob
from annotation.services import (
    automatic,
    embeddings,
    exports,
    image_holds,
    imports,
    jobs,
    sa1b_docs,
)
from annotation.services.jobs import TRANSIENT_ERRORS as DATABASE_TRANSIENT

logger = logging.getLogger(__name__)

# Errors that say "not now" rather than "never": a database restarting or failing over, a
# dropped connection, the broker unreachable while a task queues the next ones.
TRANSIENT_ERRORS = (*DATABASE_TRANSIENT, BrokerOperationalError, ConnectionError)
RETRY_BACKOFF_SECONDS = 5
RETRY_BACKOFF_MAX_SECONDS = 600
MAX_RETRIES = 8


def soft_limit(hard: int) -> int:
    """The soft time limit before a hard one: 5 minutes (or a tenth) earlier."""
    return hard - min(300, max(1, hard // 10))


def task_options(resource: str, hard_limit: int) -> dict[str, Any]:
    return {
        "resource": resource,
        "time_limit": hard_limit,
        "soft_time_limit": soft_limit(hard_limit),
        "autoretry_for": TRANSIENT_ERRORS,
        "retry_backoff": RETRY_BACKOFF_SECONDS,
        "retry_backoff_max": RETRY_BACKOFF_MAX_SECONDS,
        "retry_jitter": True,
        "max_retries": MAX_RETRIES,
    }


JOB = settings.CELERY_TASK_TIME_LIMIT  # a whole import or export
ONE_IMAGE = settings.IMAGE_TASK_TIME_LIMIT  # an embedding, one image of a pass


@shared_task(name="annotation.embed_image", **task_options("gpu", ONE_IMAGE))
def embed_image_task(image_id: int) -> bool:
    image = Image.objects.filter(pk=image_id).first()
    if image is None:  # deleted since it was queued
        return False
    return embeddings.embed_image(image)


@shared_task(name="annotation.import_path", **task_options("cpu", JOB))
def import_path_task(job_id: int) -> str:
    job = ImportJob.objects.filter(pk=job_id).first()
    if job is None:
        return "gone"
    return imports.run_import_job(job)


@shared_task(name="annotation.expire_holds", **task_options("cpu", 600))
def expire_holds_task() -> int:
    return image_holds.expire_holds()


@shared_task(name="annotation.fail_lost_jobs", **task_options("cpu", 600))
def fail_lost_jobs_task() -> dict[str, int]:
    """Mark failed the jobs left "running" by a task that is gone (annotation.services.jobs)."""
    return jobs.fail_all_lost_jobs()


@shared_task(name="annotation.sweep_sa1b_docs", **task_options("cpu", JOB))
def sweep_sa1b_docs_task() -> dict[str, int]:
    """Remove SA-1B document files no row records (left by killed processes; sa1b_docs)."""
    return sa1b_docs.sweep_doc_files()


@shared_task(name="annotation.run_export", **task_options("cpu", JOB))
def run_export_task(export_id: int) -> str:
    export = Export.objects.filter(pk=export_id).first()
    if export is None:
        return "gone"
    return exports.run_export(export)


@shared_task(name="annotation.run_automatic_pass", **task_options("gpu", ONE_IMAGE))
def run_automatic_pass_task(pass_id: int, after: int = 0) -> int:
    """Fan a pass out a chunk at a time: an automatic_pass_image task per image not done yet
    with an id above ``after``, then this task again behind them for the next chunk."""
    return automatic.run_automatic_pass(pass_id, after)


@shared_task(name="annotation.automatic_pass_image", **task_options("gpu", ONE_IMAGE))
def automatic_pass_image_task(pass_id: int, image_id: int) -> str:
    return automatic.run_pass_image(pass_id, image_id)
