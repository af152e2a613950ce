"""Importing masks made elsewhere: SA-1B folders and tars (images and their JSON; an
export's ``manifest.json`` and ``sa_images_ids.txt`` are ignored) and COCO instances files
(polygons, RLE compressed or not, crowd regions), as masks with source ``imported``.

- **SA-1B**: each ``<name>.jpg`` (or another image format) with its ``<name>.json``, loose in a
  folder (recursively) or in ``.tar`` files (in the folder, or the path itself). The image goes
  through the ordinary image import (``annotation.services.imports``, kept at its size: masks
  are in its pixel frame); an image already in the dataset (same file) gets the masks.
- **COCO**: ``annotation.services.coco_import`` (images matched by file name, categories kept
  as labels, crowd flags and the file's ids kept).

Each image is all or nothing: its masks (and, for SA-1B, the image itself) are written in one
transaction, and one bad annotation (RLE of another size, bad polygon, empty mask, bad field)
leaves the whole image out, listed in the report's ``skipped`` with the reason, as are images
without their JSON (or the reverse), unknown or ambiguous file names and annotations of image
ids the file does not list. A file that is not COCO or SA-1B at all imports nothing
(InvalidInput). Importing the same masks again adds nothing
(``annotation.services.imported_masks``): existing ones are counted as ``already_imported``.
"""

from __future__ import annotations

import json
import os
import tarfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.db import transaction

from annotation.models import Dataset, Image
from annotation.services.coco_geometry import finite_number, segmentation_rle
from annotation.services.coco_import import import_coco
from annotation.services.errors import InvalidInput
from annotation.services.imported_masks import AnnotationImportReport, Skip, brief, store_masks
from annotation.services.imports import Candidate, import_images
from annotation.services.sa1b import IDS_FILE, LEGACY_METADATA, MANIFEST
from annotation.services.storage import remove_unreferenced_files
from engine import rle as rle_codec

# A model-made mask comes from one grid point; a few allow for merged proposals.
MAX_POINT_COORDS = 16


def max_pixels() -> int:
    return settings.IMPORT_MAX_PIXELS


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
# What our own SA-1B export writes beside the shards (now and before): not image data.
EXPORT_METADATA = (MANIFEST, IDS_FILE, *LEGACY_METADATA)
# Wraps the stream of images an import works through and yields them unchanged.
Count = Callable[[Iterable[Any]], Iterable[Any]]


@dataclass(frozen=True)
class _Pair:
    name: str
    image_name: str
    read_image: Callable[[], bytes] | None
    read_json: Callable[[], bytes] | None


def _uncounted(items: Iterable[Any]) -> Iterable[Any]:
    return items


