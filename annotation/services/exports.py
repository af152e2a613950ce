"""Export jobs: an admin asks for an SA-1B or COCO export, a cpu worker writes it under
MEDIA_ROOT/exports/<export id>/ with its progress in the database, and the files are downloaded
through the API. SA-1B: the shards, ``meta/manifest.json`` and ``meta/sa_images_ids.txt``
(``annotation.services.sa1b``); COCO: ``instances.json``, or ``results.json`` in results format
(``annotation.services.coco``). A COCO export's options (``ids``, ``coco_format``) are kept in
its ``filters`` beside the filters, and in its report."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from annotation.models import Dataset, DatasetMembership, Export, Role
from annotation.services.access import User
from annotation.services.atomic_files import remove_partials, staged_directory
from annotation.services.audit_gates import check_gate, parse_gate, record_gate
from annotation.services.coco import OPTION_KEYS, CocoOptions, export_coco, parse_coco_options
from annotation.services.errors import Conflict, InvalidInput
from annotation.services.export_format import parse_filters
from annotation.services.jobs import (
    ACTIVE,
    JobEnded,
    cancel_job,
    finish_job,
    run_recorded,
    start_job,
)
from annotation.services.queueing import queue_task
from annotation.services.sa1b import (
    LEGACY_MANIFEST,
    MANIFEST,
    check_shard_size,
    export_sa1b,
    shard_name,
)

COCO_FILE = "instances.json"
PROGRESS_SECONDS = 1.0


def export_root() -> Path:
    return Path(settings.MEDIA_ROOT) / "exports"


def visible_exports(user: User):
    """Exports of the datasets the user administers (all for staff)."""
    if not user.is_authenticated:
        return Export.objects.none()
    if user.is_staff:
        return Export.objects.all()
    administered = DatasetMembership.objects.filter(user=user, role=Role.ADMIN).values("dataset")
    return Export.objects.filter(dataset__in=administered)


def queue_export(
    dataset: Dataset,
    user: Any,
    *,
    format: str = Export.Format.SA1B,
    filters: dict[str, Any] | None = None,
    shard_size: int | None = None,
    options: dict[str, Any] | None = None,
    gate: dict[str, Any] | None = None,
) -> Export:
    """Record an export and queue it on the cpu queue. ``options``: a COCO export's (see
    ``annotation.services.coco.CocoOptions``). With a ``gate`` (audit thresholds,
    annotation.services.audit_gates) it is refused unless the audits meet it, and records them."""
    if format not in Export.Format.values:
        raise InvalidInput(f"format must be one of {', '.join(Export.Format.values)}")
    parsed = parse_filters(filters)
    recorded = parsed.as_dict()
    if format == Export.Format.COCO:
        recorded |= parse_coco_options(options).as_dict()
    elif options:
        raise InvalidInput(f"{', '.join(sorted(options))}: options of the COCO format only")
    shard_size = check_shard_size(shard_size or Export._meta.get_field("shard_size").default)
    with transaction.atomic():
        report = {} if gate is None else {"gate": check_gate(dataset, parsed, parse_gate(gate))}
        export = Export.objects.create(
            dataset=dataset,
            format=format,
            filters=recorded,
            shard_size=shard_size,
            created_by=user if user.is_authenticated else None,
            report=report,
        )
        queue_task("annotation.run_export", export.pk)
    return export


def run_export(export: Export) -> str:
    """The cpu task's work. An ended export (done, failed, cancelled) is not run again; one
    interrupted by a dead worker starts over (its partial files are removed first). A cancel
    stops it at its next progress write, and its files are removed."""
    if export.status not in ACTIVE:
        return export.status
    out_dir = export_dir(export)
    remove_export_files(export)
    if not start_job(export, progress_done=0):
        return export.status
    gate = export.report.get("gate")
    report = run_recorded(export, lambda: _write_gated(export, out_dir, gate))
    if report is not None:
        export.report, export.output = report, str(out_dir)
        export.progress_done = export.progress_total = report["images"]
    fields = ["report", "output", "progress_done", "progress_total"]
    if not finish_job(export, fields):  # cancelled (or marked lost) meanwhile
        remove_export_files(export)
    return export.status


def cancel_export(export: Export) -> Export:
    """Stop a queued or running export and remove what it had written; Conflict
    when it has ended."""
    cancel_job(export, "export")
    remove_export_files(export)
    return export


def export_dir(export: Export) -> Path:
    return export_root() / str(export.pk)


def remove_export_files(export: Export) -> None:
    """Remove an export's folder and any partial one a killed or cancelled run left."""
    out_dir = export_dir(export)
    remove_partials(out_dir.parent, out_dir.name)
    if out_dir.exists():  # renamed into place, but the worker died before recording it
        shutil.rmtree(out_dir, ignore_errors=True)


def split_options(recorded: dict[str, Any]) -> tuple[dict[str, Any], CocoOptions]:
    """An export's recorded ``filters`` as (the mask filters, the COCO options)."""
    filters = {key: value for key, value in recorded.items() if key not in OPTION_KEYS}
    options = {key: value for key, value in recorded.items() if key in OPTION_KEYS}
    return filters, parse_coco_options(options)


def _write_gated(export: Export, out_dir: Path, gate: dict[str, Any] | None) -> dict[str, Any]:
    """``_write``, then the release gate's record (the audits it relied on) in the report and
    the SA-1B manifest."""
    report = _write(export, out_dir)
    if gate is not None:
        if export.format == Export.Format.SA1B:
            record_gate(out_dir / MANIFEST, gate)
        report["gate"] = gate
    return report


def _write(export: Export, out_dir: Path) -> dict[str, Any]:
    raw_filters, options = split_options(export.filters)
    filters = parse_filters(raw_filters)
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= PROGRESS_SECONDS or done == total:
            last[0] = now
            running = Export.objects.filter(pk=export.pk, status=Export.Status.RUNNING)
            if not running.update(progress_done=done, progress_total=total):
                raise JobEnded

    if export.format == Export.Format.COCO:
        with staged_directory(out_dir) as staging:
            counts = export_coco(
                export.dataset,
                staging / options.file_name,
                filters=filters,
                options=options,
                progress=progress,
            )
        return {**counts, "files": [options.file_name]}
    manifest = export_sa1b(
        export.dataset,
        out_dir,
        filters=filters,
        shard_size=export.shard_size,
        progress=progress,
    )
    keys = ("images", "masks", "shards", "skipped", "failed_masks", "files")
    return {key: manifest[key] for key in keys}


def export_file(export: Export, shard: int | None = None) -> Path:
    """The file to download: an SA-1B shard by number, else the SA-1B manifest or the COCO
    JSON."""
    if export.status != Export.Status.DONE:
        raise Conflict(f"export {export.pk} is {export.status}, not done")
    if export.format == Export.Format.COCO:
        if shard is not None:
            raise InvalidInput("a COCO export is one file: leave out 'shard'")
        name = Path(str((export.report.get("files") or [COCO_FILE])[0])).name
    elif shard is None:
        name = MANIFEST
    else:
        count = len(export.report.get("shards", []))
        if count == 0:
            raise InvalidInput("this export has no shards: no image had a selected mask")
        if not 0 <= shard < count:
            raise InvalidInput(f"shard must be from 0 to {count - 1}, got {shard}")
        name = shard_name(shard)
    path = Path(export.output) / name
    if name == MANIFEST and not path.is_file():
        path = Path(export.output) / LEGACY_MANIFEST  # an export made before the meta/ folder
    if not path.is_file():
        raise Conflict(f"{name} of export {export.pk} is missing from the server's storage")
    return path
