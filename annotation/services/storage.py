"""Where image files live: MEDIA_ROOT/images/<dataset_id>/<hash[:2]>/<hash><ext>, named by the
hash of the stored bytes so that two rows can never point at different content under one name.
Files are written under a temporary name and renamed, so a reader never sees half a file."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from pathlib import Path

from django.conf import settings
from django.db import transaction

from annotation.models import Image
from annotation.services.sa1b_docs import doc_files, remove_doc_files

CONTENT_TYPES = {
    ".jpg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".bmp": "image/bmp",
}


def image_relpath(dataset_id: int, content_sha256: str, ext: str) -> str:
    return f"images/{dataset_id}/{content_sha256[:2]}/{content_sha256}{ext}"


def image_path(image: Image) -> Path:
    return Path(settings.MEDIA_ROOT) / image.file


def content_type(image: Image) -> str:
    return CONTENT_TYPES.get(Path(image.file).suffix.lower(), "application/octet-stream")


def write_file(relpath: str, data: bytes) -> bool:
    """Write ``data`` at MEDIA_ROOT/relpath unless that file is already there (the name is the
    content's hash, so an existing file holds the same bytes). Returns True if it was written."""
    path = Path(settings.MEDIA_ROOT) / relpath
    if path.is_file():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return True


def remove_unreferenced_files(relpaths: Iterable[str]) -> list[str]:
    """Delete the files no Image row refers to any more; returns those deleted."""
    removed = []
    for relpath in set(relpaths):
        if Image.objects.filter(file=relpath).exists():
            continue
        (Path(settings.MEDIA_ROOT) / relpath).unlink(missing_ok=True)
        removed.append(relpath)
    return removed


def delete_images(images: Iterable[Image]) -> int:
    """Delete image rows (and their masks and sessions); their files go once the deletion is
    committed, and only if no other row shares them; their SA-1B documents' files too."""
    images = list(images)
    relpaths = [image.file for image in images]
    with transaction.atomic():
        docs = doc_files([image.pk for image in images])
        count = (
            Image.objects.filter(pk__in=[image.pk for image in images])
            .delete()[1]
            .get("annotation.Image", 0)
        )
        transaction.on_commit(lambda: remove_unreferenced_files(relpaths))
        transaction.on_commit(lambda: remove_doc_files(docs))
    return count


def delete_dataset(dataset) -> None:
    """Delete a dataset with everything in it; its image files go once that is committed."""
    relpaths = list(Image.objects.filter(dataset=dataset).values_list("file", flat=True))
    with transaction.atomic():
        docs = doc_files(Image.objects.filter(dataset=dataset).values_list("id", flat=True))
        dataset.delete()
        transaction.on_commit(lambda: remove_unreferenced_files(relpaths))
        transaction.on_commit(lambda: remove_doc_files(docs))
