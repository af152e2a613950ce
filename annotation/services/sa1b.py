"""SA-1B export: the released dataset's layout.

The output folder holds tar shards ``sa_000000.tar``, ``sa_000001.tar``, ... of ``shard_size``
images each (the last may hold fewer). Each shard holds, per image, ``sa_<image_id>.jpg`` then
``sa_<image_id>.json``::

    {"image": {"image_id", "width", "height", "file_name"},
     "annotations": [{"id", "segmentation": {"size": [h, w], "counts": str}, "bbox": [x, y, w, h],
                      "area", "predicted_iou", "stability_score", "crop_box": [x, y, w, h],
                      "point_coords": [[x, y]]}]}

``image_id`` is the image's id and each annotation's ``id`` its mask's id; the fields model
passes fill and people do not are documented in ``annotation.services.export_format``. In the
sub-folder ``meta/``: ``sa_images_ids.txt`` (one line per image: ``<image_id>\\t<shard file>``)
and ``manifest.json`` (dataset, filters, counts, and per shard its file, image and mask counts,
bytes and first and last image id; plus the images left out and why). They sit in their own
folder so that the shards extracted in place leave nothing but ``sa_*.jpg`` and ``sa_*.json``
beside them: SA-1B readers take every ``*.json`` there for an image's record, and Datumaro's
format detection takes a ``*.txt`` there for CamVid's list. Exports written before (metadata
beside the shards) are still read: ``LEGACY_METADATA``.

Images stored as JPEG are copied byte for byte; others (PNG, WebP, BMP) are re-encoded as JPEG
at quality ``JPEG_QUALITY`` (95, 4:4:4 chroma) since SA-1B's files are JPEGs.

Memory stays bounded whatever the dataset's size: images are read in batches of
``DOC_BATCH`` (keyset pages by id), each image's JSON is written into the tar as one string
and its file streamed there. The JSON is copied from the image's per-image document
(``annotation.services.sa1b_docs``) when a valid one is stored; otherwise the batch's masks are
read with one query, checked, and the documents written on the way. Everything is written into a
hidden staging folder renamed to the output folder at the end
(``annotation.services.atomic_files``).
"""

from __future__ import annotations

import errno
import io
import json
import os
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.db.models import Count, Max, QuerySet
from django.utils import timezone
from PIL import Image as PILImage

from annotation.models import Dataset, Image
from annotation.services.atomic_files import staged_directory
from annotation.services.errors import InvalidInput
from annotation.services.export_format import ExportFilters, selected_images
from annotation.services.sa1b_doc_format import Doc
from annotation.services.sa1b_docs import DOC_BATCH, docs_for_export

JPEG_QUALITY = 95
DEFAULT_SHARD_SIZE = 1000
MAX_SHARD_SIZE = 1_000_000
META_DIR = "meta"
MANIFEST = f"{META_DIR}/manifest.json"
IDS_FILE = f"{META_DIR}/sa_images_ids.txt"
# Where exports made before the ``meta/`` folder hold the same two files.
LEGACY_MANIFEST = "manifest.json"
LEGACY_METADATA = (LEGACY_MANIFEST, "sa_images_ids.txt")
PROGRESS_EVERY = 25
# Files go into the tar in pieces of this size: tarfile's default (16 KiB) means some sixty
# reads and writes for an SA-1B-sized image.
COPY_BUFFER = 1024 * 1024

Progress = Callable[[int, int], None]


def shard_name(index: int) -> str:
    return f"sa_{index:06d}.tar"


def check_shard_size(shard_size: int) -> int:
    if not isinstance(shard_size, int) or not 1 <= shard_size <= MAX_SHARD_SIZE:
        raise InvalidInput(f"shard_size must be from 1 to {MAX_SHARD_SIZE}, got {shard_size!r}")
    return shard_size


