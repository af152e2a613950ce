"""COCO instances JSON: export, and reading a file for import.

Export: ``images`` (id = image id, ``file_name`` = the image's original name, so an import
into another dataset holding the same files matches them), ``annotations`` (id = mask id,
``segmentation`` as compressed COCO RLE, ``bbox`` XYWH, ``area``, ``iscrowd`` 0,
``category_id`` 1) and one category ``{"id": 1, "name": "object"}``. Images and masks are
selected as for SA-1B (``annotation.services.export_format``). The file is streamed (two
passes over the images, masks one image at a time) to a temporary name, then renamed.

Import reads polygons, uncompressed RLE (``counts`` a list, as COCO writes crowd regions) and
compressed RLE; crowd annotations become masks like the others (a mask has no crowd flag).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.utils import timezone
from pycocotools import mask as mask_utils

from annotation.models import Dataset
from annotation.services.atomic_files import staged_file
from annotation.services.errors import InvalidInput
from annotation.services.export_format import (
    ExportFilters,
    checked_geometry,
    selected_images,
    selected_masks,
)
from engine import rle as rle_codec

CATEGORY = {"id": 1, "name": "object", "supercategory": "object"}
ITERATOR_CHUNK = 200
PROGRESS_EVERY = 25
# Bounds on an imported polygon segmentation (see _bounded_polygons).
MAX_POLYGON_PARTS = 10_000
MAX_POLYGON_VERTICES = 100_000
MAX_PERIMETER_FACTOR = 50


def export_coco(
    dataset: Dataset,
    out_path: str | Path,
    *,
    filters: ExportFilters | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Write the COCO instances JSON of the dataset's selected masks; returns counts."""
    filters = filters or ExportFilters()
    images = selected_images(dataset, filters).only(
        "id", "original_name", "width", "height", "created_at"
    )
    total = images.count()
    info = {
        "description": f"SA Data Engine export of dataset {dataset.name!r}",
        "date_created": timezone.now().isoformat(),
        "filters": filters.as_dict(),
    }
    masks = written = last_pk = 0
    failed: list[dict[str, Any]] = []
    if progress is not None:
        progress(0, total)
    with staged_file(Path(out_path)) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        fh.write(f'{{"info": {json.dumps(info)}, "licenses": [], ')
        fh.write(f'"categories": [{json.dumps(CATEGORY)}], "images": [')
        for image in images.iterator(chunk_size=ITERATOR_CHUNK):
            entry = {
                "id": image.pk,
                "file_name": image.original_name,
                "width": image.width,
                "height": image.height,
            }
            fh.write(("," if written else "") + "\n" + json.dumps(entry))
            written, last_pk = written + 1, image.pk
        fh.write('], "annotations": [')
        # Only the images listed above: one added between the two passes would be dangling.
        for done, image in enumerate(
            images.filter(pk__lte=last_pk).iterator(chunk_size=ITERATOR_CHUNK), 1
        ):
            rows = selected_masks(filters).filter(image=image).order_by("pk")
            for row in rows.values("id", "rle", "bbox", "area"):
                try:  # a stored row is not trusted: one that does not fit is left out
                    segmentation = checked_geometry(
                        row["rle"], (image.height, image.width), row["area"], row["bbox"]
                    )
                except rle_codec.RLEError as exc:
                    failed.append({"mask_id": row["id"], "image_id": image.pk, "reason": str(exc)})
                    continue
                annotation = {
                    "id": row["id"],
                    "image_id": image.pk,
                    "category_id": CATEGORY["id"],
                    "segmentation": segmentation,
                    "bbox": [float(v) for v in row["bbox"]],
                    "area": int(row["area"]),
                    "iscrowd": 0,
                }
                fh.write(("," if masks else "") + "\n" + json.dumps(annotation))
                masks += 1
            if progress is not None and done % PROGRESS_EVERY == 0:
                progress(done, total)
        fh.write("]}\n")
    if progress is not None:
        progress(written, total)
    return {"file": Path(out_path).name, "images": written, "masks": masks, "failed_masks": failed}


