"""Importing a COCO instances file into a dataset whose images are already there, keeping what a
round trip needs: categories as the dataset's labels, each annotation's category, crowd flag and
id, and each image's id (``external_id`` fields; the platform's own keys do not change).

- **Images** are matched by file name to the dataset's images (an image's original name equal to
  ``file_name``, or ending in ``/`` + its base name); they must have the same size. The matched
  image's ``external_id`` becomes the file's image id (the latest import's word).
- **Categories** become labels: an existing label with that category id, else one with that name
  (which takes the id if it had none), else a new label with a colour from
  ``labels.DEFAULT_COLORS``. A category with a bad id, name or supercategory is skipped, and so
  are the images whose annotations need it.
- **Annotations**: ``iscrowd`` must be 0 or 1 (crowd regions as uncompressed RLE are read);
  ``id`` and ``category_id`` integers within signed 64-bit, each id used once in the file.

One bad annotation leaves its whole image out, with the reason in the report's ``skipped``. An
annotation whose id already sits on the image (an earlier import of the file) is not added again.
"""

from __future__ import annotations

import collections
import unicodedata
from collections.abc import Callable, Iterable
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max, Q

from annotation.models import Dataset, Image, Label
from annotation.services.coco_geometry import read_coco, segmentation_rle
from annotation.services.imported_masks import (
    AnnotationImportReport,
    Skip,
    brief,
    store_masks,
)
from annotation.services.labels import DEFAULT_COLORS
from engine import rle as rle_codec

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
NAME_MAX = Label._meta.get_field("name").max_length
SUPERCATEGORY_MAX = Label._meta.get_field("supercategory").max_length


def id_problem(value: Any) -> str | None:
    """Why ``value`` is not a COCO id this platform keeps (an integer within signed 64-bit, what
    the database's id columns hold), or None."""
    if isinstance(value, bool) or not isinstance(value, int):
        return f"must be an integer, got {brief(value)}"
    if not INT64_MIN <= value <= INT64_MAX:
        return f"must be within signed 64-bit, got {brief(value)}"
    return None


def text_problem(value: Any, max_length: int, *, required: bool) -> str | None:
    """Why ``value`` is not a label's name (required) or supercategory, or None."""
    if value is None and not required:
        return None
    if not isinstance(value, str):
        return f"must be text, got {brief(value)}"
    if required and not value.strip():
        return "must not be empty"
    if len(value) > max_length:
        return f"must be at most {max_length} characters, got {len(value)}"
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        return "must not hold control characters"
    return None


def import_coco(
    dataset: Dataset,
    data: bytes,
    report: AnnotationImportReport,
    user: Any,
    count: Callable[[Iterable[Any]], Iterable[Any]] = iter,
) -> None:
    document = read_coco(data)
    labels, bad_categories = _labels(dataset, document.categories, report)
    annotation_ids = collections.Counter(
        a.get("id")
        for group in document.annotations.values()
        for a in group
        if isinstance(a, dict) and id_problem(a.get("id")) is None
    )
    repeated = {value for value, n in annotation_ids.items() if n > 1}
    listed: set[int] = set()
    for entry in count(document.images):
        if not isinstance(entry, dict):
            report.skipped.append(
                {"name": brief(entry), "reason": "an image entry is not an object"}
            )
            continue
        image_id, file_name = entry.get("id"), entry.get("file_name")
        name = (
            file_name if isinstance(file_name, str) and file_name else f"image id {brief(image_id)}"
        )
        problem = id_problem(image_id)
        if problem is None and image_id in listed:
            problem = f"{image_id} is listed more than once"
        if problem is not None:
            report.skipped.append({"name": name, "reason": f"image id {problem}"})
            continue
        listed.add(image_id)
        annotations = document.annotations.get(image_id, [])
        if not annotations:
            continue
        try:
            image = _match(dataset, entry, name)
            masks = _masks(annotations, image, labels, bad_categories, repeated)
            with transaction.atomic():
                if image.external_id != image_id:
                    Image.objects.filter(pk=image.pk).update(external_id=image_id)
                store_masks(image, masks, name, report, user)
        except Skip as exc:
            report.skipped.append({"name": name, "reason": str(exc)})
    for image_id in sorted(set(document.annotations) - listed, key=str):
        count = len(document.annotations[image_id])
        report.skipped.append(
            {
                "name": f"image id {brief(image_id)}",
                "reason": f"{count} annotations refer to an image the file does not list",
            }
        )