def import_annotations(
    dataset: Dataset, path: str | Path, user: Any = None, count: Count = _uncounted
) -> AnnotationImportReport:
    """Import a COCO JSON file, an SA-1B tar or a folder of SA-1B files or tars. ``count``
    wraps the stream of images worked through (a command's progress bar counts them)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise InvalidInput(f"{path} does not exist")
    report = AnnotationImportReport()
    if path.is_dir():
        _import_pairs(dataset, count(_folder_pairs(path, report)), report, user)
        return report
    with open(path, "rb") as fh:
        return import_annotation_file(dataset, fh, user, count)


def import_annotation_file(
    dataset: Dataset, fileobj: IO[bytes], user: Any = None, count: Count = _uncounted
) -> AnnotationImportReport:
    """Import an open COCO JSON file or SA-1B tar (a path's file or an upload)."""
    report = AnnotationImportReport()
    head = fileobj.read(64)
    fileobj.seek(0)
    if head.lstrip()[:1] == b"{":
        import_coco(dataset, fileobj.read(), report, user, count)
        return report
    try:
        archive = tarfile.open(fileobj=fileobj, mode="r:*")
        members = archive.getmembers()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise InvalidInput(
            f"neither COCO JSON nor a readable SA-1B tar archive ({exc.__class__.__name__})"
        ) from exc
    with archive:
        _import_pairs(dataset, count(_tar_pairs("", archive, members, report)), report, user)
    return report


def _folder_pairs(folder: Path, report: AnnotationImportReport) -> Iterator[_Pair]:
    files: dict[str, dict[str, Path]] = {}
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        for filename in sorted(names):
            file = Path(root) / filename
            relative = file.relative_to(folder).as_posix()
            if relative in EXPORT_METADATA:
                continue
            if filename.lower().endswith(".tar"):
                try:
                    with tarfile.open(file) as archive:
                        members = archive.getmembers()
                        yield from _tar_pairs(relative + "/", archive, members, report)
                except (tarfile.TarError, OSError, EOFError) as exc:
                    report.skipped.append({"name": relative, "reason": f"unreadable tar: {exc}"})
            else:
                stem, kind = _kind(relative)
                files.setdefault(stem, {})[kind] = file
    for stem, group in sorted(files.items()):
        yield _pair(stem, group, _read_limited)


def _read_limited(file: Path) -> bytes:
    if file.stat().st_size > settings.IMPORT_MAX_FILE_BYTES:
        raise Skip(f"{file.name} is over the limit of {settings.IMPORT_MAX_FILE_BYTES} bytes")
    return file.read_bytes()


def _tar_pairs(prefix: str, archive: tarfile.TarFile, members, report) -> Iterator[_Pair]:
    groups: dict[str, dict[str, tarfile.TarInfo]] = {}
    for member in members:
        if member.isfile():
            stem, kind = _kind(member.name)
            groups.setdefault(stem, {})[kind] = member
    for stem, group in sorted(groups.items()):
        big = [m.name for m in group.values() if m.size > settings.IMPORT_MAX_FILE_BYTES]
        if big:
            report.skipped.append({"name": prefix + stem, "reason": f"{big[0]} is too large"})
            continue

        def read(member: tarfile.TarInfo) -> bytes:
            fh = archive.extractfile(member)
            if fh is None:
                raise Skip(f"{member.name} cannot be read from the tar")
            return fh.read()

        yield _pair(prefix + stem, group, read)


def _kind(name: str) -> tuple[str, str]:
    stem, suffix = os.path.splitext(name)
    suffix = suffix.lower()
    if suffix == ".json":
        return stem, "json"
    if suffix in IMAGE_SUFFIXES:
        return stem, "image"
    return name, "other"


def _pair(stem: str, group: dict[str, Any], read: Callable[[Any], bytes]) -> _Pair:
    image, record = group.get("image"), group.get("json")
    # The image's own name (with its extension) becomes the stored image's original name.
    extension = os.path.splitext(str(image.name))[1] if image is not None else ""
    return _Pair(
        stem,
        stem + extension,
        (lambda: read(image)) if image is not None else None,
        (lambda: read(record)) if record is not None else None,
    )


def _import_pairs(dataset: Dataset, pairs: Iterator[_Pair], report, user: Any) -> None:
    for pair in pairs:
        if pair.read_image is None and pair.read_json is None:
            report.skipped.append({"name": pair.name, "reason": "not an image or a JSON file"})
        elif pair.read_json is None:
            report.skipped.append({"name": pair.name, "reason": "the image has no JSON file"})
        elif pair.read_image is None:
            report.skipped.append({"name": pair.name, "reason": "the JSON file has no image"})
        else:
            try:
                _import_pair(dataset, pair, report, user)
            except Skip as exc:
                report.skipped.append({"name": pair.name, "reason": str(exc)})


def _import_pair(dataset: Dataset, pair: _Pair, report, user: Any) -> None:
    assert pair.read_image is not None and pair.read_json is not None
    try:
        record = json.loads(pair.read_json())
        header, annotations = record["image"], record["annotations"]
        declared = (_dimension(header, "height"), _dimension(header, "width"))
        if not isinstance(annotations, list):
            raise TypeError("'annotations' is not a list")
    except (ValueError, KeyError, TypeError, tarfile.TarError, OSError) as exc:
        raise Skip(f"not an SA-1B JSON file: {exc.__class__.__name__}: {exc}") from exc
    except RecursionError:
        raise Skip("not an SA-1B JSON file: it is nested too deeply") from None
    if not (0 < declared[0] and 0 < declared[1]) or declared[0] * declared[1] > max_pixels():
        raise Skip(
            f"the JSON says the image is {brief(declared[1])}x{brief(declared[0])}: not a size "
            f"this platform imports (at most {max_pixels()} pixels, SADE_IMPORT_MAX_PIXELS)"
        )
    masks = _sa1b_masks(annotations, declared)  # checked before the image is stored
    try:
        data = pair.read_image()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise Skip(f"the image cannot be read: {exc}") from exc
    new_files: list[str] = []
    try:
        with transaction.atomic():
            image, created = _import_image(dataset, pair.image_name, data)
            if created:
                new_files.append(image.file)
            if (image.height, image.width) != declared:
                raise Skip(
                    f"the JSON says {declared[1]}x{declared[0]}, the image is stored as "
                    f"{image.width}x{image.height} (EXIF orientation?)"
                )
            store_masks(image, masks, pair.name, report, user)
    except BaseException:
        remove_unreferenced_files(new_files)
        raise


def _dimension(header: Any, key: str) -> int:
    value = header[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"the image's {key} is not an integer: {brief(value)}")
    return value


def _import_image(dataset: Dataset, name: str, data: bytes) -> tuple[Image, bool]:
    # short_side=0 keeps the size: the masks are in the file's pixel frame.
    result = import_images(dataset, [Candidate(name, read=lambda: data)], short_side=0)
    if result.rejected:
        raise Skip(f"the image was rejected: {result.rejected[0]['reason']}")
    if result.imported:
        return Image.objects.get(pk=result.imported[0]["id"]), True
    return Image.objects.get(pk=result.duplicates[0]["existing_id"]), False


def _sa1b_masks(annotations: list[Any], size: tuple[int, int]) -> list[dict[str, Any]]:
    masks = []
    for index, annotation in enumerate(annotations):
        label = brief(annotation.get("id", index) if isinstance(annotation, dict) else index)
        try:
            if not isinstance(annotation, dict):
                raise rle_codec.RLEError("an annotation must be an object")
            masks.append(
                {
                    "rle": segmentation_rle(annotation.get("segmentation"), *size),
                    "predicted_iou": _number(annotation, "predicted_iou"),
                    "stability_score": _number(annotation, "stability_score"),
                    "point_coords": _numbers(annotation, "point_coords", pairs=True),
                    "crop_box": _numbers(annotation, "crop_box", pairs=False),
                }
            )
        except rle_codec.RLEError as exc:
            raise Skip(f"annotation {label}: {exc}; none of this image's masks imported") from exc
    return masks


def _number(annotation: dict[str, Any], key: str) -> float | None:
    value = annotation.get(key)
    if value is None:
        return None
    number = finite_number(value)
    if number is None:
        raise rle_codec.RLEError(f"{key} must be a number, got {brief(value)}")
    return number


def _numbers(annotation: dict[str, Any], key: str, *, pairs: bool) -> Any:
    value = annotation.get(key)
    if value is None:
        return None
    if isinstance(value, list) and pairs:
        if len(value) > MAX_POINT_COORDS:
            raise rle_codec.RLEError(f"{key} has {len(value)} points, at most {MAX_POINT_COORDS}")
        if value and all(isinstance(p, list) and len(p) == 2 for p in value):
            points = [[finite_number(x), finite_number(y)] for x, y in value]
            if all(v is not None for p in points for v in p):
                return points
    elif isinstance(value, list) and len(value) == 4:
        box = [finite_number(v) for v in value]
        if None not in box:
            return box
    raise rle_codec.RLEError(f"{key} is malformed: {brief(value)}")