def read_coco(data: bytes) -> tuple[list[dict[str, Any]], dict[Any, list[dict[str, Any]]]]:
    """(images, annotations grouped by image id) of a COCO file; InvalidInput when the file is
    not COCO instances JSON at all (then nothing is imported)."""
    try:
        doc = json.loads(data)
    except ValueError as exc:  # not UTF-8, not JSON, or an integer of over 4300 digits
        raise InvalidInput(f"not a readable JSON file: {exc}") from exc
    except RecursionError:
        raise InvalidInput("not a readable JSON file: it is nested too deeply") from None
    if not isinstance(doc, dict):
        raise InvalidInput("not COCO instances JSON: the top level is not an object")
    images, annotations = doc.get("images"), doc.get("annotations")
    if not isinstance(images, list) or not isinstance(annotations, list):
        raise InvalidInput("not COCO instances JSON: 'images' and 'annotations' must be lists")
    grouped: dict[Any, list[dict[str, Any]]] = {}
    for annotation in annotations:
        key = annotation.get("image_id") if isinstance(annotation, dict) else None
        if not isinstance(key, int | str):
            key = None
        grouped.setdefault(key, []).append(annotation)
    return images, grouped


def _bounded_polygons(segmentation: list[Any], height: int, width: int) -> list[list[float]]:
    """The polygons as floats, checked so that rasterising them costs what the image does.

    pycocotools walks every edge in steps of 1/5 pixel into arrays it allocates up front, trusting
    the coordinates: one vertex at 1e9 asks for gigabytes and kills the process. So: at most
    MAX_POLYGON_PARTS parts and MAX_POLYGON_VERTICES vertices in all, every coordinate a finite
    number within one image size outside the image (COCO outlines may overshoot the border a
    little), and the outline no longer than MAX_PERIMETER_FACTOR times the image's height + width.
    """
    if len(segmentation) > MAX_POLYGON_PARTS:
        raise rle_codec.RLEError(
            f"{len(segmentation)} polygons in one segmentation, at most {MAX_POLYGON_PARTS}"
        )
    polygons, vertices, perimeter = [], 0, 0.0
    for polygon in segmentation:
        if not isinstance(polygon, list) or len(polygon) < 6 or len(polygon) % 2:
            raise rle_codec.RLEError("each polygon must be a list of at least 3 x, y pairs")
        vertices += len(polygon) // 2
        if vertices > MAX_POLYGON_VERTICES:
            raise rle_codec.RLEError(f"more than {MAX_POLYGON_VERTICES} polygon vertices")
        coordinates = [finite_number(v) for v in polygon]
        if None in coordinates:
            raise rle_codec.RLEError("polygon coordinates must be finite numbers")
        xs, ys = coordinates[0::2], coordinates[1::2]
        if min(xs) < -width or max(xs) > 2 * width or min(ys) < -height or max(ys) > 2 * height:
            raise rle_codec.RLEError(
                f"polygon coordinates reach ({min(xs):.6g}..{max(xs):.6g}, "
                f"{min(ys):.6g}..{max(ys):.6g}), too far outside the {width}x{height} image"
            )
        perimeter += sum(
            max(abs(xs[i] - xs[i - 1]), abs(ys[i] - ys[i - 1])) for i in range(len(xs))
        )
        polygons.append(coordinates)
    if perimeter > MAX_PERIMETER_FACTOR * (height + width):
        raise rle_codec.RLEError(
            f"the polygon outline is {perimeter:.0f} pixels long, more than "
            f"{MAX_PERIMETER_FACTOR}x the image's height + width"
        )
    return polygons


def finite_number(value: Any) -> float | None:
    """A JSON number as a finite float, else None (bools, strings, lists, NaN, infinities and
    integers too large for a float are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def segmentation_rle(segmentation: Any, height: int, width: int) -> dict[str, Any]:
    """A COCO segmentation (polygons, or RLE compressed or not) as compressed RLE of an image
    of height x width. Raises rle_codec.RLEError saying what is wrong."""
    if isinstance(segmentation, dict):
        return rle_codec.validate(segmentation, expected_size=(height, width))
    if not isinstance(segmentation, list) or not segmentation:
        raise rle_codec.RLEError("segmentation must be polygons (a list) or an RLE (a dict)")
    polygons = _bounded_polygons(segmentation, height, width)
    rles = mask_utils.frPyObjects(polygons, height, width)
    merged = mask_utils.merge(rles)
    return {"size": [height, width], "counts": merged["counts"].decode("ascii")}
