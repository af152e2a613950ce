"""COCO export: instances JSON (what a COCO file holds) or results (what ``COCOeval`` reads as
detections).

Instances: ``images`` (``file_name`` = the image's original name, so an import into another
dataset holding the same files matches them), ``categories`` (the dataset's labels, and one
category ``object`` for the masks without a label when there are such masks), ``annotations``
(``segmentation`` as compressed COCO RLE, so polygons imported come back as RLE of the same
pixels; ``bbox`` XYWH, ``area`` in pixels, ``iscrowd``, ``category_id``). Results: a list of
``{image_id, category_id, segmentation, score, bbox, area}``, the score being the mask's exported
predicted IoU (``annotation.services.export_format``: 1.0 for masks people made, and when none
was stored).

Ids (``annotation.services.coco_ids``): by default the source file's (``ids="source"``: the
images', annotations' and categories' ``external_id``, a fresh id that collides with none for
those without), or the platform's own (``ids="platform"``). Images and masks are selected as for
SA-1B (``annotation.services.export_format``). The file is streamed (two passes over the images,
masks one image at a time) to a temporary name, then renamed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from django.utils import timezone

from annotation.models import Dataset
from annotation.services.atomic_files import staged_file
from annotation.services.coco_ids import IdMap, category_table, id_map
from annotation.services.errors import InvalidInput
from annotation.services.export_format import (
    ExportFilters,
    checked_geometry,
    selected_images,
    selected_masks,
)
from engine import rle as rle_codec

ID_CHOICES = ("source", "platform")
FORMAT_CHOICES = ("instances", "results")
OPTION_KEYS = ("ids", "coco_format")
ITERATOR_CHUNK = 200
PROGRESS_EVERY = 25
RESULT_KEYS = ("image_id", "category_id", "segmentation", "score", "bbox", "area")
RLE_NOTE = (
    "Every segmentation is compressed COCO RLE: polygons of an imported file come back as RLE "
    "of the same pixels."
)


@dataclass(frozen=True)
class CocoOptions:
    """``ids``: the source file's ids or the platform's; ``coco_format``: instances or results."""

    ids: str = "source"
    coco_format: str = "instances"

    def as_dict(self) -> dict[str, str]:
        return asdict(self)

    @property
    def file_name(self) -> str:
        return "instances.json" if self.coco_format == "instances" else "results.json"


def parse_coco_options(raw: dict[str, Any] | None) -> CocoOptions:
    """Validated options from a dict (the API body, a command's options, Export.filters)."""
    raw = {key: value for key, value in (raw or {}).items() if value is not None}
    unknown = set(raw) - set(OPTION_KEYS)
    if unknown:
        raise InvalidInput(f"unknown COCO export options: {', '.join(sorted(unknown))}")
    for key, choices in (("ids", ID_CHOICES), ("coco_format", FORMAT_CHOICES)):
        if key in raw and raw[key] not in choices:
            raise InvalidInput(f"{key} must be one of {', '.join(choices)}, got {raw[key]!r}")
    return CocoOptions(**raw)


def export_coco(
    dataset: Dataset,
    out_path: str | Path,
    *,
    filters: ExportFilters | None = None,
    options: CocoOptions | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Write the COCO JSON of the dataset's selected masks; returns counts."""
    filters = filters or ExportFilters()
    options = options or CocoOptions()
    platform = options.ids == "platform"
    images = selected_images(dataset, filters)
    last = images.order_by("-pk").values_list("pk", flat=True).first() or 0
    # Only the images selected now: one added during the export would be dangling.
    images = images.filter(pk__lte=last)
    masks_query = selected_masks(filters).filter(image__dataset=dataset, image__pk__lte=last)
    image_ids = id_map(images, platform)
    mask_ids = id_map(masks_query, platform)
    categories, category_of = category_table(dataset, masks_query, platform)
    total = images.count()
    results = options.coco_format == "results"
    written = masks = 0  # image entries, annotations
    failed: list[dict[str, Any]] = []
    if progress is not None:
        progress(0, total)
    with staged_file(Path(out_path)) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        if results:
            fh.write("[")
        else:
            info = {
                "description": f"SA Data Engine export of dataset {dataset.name!r}",
                "date_created": timezone.now().isoformat(),
                "filters": filters.as_dict(),
                "options": options.as_dict(),
                "segmentation": RLE_NOTE,
            }
            fh.write(f'{{"info": {json.dumps(info)}, "licenses": [], ')
            fh.write(f'"categories": {json.dumps(categories)}, "images": [')
            rows = images.values_list("pk", "external_id", "original_name", "width", "height")
            for pk, external, name, width, height in rows.iterator(chunk_size=ITERATOR_CHUNK):
                entry = {
                    "id": image_ids(pk, external),
                    "file_name": name,
                    "width": width,
                    "height": height,
                }
                fh.write(("," if written else "") + "\n" + json.dumps(entry))
                written += 1
            fh.write('], "annotations": [')
        shown = images.values_list("pk", "external_id", "width", "height")
        done = 0
        for image in shown.iterator(chunk_size=ITERATOR_CHUNK):
            done += 1
            for annotation in _annotations(
                image, filters, image_ids, mask_ids, category_of, failed
            ):
                if results:
                    annotation = {key: annotation[key] for key in RESULT_KEYS}
                else:
                    del annotation["score"]
                fh.write(("," if masks else "") + "\n" + json.dumps(annotation))
                masks += 1
            if progress is not None and done % PROGRESS_EVERY == 0:
                progress(done, total)
        fh.write("]\n" if results else "]}\n")
    if progress is not None:
        progress(done, total)
    return {
        "file": Path(out_path).name,
        "images": done,
        "masks": masks,
        "categories": len(categories),
        "options": options.as_dict(),
        "failed_masks": failed,
    }


def _annotations(
    image: tuple[int, int | None, int, int],
    filters: ExportFilters,
    image_ids: IdMap,
    mask_ids: IdMap,
    category_of: Callable[[int | None], int],
    failed: list[dict[str, Any]],
) -> Iterator[dict[str, Any]]:
    """The image's selected masks as COCO annotations (with the score, for results), in id
    order; a stored row that does not fit the image is left out and listed in ``failed``."""
    pk, external, width, height = image
    rows = selected_masks(filters).filter(image_id=pk).order_by("pk")
    fields = ("id", "rle", "bbox", "area", "iscrowd", "label_id", "external_id", "export_iou")
    for row in rows.values(*fields):
        try:  # a stored row is not trusted: one that does not fit is left out
            segmentation = checked_geometry(row["rle"], (height, width), row["area"], row["bbox"])
        except rle_codec.RLEError as exc:
            failed.append({"mask_id": row["id"], "image_id": pk, "reason": str(exc)})
            continue
        yield {
            "id": mask_ids(row["id"], row["external_id"]),
            "image_id": image_ids(pk, external),
            "category_id": category_of(row["label_id"]),
            "segmentation": segmentation,
            "bbox": [float(v) for v in row["bbox"]],
            "area": int(row["area"]),
            "iscrowd": int(row["iscrowd"]),
            "score": float(row["export_iou"]),
        }
