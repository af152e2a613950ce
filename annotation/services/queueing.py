"""Queueing Celery tasks from services by their registered name, so that services never import
a tasks module (tasks import services; the dependency points one way).

The task is looked up in the app's registry and queued through its own ``apply_async``, exactly
as ``task.delay`` would: the router still sees the task (its ``resource`` picks the gpu or cpu
queue) and eager mode (tests, CELERY_TASK_ALWAYS_EAGER) still runs it inline. ``send_task``
would do neither.
"""

from __future__ import annotations

from typing import Any

from celery import current_app
from django.db import transaction


def queue_task(name: str, *args: Any, after_commit: bool = True) -> None:
    """Queue the task registered as ``name`` with ``args`` (ids: JSON only).

    ``after_commit``: once the current transaction commits, and never if it rolls back (a
    worker must find the rows the task is about); at once outside a transaction. False queues
    at once even inside one (a task fanning out work it has already committed).
    """
    if after_commit:
        transaction.on_commit(lambda: registered_task(name).apply_async(args))
    else:
        registered_task(name).apply_async(args)


def registered_task(name: str) -> Any:
    """The task registered as ``name``. A web process has imported no tasks module yet: the
    first lookup imports the installed apps' ``tasks`` modules, as a worker does at start."""
    if name not in current_app.tasks:
        current_app.autodiscover_tasks(force=True)
    return current_app.tasks[name]
