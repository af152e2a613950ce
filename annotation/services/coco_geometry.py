"""Reading a COCO instances file for import: the document's parts, and each segmentation
(polygons, RLE compressed or not, as COCO writes crowd regions) as compressed RLE of its image,
checked so that a hostile file costs no more than its image does."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from pycocotools import mask as mask_utils

from annotation.services.errors import InvalidInput
from engine import rle as rle_codec

# Bounds on an imported polygon segmentation (see _bounded_polygons).
MAX_POLYGON_PARTS = 10_000
MAX_POLYGON_VERTICES = 100_000
MAX_PERIMETER_FACTOR = 50


@dataclass(frozen=True)
class CocoDocument:
    images: list[Any]
    annotations: dict[Any, list[dict[str, Any]]]  # by image id, as the file writes it
    categories: list[Any]


def read_coco(data: bytes) -> CocoDocument:
    """The images, annotations grouped by image id and categories of a COCO file; InvalidInput
    when the file is not COCO instances JSON at all (then nothing is imported)."""
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
    categories = doc.get("categories", [])
    if not isinstance(categories, list):
        raise InvalidInput("not COCO instances JSON: 'categories' must be a list")
    grouped: dict[Any, list[dict[str, Any]]] = {}
    for annotation in annotations:
        key = annotation.get("image_id") if isinstance(annotation, dict) else None
        if not isinstance(key, int | str):
            key = None
        grouped.setdefault(key, []).append(annotation)
    return CocoDocument(images, grouped, categories)


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
