"""Per-image SA-1B documents: every mask of an image written and checked once, as the bytes
the SA-1B export copies (format: ``annotation.services.sa1b_doc_format``).

Mask rows stay the truth (the mask list, audits, training and statistics read them); a
document is a copy the export may use while it describes the image's current masks:

- ``ImageDoc.revision`` is raised by database triggers whenever a mask or mask prompt of the
  image is inserted, updated or deleted, on any path (migration ``0014_image_docs``);
- a document is written for the revision read **before** its masks were read, and recorded
  with a compare-and-set (``UPDATE ... WHERE revision = <that revision>``, one statement per
  batch): when a mask changed in between, nothing is recorded and the file goes (``_record``);
- it is valid while ``doc_revision == revision``, and used only when the file's size and
  SHA-256 match the row: a file on disk is a way in, so anything else means "rebuild from
  the rows" (``load_docs``);
- it is never written inside an open transaction, which might have changed masks it would
  then describe before they are committed (``refresh_docs`` waits for the commit).

Files: ``SA1B_DOC_DIR/<image_id // 10000>/<image_id>-<revision>.json``, written under a
temporary name and renamed. Recording a newer document removes the older one's file; deleting
images removes theirs (``remove_doc_files``). A file left by a killed process is never used
(its revision is not recorded, or its hash differs), is overwritten if its name comes again,
and is removed by the daily sweep (``sweep_doc_files``) once it is an hour old.

Writing a document may fail (disk full, permissions): it is logged and the caller goes on
without it; the automatic pass and the export never fail for it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F

from annotation.models import Image, ImageDoc
from annotation.services.export_format import IMAGE_BATCH, sa1b_annotation_rows
from annotation.services.sa1b_doc_format import Doc, DocError, encode_doc, parse_doc

logger = logging.getLogger(__name__)

FILES_PER_FOLDER = 10_000
# Images whose documents the export reads at once (one query for their rows): 256 documents
# of ~70 KB (100 masks) are ~18 MB; fewer queries matter once no mask row is read.
DOC_BATCH = 256
ImageSize = tuple[int, int, int]  # (id, width, height)


def doc_path(image_id: int, revision: int) -> Path:
    folder = Path(settings.SA1B_DOC_DIR) / str(image_id // FILES_PER_FOLDER)
    return folder / f"{image_id}-{revision}.json"


def load_docs(images: Sequence[ImageSize]) -> dict[int, Doc]:
    """The valid documents of ``images`` whose files are whole: one query for their rows, then
    each file read and checked against its row's size and SHA-256."""
    rows = ImageDoc.objects.filter(
        image_id__in=[image_id for image_id, _, _ in images], doc_revision=F("revision")
    ).values_list("image_id", "doc_revision", "doc_bytes", "doc_sha256")
    sizes = {image[0]: image for image in images}
    docs = {}
    root = str(settings.SA1B_DOC_DIR)  # doc_path, as strings: a Path per image costs 20 µs
    for image_id, revision, size, sha256 in rows:
        path = f"{root}/{image_id // FILES_PER_FOLDER}/{image_id}-{revision}.json"
        try:
            with open(path, "rb") as fh:
                data = fh.read(size + 1)
        except OSError:
            continue  # gone (or unreadable): rebuilt from the rows
        if len(data) != size or hashlib.sha256(data).hexdigest() != sha256:
            logger.warning("SA-1B document %s does not match its record: rebuilt", path)
            continue
        try:
            docs[image_id] = parse_doc(data, sizes[image_id])
        except DocError as exc:  # written for another size, or by another version
            logger.info("SA-1B document %s not used: %s", path, exc)
    return docs


def build_docs(images: Sequence[ImageSize], *, record: bool) -> dict[int, Doc]:
    """The documents of ``images`` (up to ``IMAGE_BATCH``) built from their mask rows; with
    ``record``, also written and recorded (compare-and-set) where no mask changed meanwhile.
    ``record`` must be False inside a transaction (see the module docstring)."""
    revisions: dict[int, tuple[int, int | None]] = {}
    if record:
        if connection.in_atomic_block:
            raise RuntimeError("SA-1B documents are not recorded inside a transaction")
        try:
            revisions = _revisions([image_id for image_id, _, _ in images])
        except Exception:  # e.g. an image deleted meanwhile: its row cannot be made
            logger.exception("SA-1B documents of images %s.. not written", images[0][0])
    failed: list[dict[str, Any]] = []
    rows = sa1b_annotation_rows(images, failed)
    masks: dict[int, list] = {image[0]: [] for image in images}
    failures: dict[int, list] = {image[0]: [] for image in images}
    for row, text in rows:
        masks[row[0]].append((row, text))
    for entry in failed:
        failures[entry["image_id"]].append(entry)
    docs, written = {}, {}
    for image in images:
        image_id = image[0]
        doc = encode_doc(image, masks[image_id], failures[image_id])
        docs[image_id] = doc
        if record and image_id in revisions:
            try:
                written[image_id] = _write(image_id, revisions[image_id][0], doc.data)
            except Exception:  # a document is an optimisation: the caller goes on without it
                logger.exception("SA-1B document of image %s not written", image_id)
    if written:
        try:
            _record(written, revisions)
        except Exception:
            logger.exception("SA-1B documents of images %s.. not recorded", min(written))
            remove_doc_files(doc_path(i, revisions[i][0]) for i in written)
    return docs


