"""Importing images: uploaded files, zip archives, folders on the server. Each file is decoded
and checked on its own and stored in its own transaction, so one bad file is reported and the
good ones in the same batch are imported; each new image's embedding is queued on the gpu queue.
"""

from __future__ import annotations

import hashlib
import os
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.db import IntegrityError, transaction

from annotation.models import Dataset, EmbeddingStatus, Image, ImportJob
from annotation.services.errors import InvalidInput
from annotation.services.jobs import (
    ACTIVE,
    cancel_job,
    finish_job,
    run_recorded,
    start_job,
    stop_when_ended,
)
from annotation.services.queueing import queue_task
from annotation.services.storage import image_relpath, remove_unreferenced_files, write_file
from engine.images import ImageError, load_image, storable_bytes

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass
class ImportReport:
    imported: list[dict[str, Any]] = field(default_factory=list)
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "imported": self.imported,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
        }

    def summary(self) -> str:
        return (
            f"{len(self.imported)} imported, {len(self.duplicates)} duplicates skipped, "
            f"{len(self.rejected)} rejected"
        )


@dataclass(frozen=True)
class Candidate:
    """One file to import: a name for the report and a way to read its bytes (or the reason it
    was rejected before reading)."""

    name: str
    read: Callable[[], bytes] | None = None
    reason: str | None = None


def import_images(
    dataset: Dataset, candidates: Iterable[Candidate], *, short_side: int | None = None
) -> ImportReport:
    """Import each candidate into ``dataset``; see the module docstring."""
    short_side = _check_short_side(short_side)
    report = ImportReport()
    for candidate in candidates:
        if candidate.reason is not None or candidate.read is None:
            report.rejected.append({"name": candidate.name, "reason": candidate.reason or "?"})
            continue
        try:
            _import_one(dataset, candidate.name, candidate.read(), short_side, report)
        except ImageError as exc:
            report.rejected.append({"name": candidate.name, "reason": str(exc)})
    return report


def import_path(
    dataset: Dataset, path: str | Path, *, short_side: int | None = None
) -> ImportReport:
    """Import a folder on the server (recursively, in name order) or a zip archive."""
    return import_images(dataset, candidates_at(path), short_side=short_side)


def candidates_at(path: str | Path) -> Iterator[Candidate]:
    """The files ``import_path`` imports, one by one (InvalidInput now if there is none)."""
    return path_candidates(_existing(path))


def _existing(path: str | Path) -> Path:
    path = Path(path).expanduser()
    if not path.exists():
        raise InvalidInput(f"{path} does not exist")
    return path


def path_candidates(path: Path) -> Iterator[Candidate]:
    if path.is_file():
        if _is_zip_file(path):
            with open(path, "rb") as fh:
                yield from zip_candidates(path.name, fh)
        else:
            yield _file_candidate(path.name, path)
        return
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for filename in sorted(files):
            file = Path(root) / filename
            name = file.relative_to(path).as_posix()
            if _is_zip_file(file):
                yield Candidate(name, reason="a zip inside a folder is not expanded: import it")
            else:
                yield _file_candidate(name, file)


def upload_candidates(files: Iterable[Any]) -> Iterator[Candidate]:
    """Candidates from uploaded files (Django UploadedFile); zip uploads are expanded."""
    for upload in files:
        name = os.path.basename(upload.name or "") or "(unnamed upload)"
        head = upload.read(4)
        upload.seek(0)
        if head in ZIP_MAGIC:
            yield from zip_candidates(name, upload)
        elif upload.size == 0:
            yield Candidate(name, reason="empty file (0 bytes)")
        elif upload.size > settings.IMPORT_MAX_FILE_BYTES:
            yield Candidate(name, reason=_too_large(upload.size))
        else:
            yield Candidate(name, read=upload.read)


def zip_candidates(archive_name: str, fileobj: IO[bytes]) -> Iterator[Candidate]:
    """One candidate per file entry of a zip archive. Entries with an absolute path or a '..'
    component, encrypted entries and entries over the size limit are rejected one by one."""
    try:
        archive = zipfile.ZipFile(fileobj)
    except (zipfile.BadZipFile, OSError) as exc:
        yield Candidate(archive_name, reason=f"not a readable zip archive: {exc}")
        return
    with archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            name = f"{archive_name}/{info.filename}"
            if _unsafe_entry(info.filename):
                yield Candidate(name, reason="unsafe path in zip (absolute or containing '..')")
            elif info.flag_bits & 0x1:
                yield Candidate(name, reason="encrypted zip entries are not supported")
            elif info.file_size == 0:
                yield Candidate(name, reason="empty file (0 bytes)")
            elif info.file_size > settings.IMPORT_MAX_FILE_BYTES:
                yield Candidate(name, reason=_too_large(info.file_size))
            else:
                try:
                    data = _read_entry(archive, info)
                except ImageError as exc:
                    yield Candidate(name, reason=str(exc))
                else:
                    yield Candidate(name, read=lambda data=data: data)