class _ShardWriter:
    """Opens shard after shard as images come, ``shard_size`` images to a tar."""

    def __init__(self, folder: Path, shard_size: int) -> None:
        self.folder, self.shard_size = folder, shard_size
        self.shards: list[dict[str, Any]] = []
        self.tar: tarfile.TarFile | None = None
        self.mtime = int(time.time())
        self._template: bytes | None = None

    def add(self, image_id: int, jpeg: IO[bytes], jpeg_size: int, record: bytes, masks: int) -> str:
        if self.tar is None:
            name = shard_name(len(self.shards))
            self.tar = tarfile.open(
                self.folder / name, "w", format=tarfile.PAX_FORMAT, copybufsize=COPY_BUFFER
            )
            self.shards.append({"file": name, "images": 0, "masks": 0, "first_image_id": image_id})
        shard = self.shards[-1]
        self._member(f"sa_{image_id}.jpg", jpeg_size, jpeg)
        self._member(f"sa_{image_id}.json", len(record), data=record)
        shard["images"] += 1
        shard["masks"] += masks
        shard["last_image_id"] = image_id
        if shard["images"] == self.shard_size:
            self.close()
        return shard["file"]

    def _info(self, name: str, size: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = size, self.mtime, 0o644
        return info

    def _member(
        self, name: str, size: int, fileobj: IO[bytes] | None = None, data: bytes | None = None
    ) -> None:
        """Add a member: ``fileobj``'s next ``size`` bytes, or ``data``. Its header is the one
        tarfile writes (``_header``), made from a template: tarfile's own costs as much as the
        rest of copying an image and its JSON once the JSON is a stored document."""
        tar = self.tar
        assert tar is not None
        header = self._header(name, size)
        if header is None:
            tar.addfile(self._info(name, size), io.BytesIO(data) if fileobj is None else fileobj)
            return
        tar.fileobj.write(header)
        if fileobj is None:
            tar.fileobj.write(data)
        elif not _copy_in_kernel(fileobj, tar.fileobj, size):
            tarfile.copyfileobj(fileobj, tar.fileobj, size, bufsize=COPY_BUFFER)
        blocks, remainder = divmod(size, tarfile.BLOCKSIZE)
        if remainder:
            tar.fileobj.write(tarfile.NUL * (tarfile.BLOCKSIZE - remainder))
            blocks += 1
        tar.offset += tarfile.BLOCKSIZE * (blocks + 1)

    def _header(self, name: str, size: int) -> bytes | None:
        """tarfile's header block for a regular file ``name`` of ``size`` bytes with this
        writer's mtime and mode, where it is a plain ustar one (an ASCII name under 100
        characters, a size under 8 GiB; else None, and tarfile writes it): its own header for
        a one-character name and no size, with the name, size and checksum put in."""
        if not (len(name) < 100 and name.isascii() and size < 8**11):
            return None
        if self._template is None:
            block = self._info("x", 0).tobuf(tarfile.PAX_FORMAT, "ascii", "strict")
            if len(block) != tarfile.BLOCKSIZE:
                raise RuntimeError("tarfile wrote more than one block for a plain header")
            self._template = block
        block = bytearray(self._template)
        block[0:100] = name.encode("ascii").ljust(100, b"\0")
        block[124:136] = b"%011o\0" % size
        block[148:156] = b"        "
        block[148:155] = b"%06o\0" % sum(block)
        return bytes(block)

    def close(self) -> None:
        if self.tar is not None:
            self.tar.close()
            self.tar = None
            self.shards[-1]["bytes"] = (self.folder / self.shards[-1]["file"]).stat().st_size


# Errors of copy_file_range / sendfile that mean "not between these two files": try the next.
# (ENOTSOCK: macOS's sendfile writes to sockets only.)
_NO_KERNEL_COPY = {
    errno.EXDEV,
    errno.EINVAL,
    errno.ENOSYS,
    errno.EOPNOTSUPP,
    errno.ENOTSUP,
    errno.EBADF,
    errno.ENOTSOCK,
}


def _copy_range(source_fd: int, target_fd: int, offset: int, count: int) -> int:
    return os.copy_file_range(source_fd, target_fd, count, offset)


def _send(source_fd: int, target_fd: int, offset: int, count: int) -> int:
    return os.sendfile(target_fd, source_fd, offset, count)


def _kernel_copies() -> list[Callable[[int, int, int, int], int]]:
    """The kernel's ways to copy between files, best first: copy_file_range (may share the
    blocks; only within one file system), then sendfile (any two files, since Linux 2.6.33:
    the export's folder is often on another file system than the media, e.g. a tmpfs)."""
    return [
        way
        for way, name in ((_copy_range, "copy_file_range"), (_send, "sendfile"))
        if hasattr(os, name)
    ]


def _copy_in_kernel(source: IO[bytes], target: IO[bytes], size: int) -> bool:
    """Copy ``size`` bytes from the start of the open file ``source`` to the end of ``target``
    (an appending binary file object) in the kernel, without bringing them through this
    process (``_kernel_copies``): faster than reading and writing an image, and no buffer to
    allocate per image. False when no way works between these two files (not plain files,
    another platform), having copied nothing; raises OSError if ``source`` ends early."""
    if not isinstance(source, io.BufferedReader) or source.tell() != 0:
        return False
    target.flush()
    source_fd, target_fd = source.fileno(), target.fileno()
    for way in _kernel_copies():
        done = 0
        while done < size:
            try:
                step = way(source_fd, target_fd, done, size - done)
            except OSError as exc:
                if done == 0 and exc.errno in _NO_KERNEL_COPY:
                    break  # the next way, or Python
                raise
            if step == 0:
                raise OSError("unexpected end of data: the image file shrank during the export")
            done += step
        if done == size:
            # The file's offset moved under the buffered writer: let it find its place again.
            target.seek(0, os.SEEK_END)
            return True
    return False


def export_sa1b(
    dataset: Dataset,
    out_dir: str | Path,
    *,
    filters: ExportFilters | None = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Write the dataset's selected masks as SA-1B shards into ``out_dir`` (which must not exist
    or be empty); returns the manifest. See the module docstring for the layout."""
    filters = filters or ExportFilters()
    check_shard_size(shard_size)
    images = selected_images(dataset, filters)
    # The images selected now: one added during the export waits for the next one, so the
    # progress never passes its total.
    bounds = images.aggregate(total=Count("pk"), last=Max("pk"))
    total = bounds["total"]
    images = images.filter(pk__lte=bounds["last"] or 0)
    skipped: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []  # stored masks whose RLE failed its check: left out
    done = masks = 0
    if progress is not None:
        progress(0, total)
    with staged_directory(Path(out_dir)) as staging:
        writer = _ShardWriter(staging, shard_size)
        (staging / META_DIR).mkdir()
        try:
            with open(staging / IDS_FILE, "w", encoding="ascii") as ids_file:
                for image_id, path, record, count in _records(images, filters, failed):
                    done += 1
                    if count == 0:
                        reason = "every selected mask of the image failed its check"
                        skipped.append({"image_id": image_id, "reason": reason})
                        continue
                    try:
                        jpeg, size = _jpeg(path)
                    except OSError as exc:
                        skipped.append({"image_id": image_id, "reason": _file_error(exc)})
                        continue
                    with jpeg:
                        shard = writer.add(image_id, jpeg, size, record, count)
                    masks += count
                    ids_file.write(f"{image_id}\t{shard}\n")
                    if progress is not None and done % PROGRESS_EVERY == 0:
                        progress(done, total)
        finally:
            writer.close()
        manifest = {
            "format": "SA-1B",
            "dataset": {"id": dataset.pk, "name": dataset.name},
            "filters": filters.as_dict(),
            "shard_size": shard_size,
            "created_at": timezone.now().isoformat(),
            "images": done - len(skipped),
            "masks": masks,
            "shards": writer.shards,
            "skipped": skipped,
            "failed_masks": failed,
            "files": [MANIFEST, IDS_FILE, *[shard["file"] for shard in writer.shards]],
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    if progress is not None:
        progress(done, total)
    return manifest


def _records(
    images: QuerySet[Image], filters: ExportFilters, failed: list[dict[str, Any]]
) -> Iterator[tuple[int, Path, bytes, int]]:
    """(image id, its file, its SA-1B JSON, its mask count) in id order. Images are read
    ``DOC_BATCH`` at a time by keyset pages, each page its own short query (no cursor stays
    open while the tar is written). Each image's JSON comes from its per-image document
    (``sa1b_docs``): read where a valid one is stored, else built from the mask rows (one query
    per ``IMAGE_BATCH`` images) and stored for the next export."""
    media = Path(settings.MEDIA_ROOT)
    after = 0
    while True:
        page = images.filter(pk__gt=after).values_list("id", "file", "width", "height")
        batch = list(page[:DOC_BATCH])
        if not batch:
            return
        docs = docs_for_export([(i, w, h) for i, _, w, h in batch])
        for image_id, file, _, _ in batch:
            record, count = _record(docs[image_id], filters, failed)
            yield image_id, media / file, record, count
        after = batch[-1][0]


def _record(doc: Doc, filters: ExportFilters, failed: list[dict[str, Any]]) -> tuple[bytes, int]:
    """The image's JSON and mask count for this export (its document's selected masks)."""
    return doc.record(filters, failed)


def _jpeg(path: Path) -> tuple[IO[bytes], int]:
    """An open file object with the image as JPEG and its size in bytes: a JPEG's own file,
    else the pixels re-encoded (SA-1B's images are all JPEGs)."""
    if path.suffix.lower() in (".jpg", ".jpeg"):
        fh = open(path, "rb")
        return fh, os.fstat(fh.fileno()).st_size
    buf = io.BytesIO()
    with PILImage.open(path) as im:
        im.convert("RGB").save(buf, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
    size = buf.tell()
    buf.seek(0)
    return buf, size


def _file_error(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "the image file is missing from the server's storage"
    return f"the image file cannot be read: {exc}"
