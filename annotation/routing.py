"""Celery routing by resource: a task declares the resource it needs (``resource="gpu"`` or
``"cpu"`` in its decorator) and this router sends it to the queue of that name, so the queue
stays declared beside the task without Celery's deprecated per-task ``queue`` attribute.
Installed by settings.CELERY_TASK_ROUTES."""

from __future__ import annotations

from typing import Any

RESOURCES = ("gpu", "cpu")


def route_by_resource(
    name: str, args: Any, kwargs: Any, options: dict, task: Any = None, **extra: Any
) -> dict[str, str] | None:
    resource = getattr(task, "resource", None)
    if resource is None:
        return None  # the default queue (cpu)
    if resource not in RESOURCES:
        raise ValueError(f"task {name} declares resource {resource!r}; use one of {RESOURCES}")
    return {"queue": resource}