def _labels(
    dataset: Dataset, categories: list[Any], report: AnnotationImportReport
) -> tuple[dict[int, Label], dict[int, str]]:
    """(category id -> the dataset's label, category id -> why it was skipped)."""
    existing = list(Label.objects.filter(dataset=dataset))
    by_id = {label.external_id: label for label in existing if label.external_id is not None}
    by_name = {label.name: label for label in existing}
    position = (Label.objects.filter(dataset=dataset).aggregate(n=Max("position"))["n"] or 0) + 1
    labels: dict[int, Label] = {}
    bad: dict[int, str] = {}
    for entry in categories:
        if not isinstance(entry, dict):
            report.skipped.append({"name": brief(entry), "reason": "a category is not an object"})
            continue
        category_id, name = entry.get("id"), entry.get("name")
        supercategory = entry.get("supercategory")
        reason = _category_problem(category_id, name, supercategory)
        if reason is None and (category_id in labels or category_id in bad):
            reason = f"id {category_id} is listed more than once"
        if reason is not None:
            report.skipped.append({"name": f"category {brief(name)}", "reason": reason})
            if id_problem(category_id) is None and category_id not in labels:
                bad[category_id] = reason
            continue
        label = by_id.get(category_id) or by_name.get(name)
        if label is None:
            label, created = _create_label(
                dataset, name, supercategory or "", category_id, position
            )
            if created:
                position += 1
                report.labels_created.append(name)
        elif label.external_id is None:
            label.external_id = category_id
            label.supercategory = label.supercategory or supercategory or ""
            label.save(update_fields=["external_id", "supercategory"])
        by_id.setdefault(category_id, label)
        by_name.setdefault(label.name, label)
        labels[category_id] = label
    return labels, bad


def _category_problem(category_id: Any, name: Any, supercategory: Any) -> str | None:
    problems = [
        ("id", id_problem(category_id)),
        ("name", text_problem(name, NAME_MAX, required=True)),
        ("supercategory", text_problem(supercategory, SUPERCATEGORY_MAX, required=False)),
    ]
    words = [f"{key} {problem}" for key, problem in problems if problem]
    return "; ".join(words) or None


def _create_label(
    dataset: Dataset, name: str, supercategory: str, external_id: int, position: int
) -> tuple[Label, bool]:
    try:
        with transaction.atomic():
            label = Label.objects.create(
                dataset=dataset,
                name=name,
                color=DEFAULT_COLORS[(position - 1) % len(DEFAULT_COLORS)],
                supercategory=supercategory,
                external_id=external_id,
                position=position,
            )
        return label, True
    except IntegrityError:  # made meanwhile by someone else (an admin, a concurrent import)
        same = Q(name=name) | Q(external_id=external_id)
        return Label.objects.filter(dataset=dataset).filter(same).order_by("pk")[0], False


def _match(dataset: Dataset, entry: dict[str, Any], name: str) -> Image:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    candidates = list(
        Image.objects.filter(dataset=dataset).filter(
            Q(original_name=name) | Q(original_name=base) | Q(original_name__endswith="/" + base)
        )[:10]
    )
    exact = [image for image in candidates if image.original_name == name]
    if len(exact) == 1 or len(candidates) == 1:
        image = exact[0] if exact else candidates[0]
    elif not candidates:
        raise Skip(f"no image named {base!r} in dataset {dataset.name!r}")
    else:
        raise Skip(f"{len(candidates)} images of the dataset are named {base!r}: ambiguous")
    width, height = entry.get("width"), entry.get("height")
    if (width, height) != (image.width, image.height):
        raise Skip(
            f"the file says {brief(width)}x{brief(height)}, the dataset's image {image.pk} is "
            f"{image.width}x{image.height}"
        )
    return image


def _masks(
    annotations: list[Any],
    image: Image,
    labels: dict[int, Label],
    bad_categories: dict[int, str],
    repeated: set[int],
) -> list[dict[str, Any]]:
    masks = []
    for index, annotation in enumerate(annotations):
        shown = brief(annotation.get("id", index))
        try:
            masks.append(_mask(annotation, image, labels, bad_categories, repeated))
        except rle_codec.RLEError as exc:
            raise Skip(f"annotation {shown}: {exc}; none of this image's masks imported") from exc
    return masks


def _mask(
    annotation: dict[str, Any],
    image: Image,
    labels: dict[int, Label],
    bad_categories: dict[int, str],
    repeated: set[int],
) -> dict[str, Any]:
    # RLEError carries every reason: the caller words it as for a bad segmentation.
    annotation_id = annotation.get("id")
    if annotation_id is not None and id_problem(annotation_id):
        raise rle_codec.RLEError(f"id {id_problem(annotation_id)}")
    if annotation_id in repeated:
        raise rle_codec.RLEError(f"id {annotation_id} is used by more than one annotation")
    iscrowd = annotation.get("iscrowd", 0)
    if isinstance(iscrowd, bool) or not isinstance(iscrowd, int) or iscrowd not in (0, 1):
        raise rle_codec.RLEError(f"iscrowd must be 0 or 1, got {brief(iscrowd)}")
    category_id = annotation.get("category_id")
    label = None
    if category_id is not None:
        if id_problem(category_id):
            raise rle_codec.RLEError(f"category_id {id_problem(category_id)}")
        if category_id in bad_categories:
            raise rle_codec.RLEError(f"its category {category_id} was skipped")
        if category_id not in labels:
            raise rle_codec.RLEError(f"category_id {category_id} is not in the file's categories")
        label = labels[category_id]
    rle = segmentation_rle(annotation.get("segmentation"), image.height, image.width)
    return {
        "rle": rle,
        "predicted_iou": None,
        "stability_score": None,
        "label": label,
        "iscrowd": bool(iscrowd),
        "external_id": annotation_id,
    }
