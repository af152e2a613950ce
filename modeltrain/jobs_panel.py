"""Every background job of one dataset in one list, for the dashboard's jobs panel: automatic
passes (and pre-fills), training rounds, imports and exports, each with its status, progress
(images, or a round's steps with its phase, last loss and ETA), what went wrong, and where to
cancel it or download what it made. Lives in modeltrain because training rounds are one of the
kinds (annotation knows nothing of them).

Each kind's recent jobs (RECENT of each) and every active one are listed, active first, then
newest first. Jobs whose worker is gone are marked failed first, as the kinds' own lists do.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.urls import reverse

from annotation.models import BackgroundJob, Dataset, Export, ImportJob
from annotation.services import automatic, jobs
from annotation.services.access import User, member_dataset_ids
from annotation.services.automatic_plan import zero_masks_note
from modeltrain.models import TrainingRound
from registry import visibility
from registry.models import ModelVersion

RECENT = 10
ACTIVE = BackgroundJob.ACTIVE


def dataset_jobs(dataset: Dataset, user: User) -> list[dict[str, Any]]:
    """The dataset's jobs as plain dicts (see JobSerializer in modeltrain.api for the fields);
    model version names ``user`` may not see are replaced (registry.visibility)."""
    for model in (ImportJob, Export, TrainingRound):
        jobs.fail_lost(model)
    visible = visibility.visible_version_ids(member_dataset_ids(user))

    def name(version: ModelVersion | None) -> str:
        if version is None:
            return "no model"
        if visible is not None and version.pk not in visible:
            return visibility.redacted_name(version.pk)
        return version.name

    passes = automatic.with_progress(dataset.automatic_passes.all())
    rounds = dataset.training_rounds.select_related("parent", "result")
    listed = [
        *(_pass(run, name) for run in _recent(passes)),
        *(_round(run, name) for run in _recent(rounds)),
        *(_import(job) for job in _recent(dataset.import_jobs.all())),
        *(_export(job) for job in _recent(dataset.exports.all())),
    ]
    listed.sort(key=lambda job: job["created_at"], reverse=True)
    listed.sort(key=lambda job: not job["active"])
    return listed


def _recent(jobs_of_kind) -> list:
    """The RECENT newest jobs and every active one (a long-queued job is not pushed off)."""
    newest = list(jobs_of_kind.order_by("-created_at", "-id")[:RECENT])
    shown = {job.pk for job in newest}
    active = jobs_of_kind.filter(status__in=ACTIVE).exclude(pk__in=shown)
    return newest + list(active)


def _common(job: BackgroundJob, kind: str, title: str, cancel: str) -> dict[str, Any]:
    return {
        "kind": kind,
        "id": job.pk,
        "title": title,
        "status": job.status,
        "active": job.status in ACTIVE,
        "error": job.error,
        "done": None,
        "total": None,
        "unit": "",
        "detail": "",
        "round": None,
        "download_url": None,
        "cancel_url": reverse(cancel, args=[job.pk]),
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
    }


def _pass(run, name) -> dict[str, Any]:
    kind = "pre-fill" if run.kind == run.Kind.PREFILL else "automatic pass"
    where = f"stage {run.stage}" if run.stage else "selected images"
    title = f"{kind} of {where} · {name(run.model_version)}"
    job = _common(run, "automatic_pass", title, "automaticpass-cancel")
    failed = f", {run.failed_images} images failed" if run.failed_images else ""
    so_far = "so far" if run.status in ACTIVE else "written"
    note = zero_masks_note(
        run.status, run.done_images, run.mask_count, run.config, run.model_version
    )
    job.update(
        done=run.done_images,
        total=run.total_images,
        unit="images",
        detail=f"{run.mask_count:,} masks {so_far}{failed}" + (f". {note}" if note else ""),
    )
    return job


def _round(run: TrainingRound, name) -> dict[str, Any]:
    made = f" → {name(run.result)}" if run.result_id else ""
    title = f"training round from {name(run.parent)}{made}"
    job = _common(run, "training_round", title, "traininground-cancel")
    job.update(
        done=run.step,
        total=run.total_steps or None,
        unit="steps",
        detail=run.decision,
        round={
            "phase": run.phase,
            "step": run.step,
            "total_steps": run.total_steps,
            "loss": run.loss,
            "eta_seconds": run.eta_seconds,
            "train_masks": run.train_masks,
            "heldout_masks": run.heldout_masks,
        },
    )
    return job


def _import(job: ImportJob) -> dict[str, Any]:
    entry = _common(job, "import", f"import of {job.path}", "importjob-cancel")
    report = job.report or {}
    if report:
        entry["detail"] = (
            f"{len(report.get('imported', []))} imported, "
            f"{len(report.get('duplicates', []))} duplicates skipped, "
            f"{len(report.get('rejected', []))} rejected"
        )
    return entry


def _export(job: Export) -> dict[str, Any]:
    title = f"{job.get_format_display()} export"
    if job.filters:
        title += " (" + ", ".join(f"{k}={v}" for k, v in job.filters.items()) + ")"
    entry = _common(job, "export", title, "export-cancel")
    entry.update(done=job.progress_done, total=job.progress_total or None, unit="images")
    if job.status == job.Status.DONE:
        entry["download_url"] = reverse("export-download", args=[job.pk])
        entry["detail"] = f"{job.report.get('masks', 0):,} masks"
    return entry


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