def _revisions(image_ids: list[int]) -> dict[int, tuple[int, int | None]]:
    """(revision, doc_revision) of each image, read before its masks are. An image without a
    row (no masks yet, or loaded behind the triggers' back) gets one: if a transaction is
    inserting its first mask, the insert waits for it (same primary key) and then sees the
    revision that transaction's trigger raised."""
    ImageDoc.objects.bulk_create(
        [ImageDoc(image_id=image_id) for image_id in image_ids], ignore_conflicts=True
    )
    rows = ImageDoc.objects.filter(image_id__in=image_ids).values_list(
        "image_id", "revision", "doc_revision"
    )
    return {image_id: (revision, doc_revision) for image_id, revision, doc_revision in rows}


def _write(image_id: int, revision: int, data: bytes) -> tuple[int, str]:
    """Write the document file of ``image_id`` at ``revision``; returns its size and hash."""
    path = doc_path(image_id, revision)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return len(data), hashlib.sha256(data).hexdigest()


def _record(
    written: dict[int, tuple[int, str]], revisions: dict[int, tuple[int, int | None]]
) -> set[int]:
    """Record the written documents whose image's revision is still the one read before its
    masks were (one compare-and-set statement); remove the files of the others, and the older
    files of those recorded. Returns the images recorded."""
    ids = list(written)
    cases = " ".join(f"WHEN {int(i)} THEN %s" for i in ids)  # the size's, then the hash's
    match = " OR ".join("(image_id = %s AND revision = %s)" for _ in ids)
    params: list[Any] = [written[i][0] for i in ids] + [written[i][1] for i in ids]
    for i in ids:
        params += [i, revisions[i][0]]
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE annotation_imagedoc SET doc_revision = revision, "
            f"doc_bytes = CASE image_id {cases} END, doc_sha256 = CASE image_id {cases} END "
            f"WHERE {match} RETURNING image_id",
            params,
        )
        recorded = {row[0] for row in cursor.fetchall()}
    for image_id in ids:
        revision, previous = revisions[image_id]
        if image_id not in recorded:  # a mask changed after the revision was read
            doc_path(image_id, revision).unlink(missing_ok=True)
        elif previous is not None and previous != revision:
            doc_path(image_id, previous).unlink(missing_ok=True)
    return recorded


def refresh_docs(image_ids: Iterable[int]) -> int:
    """Write and record the documents of ``image_ids`` that are not valid; returns how many
    were recorded. Inside a transaction, runs once it is committed (and not if it is rolled
    back). Never raises for a document that could not be written."""
    ids = sorted(set(image_ids))
    if connection.in_atomic_block:
        transaction.on_commit(lambda: _refresh_committed(ids))
        return 0
    return _refresh_committed(ids)


def _refresh_committed(ids: list[int]) -> int:
    # After a commit, callbacks run outside any transaction. One run inside one anyway (a test
    # harness running them early) writes nothing rather than waiting again (and again).
    if connection.in_atomic_block:
        return 0
    recorded = 0
    for start in range(0, len(ids), IMAGE_BATCH):
        chunk = ids[start : start + IMAGE_BATCH]
        try:
            valid = set(
                ImageDoc.objects.filter(image_id__in=chunk, doc_revision=F("revision")).values_list(
                    "image_id", flat=True
                )
            )
            images = list(
                Image.objects.filter(pk__in=chunk)
                .exclude(pk__in=valid)
                .order_by("pk")
                .values_list("id", "width", "height")
            )
            if images:
                build_docs(images, record=True)
                recorded += ImageDoc.objects.filter(
                    image_id__in=[image[0] for image in images], doc_revision=F("revision")
                ).count()
        except Exception:
            logger.exception("SA-1B documents of images %s..%s not written", chunk[0], chunk[-1])
    return recorded


