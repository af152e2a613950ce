"""The lifecycle of every background job (annotation.models.BackgroundJob: imports, exports,
automatic passes, training rounds): queued → running → done, failed or cancelled, the last
three final.

Every change of status is a conditional UPDATE on the status it leaves, so whoever writes first
wins and nothing overwrites a final status: a task starting or finishing after its job was
cancelled (or marked lost) writes nothing, and a cancel after the end is a Conflict.

A job can always be ended: an admin cancels a queued or running one, and a running one whose
task is gone (its worker killed, its machine lost) is marked failed once it has been running
longer than its task's hard time limit plus LOST_MARGIN_SECONDS. No task can still be running
then: Celery kills it at the hard limit, and a redelivered task restarts the clock
(``start_job``). Passes are not whole-job tasks (one task per image) and can be cancelled and
resumed instead."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta
from typing import Any, TypeVar

from django.apps import apps
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.db.models import Q, QuerySet
from django.utils import timezone

from annotation.models import BackgroundJob, JobStatus
from annotation.services.errors import Conflict, ServiceError

logger = logging.getLogger(__name__)
T = TypeVar("T")

# The database away for a moment (restart, failover, a dropped connection, SQLite busy): not the
# job's fault, so not recorded as its failure but raised for the Celery task to retry.
TRANSIENT_ERRORS = (OperationalError, InterfaceError)
ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)
FINAL = (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED)
# Past the hard limit: the time a killed worker takes to be reaped, clocks a little apart.
LOST_MARGIN_SECONDS = 600
STOP_CHECK_SECONDS = 1.0


class JobEnded(Exception):
    """Raised inside a job's work when the job was cancelled (or marked lost) meanwhile."""


def start_job(job: Any, **fields: Any) -> bool:
    """Mark a queued or running job running from now (a redelivered task starts over), with
    ``fields``; False, and nothing written, when it has ended (a cancelled job is not run)."""
    job.started_at = timezone.now()
    started = (
        type(job)
        .objects.filter(pk=job.pk, status__in=ACTIVE)
        .update(status=JobStatus.RUNNING, started_at=job.started_at, **fields)
    )
    if started:
        job.status = JobStatus.RUNNING
    else:
        job.refresh_from_db(fields=["status"])
    return bool(started)


def is_running(job: Any) -> bool:
    return type(job).objects.filter(pk=job.pk, status=JobStatus.RUNNING).exists()


def finish_job(job: Any, fields: Iterable[str]) -> bool:
    """Write the job's end (its ``status``, ``error``, ``finished_at`` and ``fields``) only while
    it is still running; False when it was cancelled or marked lost meanwhile, and then ``job``
    holds the stored status again."""
    job.finished_at = timezone.now()
    names = {"status", "error", "finished_at", *fields}
    values = {name: getattr(job, name) for name in names}
    written = type(job).objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(**values)
    if not written:
        job.refresh_from_db(fields=["status", "error", "finished_at"])
    return bool(written)


def cancel_job(job: Any, noun: str) -> Any:
    """Cancel a queued or running job (its task stops at its next check, or does nothing when it
    starts); Conflict when it has already ended. Returns the job as stored."""
    cancelled = (
        type(job)
        .objects.filter(pk=job.pk, status__in=ACTIVE)
        .update(
            status=JobStatus.CANCELLED, finished_at=timezone.now(), error="cancelled by an admin"
        )
    )
    job.refresh_from_db()
    if not cancelled:
        raise Conflict(f"{noun} {job.pk} is {job.status}; only a queued or running one can stop")
    return job


def stop_when_ended(job: Any, items: Iterable[T]) -> Iterator[T]:
    """Yield ``items``, raising JobEnded once the job is no longer running (looked up at most
    once every STOP_CHECK_SECONDS)."""
    last = time.monotonic()
    for item in items:
        now = time.monotonic()
        if now - last >= STOP_CHECK_SECONDS:
            last = now
            if not is_running(job):
                raise JobEnded
        yield item


def run_recorded(
    job: Any, work: Callable[[], T], expected: type[ServiceError] = ServiceError
) -> T | None:
    """Run ``work()`` and set ``job.status`` (DONE or FAILED) and ``job.error``: an ``expected``
    error by its message, anything else by its class and text, logged, so that no job stays
    "running" forever; TRANSIENT_ERRORS propagate, for the task to retry; JobEnded leaves the
    status as it is (``finish_job`` then writes nothing). Returns the work's result, None when
    it failed or ended. The caller saves, with ``finish_job``."""
    try:
        result = work()
    except TRANSIENT_ERRORS:
        raise
    except JobEnded:
        return None
    except expected as exc:
        job.status, job.error = job.Status.FAILED, exc.message
        return None
    except Exception as exc:
        logger.exception("%s %s failed", type(job).__name__, job.pk)
        job.status, job.error = job.Status.FAILED, f"{exc.__class__.__name__}: {exc}"
        return None
    job.status = job.Status.DONE
    return result


def lost_message(hard_limit: int) -> str:
    return (
        "the worker running this job is gone (still marked running past its task's "
        f"{hard_limit} s time limit: killed or lost); start it again"
    )


def fail_lost_jobs(jobs: QuerySet, hard_limit: int) -> int:
    """Mark failed the running jobs of ``jobs`` started more than ``hard_limit`` +
    LOST_MARGIN_SECONDS ago (see the module docstring); returns how many."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=hard_limit + LOST_MARGIN_SECONDS)
    lost = Q(started_at__lt=cutoff) | Q(started_at__isnull=True, created_at__lt=cutoff)
    candidates = jobs.filter(lost, status=JobStatus.RUNNING).order_by()
    # Read first: an UPDATE matching nothing still takes SQLite's write lock, and this runs on
    # every read of the job lists.
    if not candidates.exists():
        return 0
    count = candidates.update(
        status=JobStatus.FAILED, finished_at=now, error=lost_message(hard_limit)
    )
    if count:
        logger.warning("%d lost %s job(s) marked failed", count, jobs.model.__name__)
    return count


def job_models() -> list[type[BackgroundJob]]:
    """Every concrete kind of background job of every installed app (a training round is one,
    without this module naming the app that defines it)."""
    return [model for model in apps.get_models() if issubclass(model, BackgroundJob)]


def whole_job_limits() -> list[tuple[type, int]]:
    """Each kind of job run by one task, with that task's hard time limit (the setting its
    ``time_limit_setting`` names)."""
    return [
        (model, getattr(settings, model.time_limit_setting))
        for model in job_models()
        if model.time_limit_setting is not None
    ]


def fail_lost(model: type) -> int:
    """``fail_lost_jobs`` over every job of ``model`` (a whole-job kind)."""
    limit = dict(whole_job_limits())[model]
    return fail_lost_jobs(model.objects.all(), limit)


def fail_all_lost_jobs() -> dict[str, int]:
    """The periodic bookkeeping: every kind of whole job; returns the counts by model."""
    return {
        model.__name__: fail_lost_jobs(model.objects.all(), limit)
        for model, limit in whole_job_limits()
    }