def _read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    limit = settings.IMPORT_MAX_FILE_BYTES
    try:
        with archive.open(info) as fh:
            # One byte past the limit: an entry whose header lies about its size is caught.
            data = fh.read(limit + 1)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as exc:
        raise ImageError(f"unreadable zip entry: {exc}") from exc
    except Exception as exc:  # zlib.error and friends for corrupt compressed data
        raise ImageError(f"unreadable zip entry: {exc.__class__.__name__}: {exc}") from exc
    if len(data) > limit:
        raise ImageError(_too_large(len(data)))
    return data


def _unsafe_entry(filename: str) -> bool:
    if filename.startswith(("/", "\\")) or _DRIVE.match(filename):
        return True
    return ".." in re.split(r"[/\\]", filename)


def _file_candidate(name: str, path: Path) -> Candidate:
    try:
        size = path.stat().st_size
    except OSError as exc:
        return Candidate(name, reason=f"cannot read: {exc.strerror}")
    if size == 0:
        return Candidate(name, reason="empty file (0 bytes)")
    if size > settings.IMPORT_MAX_FILE_BYTES:
        return Candidate(name, reason=_too_large(size))
    return Candidate(name, read=lambda: _read_file(path))


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ImageError(f"cannot read: {exc.strerror}") from exc


def _is_zip_file(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(4) in ZIP_MAGIC
    except OSError:
        return False


def _too_large(size: int) -> str:
    return (
        f"file is {size} bytes, over the limit of {settings.IMPORT_MAX_FILE_BYTES} bytes "
        "(SADE_IMPORT_MAX_FILE_BYTES)"
    )


def _check_short_side(short_side: int | None) -> int | None:
    if short_side is None:
        short_side = settings.IMPORT_SHORT_SIDE
    if short_side < 0:
        raise InvalidInput(f"short_side must be 0 (keep) or a positive number, got {short_side}")
    return short_side or None


def _import_one(
    dataset: Dataset, name: str, data: bytes, short_side: int | None, report: ImportReport
) -> None:
    loaded = load_image(
        data,
        max_pixels=settings.IMPORT_MAX_PIXELS,
        max_bytes=settings.IMPORT_MAX_FILE_BYTES,
        short_side=short_side,
    )
    existing = _existing_id(dataset, loaded.sha256)
    if existing is not None:
        report.duplicates.append({"name": name, "existing_id": existing})
        return
    stored, ext = storable_bytes(loaded, data)
    content_sha256 = hashlib.sha256(stored).hexdigest()
    relpath = image_relpath(dataset.pk, content_sha256, ext)
    try:
        with transaction.atomic():
            write_file(relpath, stored)
            image = Image.objects.create(
                dataset=dataset,
                file=relpath,
                original_name=name[-255:],
                sha256=loaded.sha256,
                content_sha256=content_sha256,
                format=loaded.format,
                width=loaded.width,
                height=loaded.height,
                file_size=len(stored),
                embedding_status=EmbeddingStatus.QUEUED,
            )
            _queue_embedding(image.pk)
    except IntegrityError:
        # The same file was imported concurrently: the other import owns the row and the file.
        existing = _existing_id(dataset, loaded.sha256)
        if existing is None:
            remove_unreferenced_files([relpath])
            raise
        report.duplicates.append({"name": name, "existing_id": existing})
        return
    except BaseException:
        remove_unreferenced_files([relpath])
        raise
    report.imported.append(
        {
            "name": name,
            "id": image.pk,
            "width": image.width,
            "height": image.height,
            "transformed": loaded.transformed,
        }
    )


def _existing_id(dataset: Dataset, sha256: str) -> int | None:
    return Image.objects.filter(dataset=dataset, sha256=sha256).values_list("pk", flat=True).first()


def _queue_embedding(image_id: int) -> None:
    queue_task("annotation.embed_image", image_id)


def queue_import_job(
    dataset: Dataset, path: str, *, short_side: int | None, user: Any
) -> ImportJob:
    """Record an import of a server folder or zip and queue it on the cpu queue."""
    resolved = Path(path).expanduser()
    if not resolved.is_absolute():
        raise InvalidInput(f"path must be absolute on the server, got {path!r}")
    if not resolved.exists():
        raise InvalidInput(f"{path} does not exist on the server")
    with transaction.atomic():
        job = ImportJob.objects.create(
            dataset=dataset,
            path=str(resolved),
            short_side=_check_short_side(short_side) or 0,
            created_by=user,
        )
        queue_task("annotation.import_path", job.pk)
    return job


def run_import_job(job: ImportJob) -> str:
    """The cpu task's work. An ended job (done, failed, cancelled) is not run again; one
    interrupted by a dead worker runs again, and what it had imported comes back as duplicates.
    A cancel stops it within a second; the images imported until then stay."""
    if job.status not in ACTIVE or not start_job(job):
        return job.status

    def work() -> ImportReport:
        candidates = stop_when_ended(job, path_candidates(_existing(job.path)))
        return import_images(job.dataset, candidates, short_side=job.short_side)

    report = run_recorded(job, work, expected=InvalidInput)
    if report is not None:
        job.report = report.as_dict()
    finish_job(job, ["report"])
    return job.status


def cancel_import_job(job: ImportJob) -> ImportJob:
    """Stop a queued or running import; Conflict when it has ended."""
    return cancel_job(job, "import job")