def docs_for_export(images: Sequence[ImageSize]) -> dict[int, Doc]:
    """A document for every image of an export's batch (up to ``DOC_BATCH``): the valid ones
    read, the others built from the rows ``IMAGE_BATCH`` at a time (and recorded, outside a
    transaction, so the next export reads them)."""
    docs = load_docs(images)
    stale = [image for image in images if image[0] not in docs]
    record = not connection.in_atomic_block
    for start in range(0, len(stale), IMAGE_BATCH):
        docs.update(build_docs(stale[start : start + IMAGE_BATCH], record=record))
    return docs


def doc_files(image_ids: Iterable[int]) -> list[Path]:
    """The recorded document files of ``image_ids`` (before deleting the images)."""
    ids = list(image_ids)
    paths = []
    for start in range(0, len(ids), 500):
        rows = ImageDoc.objects.filter(
            image_id__in=ids[start : start + 500], doc_revision__isnull=False
        ).values_list("image_id", "doc_revision")
        paths += [doc_path(image_id, revision) for image_id, revision in rows]
    return paths


def remove_doc_files(paths: Iterable[Path]) -> None:
    for path in paths:
        try:
            path.unlink(missing_ok=True)
        except OSError:
            logger.exception("SA-1B document %s not removed", path)


def invalidate_all_docs() -> int:
    """Make every document stale and give every image with masks its row: after a bulk load
    that bypassed the triggers (``tallies.recount_tallies``). Returns the rows made."""
    ImageDoc.objects.update(revision=F("revision") + 1)
    missing = (
        Image.objects.filter(masks__isnull=False, sa1b_doc__isnull=True)
        .values_list("id", flat=True)
        .distinct()
    )
    made = ImageDoc.objects.bulk_create(
        [ImageDoc(image_id=image_id, revision=1) for image_id in missing.iterator()],
        batch_size=5000,
        ignore_conflicts=True,
    )
    return len(made)


# A document file younger than this is left alone by the sweep: its writer may be between
# writing it and recording it (``build_docs``).
SWEEP_MIN_AGE_S = 3600


def sweep_doc_files(min_age_s: float = SWEEP_MIN_AGE_S, *, dry_run: bool = False) -> dict:
    """Remove the document files no row records, left by killed processes: temporary
    ``.partial`` files, documents written but never recorded (killed between the two) and
    older revisions whose removal was cut short, and those of images deleted meanwhile. Only
    files older than ``min_age_s`` and named as this module names them; anything else in the
    folder is reported, not touched. Which files are in use comes from ``doc_files``, a folder
    of ``FILES_PER_FOLDER`` images at a time.
    Returns counts and bytes (``dry_run``: what would go)."""
    root = Path(settings.SA1B_DOC_DIR)
    cutoff = time.time() - min_age_s
    named = re.compile(r"(\d{1,19})-(\d{1,19})\.json")
    partial = re.compile(r"\.(\d{1,19})-(\d{1,19})\.json\.[0-9a-f]{32}\.partial")
    report = {"files": 0, "removed": 0, "bytes": 0, "recent": 0, "unknown": 0}
    if not root.is_dir():
        return report
    for folder in sorted(root.iterdir()):
        if not (folder.is_dir() and folder.name.isdigit()):
            report["unknown"] += 1
            continue
        candidates: list[tuple[Path, int, int]] = []  # path, image id, size
        for entry in os.scandir(folder):
            report["files"] += 1
            doc, temp = named.fullmatch(entry.name), partial.fullmatch(entry.name)
            if not (doc or temp) or not entry.is_file(follow_symlinks=False):
                report["unknown"] += 1
                continue
            try:
                stat = entry.stat(follow_symlinks=False)
            except FileNotFoundError:  # renamed into place or removed since the listing
                continue
            if stat.st_mtime > cutoff:
                report["recent"] += 1
                continue
            image_id = int((doc or temp).group(1))  # type: ignore[union-attr]
            candidates.append((Path(entry.path), image_id, stat.st_size))
        # The recorded documents' paths: a temporary file, another revision, or a file in the
        # wrong folder is none of them.
        in_use = set(doc_files({image_id for _, image_id, _ in candidates}))
        for path, _, size in candidates:
            if path in in_use:
                continue
            if not dry_run:
                try:
                    path.unlink()
                except FileNotFoundError:
                    continue
                except OSError:
                    logger.exception("SA-1B document %s not removed", path)
                    continue
            report["removed"] += 1
            report["bytes"] += size
    return report
