"""How a background job (annotation.models.BackgroundJob) records the end of its work."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import InterfaceError, OperationalError

from annotation.services.errors import ServiceError

logger = logging.getLogger(__name__)
T = TypeVar("T")

# The database away for a moment (restart, failover, a dropped connection, SQLite busy): not the
# job's fault, so not recorded as its failure but raised for the Celery task to retry.
TRANSIENT_ERRORS = (OperationalError, InterfaceError)


def run_recorded(
    job: Any, work: Callable[[], T], expected: type[ServiceError] = ServiceError
) -> T | None:
    """Run ``work()`` and set ``job.status`` (DONE or FAILED) and ``job.error``: an ``expected``
    error by its message, anything else by its class and text, logged, so that no job stays
    "running" forever; TRANSIENT_ERRORS propagate, for the task to retry. Returns the work's
    result, None when it failed. The caller saves."""
    try:
        result = work()
    except TRANSIENT_ERRORS:
        raise
    except expected as exc:
        job.status, job.error = job.Status.FAILED, exc.message
        return None
    except Exception as exc:
        logger.exception("%s %s failed", type(job).__name__, job.pk)
        job.status, job.error = job.Status.FAILED, f"{exc.__class__.__name__}: {exc}"
        return None
    job.status = job.Status.DONE
    return result
