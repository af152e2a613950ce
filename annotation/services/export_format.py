"""What an export contains: which masks (the filters) and the SA-1B fields of each.

SA-1B describes every mask with fields only a model pass produces. Masks made by people get
fixed, documented values so that every exported annotation has every field:

- ``predicted_iou`` and ``stability_score``: **1.0** for masks an annotator drew or accepted
  (sources ``manual`` and ``model_assisted``): a person judged the mask right as it is, and a
  model's score of a mask the person may have edited afterwards would describe another mask.
  Model masks (``prefilled``, ``automatic``) and ``imported`` masks keep their stored scores;
  when none was stored (e.g. a COCO import) they are 1.0 too (ground truth from elsewhere).
- ``crop_box``: the stored crop box (the automatic pass's zoomed crop), else the **whole
  image** ``[0, 0, width, height]``.
- ``point_coords``: the stored point (the automatic pass's grid point), else the **first
  positive click** of the mask's prompts, else the mask's **interior point**: the foreground
  pixel farthest from the background (Euclidean distance transform, first such pixel in
  row-major order), at the pixel's centre ``[x + 0.5, y + 0.5]``.

The minimum-score filters compare the exported values, so a human mask (1.0) passes any
threshold. An image is exported only if at least one of its masks passes the filters.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from django.db import connections
from django.db.models import (
    Case,
    Exists,
    F,
    FloatField,
    OuterRef,
    QuerySet,
    TextField,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce
from scipy import ndimage

from annotation.models import Dataset, Image, Mask, MaskPrompt, MaskSource, Stage
from annotation.services.errors import InvalidInput
from engine import rle as rle_codec
from engine import rle_batch
from registry.models import ModelVersion

HUMAN_SOURCES = (MaskSource.MANUAL, MaskSource.MODEL_ASSISTED)
HUMAN_SCORE = 1.0


@dataclass(frozen=True)
class ExportFilters:
    """Which masks go out. None means "any"."""

    stage: int | None = None
    source: str | None = None
    model_version: int | None = None
    min_predicted_iou: float | None = None
    min_stability_score: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}


def parse_filters(raw: dict[str, Any] | None) -> ExportFilters:
    """Validated filters from a dict (the API body, a command's options, Export.filters)."""
    raw = {key: value for key, value in (raw or {}).items() if value is not None}
    unknown = set(raw) - set(ExportFilters.__dataclass_fields__)
    if unknown:
        raise InvalidInput(f"unknown export filters: {', '.join(sorted(unknown))}")
    stage = raw.get("stage")
    if stage is not None and stage not in Stage.values:
        raise InvalidInput(f"stage must be one of {Stage.values}, got {stage!r}")
    source = raw.get("source")
    if source is not None and source not in MaskSource.values:
        raise InvalidInput(f"source must be one of {', '.join(MaskSource.values)}")
    version = raw.get("model_version")
    if version is not None and not ModelVersion.objects.filter(pk=version).exists():
        raise InvalidInput(f"no model version with id {version!r}")
    for key in ("min_predicted_iou", "min_stability_score"):
        value = raw.get(key)
        if value is not None and not (isinstance(value, int | float) and 0 <= value <= 1):
            raise InvalidInput(f"{key} must be a number from 0 to 1, got {value!r}")
    return ExportFilters(**raw)


def _score(field: str) -> Case:
    return Case(
        When(source__in=HUMAN_SOURCES, then=Value(HUMAN_SCORE)),
        default=Coalesce(F(field), Value(HUMAN_SCORE)),
        output_field=FloatField(),
    )


def selected_masks(filters: ExportFilters) -> QuerySet[Mask]:
    """All masks passing the filters (any dataset; narrow it with .filter(image=...)), with the
    exported scores annotated as ``export_iou`` and ``export_stability``."""
    masks = Mask.objects.annotate(
        export_iou=_score("predicted_iou"), export_stability=_score("stability_score")
    )
    if filters.stage is not None:
        masks = masks.filter(stage=filters.stage)
    if filters.source is not None:
        masks = masks.filter(source=filters.source)
    if filters.model_version is not None:
        masks = masks.filter(model_version_id=filters.model_version)
    if filters.min_predicted_iou is not None:
        masks = masks.filter(export_iou__gte=filters.min_predicted_iou)
    if filters.min_stability_score is not None:
        masks = masks.filter(export_stability__gte=filters.min_stability_score)
    return masks


def selected_images(dataset: Dataset, filters: ExportFilters) -> QuerySet[Image]:
    """The dataset's images with at least one selected mask, in id order."""
    masks = selected_masks(filters).filter(image=OuterRef("pk"))
    return Image.objects.filter(dataset=dataset).filter(Exists(masks)).order_by("pk")


# Images whose masks one query fetches: few enough that a batch of masks stays small in
# memory whatever the dataset's size, enough that queries cost nothing beside the rows.
IMAGE_BATCH = 32
# Under SQLite's historical limit of 999 parameters per statement.
MAX_IN_PARAMS = 500


def _text(field: str) -> Cast:
    return Cast(field, output_field=TextField())


def _absent(json_text: str | None) -> bool:
    return json_text is None or json_text in ("null", "[]")


def sa1b_annotations(
    images: Sequence[tuple[int, int, int]],
    filters: ExportFilters,
    failed: list[dict[str, Any]] | None = None,
) -> dict[int, list[str]]:
    """The SA-1B annotation of every selected mask of ``images`` ((id, width, height), up to
    ``IMAGE_BATCH`` of them) as JSON text, in mask id order, keyed by image id; one query.

    The stored RLE, bbox, crop box and point are JSON already, in the exported form (written
    through ``engine.rle``: ``{"size", "counts"}`` and floats), so the database hands them over
    as text and they are spliced in: decoding and re-encoding four JSON values per mask cost
    twenty times what writing the export does. Only the fields a mask lacks are computed.
    The RLE is checked all the same (``checked_rle``): a stored row that does not fit its image,
    or whose area or box disagree with its RLE, is left out and listed in ``failed``
    ({"mask_id", "image_id", "reason"}) instead of being handed to readers whose decoders
    trust it.
    """
    rows = _mask_rows(images, filters)
    texts = _annotation_texts(rows, images, failed)
    out: dict[int, list[str]] = {image_id: [] for image_id, _, _ in images}
    for row, text in texts:
        out[row[0]].append(text)
    return out


# What the export's filters select masks by, after the columns ``_annotation_texts`` reads.
SELECTION_COLUMNS = ("stage", "source", "model_version_id")


def sa1b_annotation_rows(
    images: Sequence[tuple[int, int, int]], failed: list[dict[str, Any]]
) -> list[tuple[tuple, str]]:
    """``sa1b_annotations`` of every mask of ``images`` (no filters), as (row, annotation text)
    in (image id, mask id) order, where each row ends with what the filters select by:
    ``row[1]`` the mask id, ``row[5:7]`` the exported predicted IoU and stability score and
    ``row[9:12]`` ``SELECTION_COLUMNS``. The failed masks are listed in ``failed`` with those
    too, under "selection": (stage, source, model version id, exported IoU, stability)."""
    rows = _mask_rows(images, ExportFilters(), extra=SELECTION_COLUMNS)
    selection = {row[1]: (*row[9:12], row[5], row[6]) for row in rows}
    start = len(failed)
    texts = _annotation_texts(rows, images, failed)
    for entry in failed[start:]:
        entry["selection"] = selection[entry["mask_id"]]
    return texts


def _mask_rows(
    images: Sequence[tuple[int, int, int]], filters: ExportFilters, extra: tuple[str, ...] = ()
) -> list[tuple]:
    query = (
        selected_masks(filters)
        .filter(image_id__in=[image_id for image_id, _, _ in images])
        .order_by("image_id", "pk")
        .values_list(
            "image_id",
            "id",
            _text("rle"),
            _text("bbox"),
            "area",
            "export_iou",
            "export_stability",
            _text("crop_box"),
            _text("point_coords"),
            *extra,
        )
    )
    # Run on the cursor: the columns need no conversion (text, integers, floats), and Django's
    # per-row converters of the score expressions cost as much as formatting the row.
    sql, params = query.query.sql_with_params()
    with connections[query.db].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _annotation_texts(
    rows: list[tuple],
    images: Sequence[tuple[int, int, int]],
    failed: list[dict[str, Any]] | None,
) -> list[tuple[tuple, str]]:
    """(row, its annotation's JSON text) for the rows that pass their check, in row order."""
    sizes = {image_id: (h, w) for image_id, w, h in images}
    rows = _checked_rows(rows, sizes, failed)
    missing = {row[1]: row[2] for row in rows if _absent(row[8])}
    points = _fallback_points(missing) if missing else {}
    whole = {image_id: f"[0.0, 0.0, {float(w)!r}, {float(h)!r}]" for image_id, w, h in images}
    out = []
    for row in rows:
        image_id, mask_id, rle, bbox, area, iou, stability, crop, point = row[:9]
        out.append(
            (
                row,
                f'{{"id": {mask_id}, "segmentation": {rle}, "bbox": {bbox}, "area": {area}, '
                f'"predicted_iou": {float(iou)!r}, "stability_score": {float(stability)!r}, '
                f'"crop_box": {whole[image_id] if _absent(crop) else crop}, '
                f'"point_coords": {points[mask_id] if mask_id in points else point}}}',
            )
        )
    return out


def checked_geometry(rle: Any, size: tuple[int, int], area: Any, bbox: Any) -> dict[str, Any]:
    """The canonical RLE of a stored mask of an image of ``size`` (h, w), after checking it as
    if it came from outside (well-formed, of the image's size, runs within it) and its stored
    ``area`` and ``bbox`` against it. Raises rle_codec.RLEError saying what is wrong."""
    valid = rle_codec.checked(rle, expected_size=size)
    if area != valid.area:
        raise rle_codec.RLEError(f"the stored area is {area}, its RLE holds {valid.area} pixels")
    if not same_box(bbox, valid.bbox):
        raise rle_codec.RLEError(f"the stored box is {str(bbox)[:80]}, its RLE's is {valid.bbox}")
    return valid.rle


def same_box(stored: Any, box: list[float]) -> bool:
    """Whether a stored box (JSON of any shape) is ``box``."""
    return (
        isinstance(stored, list)
        and len(stored) == 4
        and all(
            isinstance(v, int | float) and not isinstance(v, bool) and v == b
            for v, b in zip(stored, box, strict=True)
        )
    )


def checked_rle(rle_text: str, size: tuple[int, int], area: int, bbox_text: str) -> str:
    """``checked_geometry`` of a row as the database hands it over (RLE and box as JSON
    text): the RLE's JSON text, re-written only when it was not canonical (or held more)."""
    try:
        parsed, bbox = json.loads(rle_text), json.loads(bbox_text)
    except (TypeError, ValueError, RecursionError) as exc:
        raise rle_codec.RLEError(f"the stored RLE or box is not JSON: {exc}") from None
    valid = checked_geometry(parsed, size, area, bbox)
    return rle_text if valid == parsed else json.dumps(valid)


def _checked_rows(
    rows: list[tuple], sizes: dict[int, tuple[int, int]], failed: list[dict[str, Any]] | None
) -> list[tuple]:
    """The rows whose RLE passes ``checked_rle``, with the RLE text it returns. All the
    batch's counts strings are checked at once (``engine.rle_batch``); a row it leaves
    undecided (not canonical, malformed, its area or box off) gets ``checked_rle`` itself."""
    parsed = [_plain_counts(row[2], sizes[row[0]]) for row in rows]
    batch = rle_batch.check_counts(
        [counts or "" for counts in parsed], [sizes[row[0]] for row in rows]
    )
    areas, boxes = batch.area.tolist(), batch.bbox.tolist()
    kept = []
    for i, row in enumerate(rows):
        image_id, mask_id, rle, bbox, area = row[0], row[1], row[2], row[3], row[4]
        if not (
            parsed[i] is not None and batch.ok[i] and area == areas[i] and _box_is(bbox, boxes[i])
        ):
            try:
                rle = checked_rle(rle, sizes[image_id], area, bbox)
            except rle_codec.RLEError as exc:
                if failed is not None:
                    failed.append({"mask_id": mask_id, "image_id": image_id, "reason": str(exc)})
                continue
        kept.append((image_id, mask_id, rle, *row[3:]))
    return kept


def _plain_counts(rle_text: str, size: tuple[int, int]) -> str | None:
    """The counts string of a stored RLE that is exactly {"size": <size>, "counts": str},
    else None (``checked_rle`` decides). The text as both databases hand it over (PostgreSQL's
    jsonb and the JSON Django wrote) is read without a JSON parser when it has no escapes."""
    if not isinstance(rle_text, str):
        return None
    prefix = f'{{"size": [{size[0]}, {size[1]}], "counts": "'
    if rle_text.startswith(prefix) and rle_text.endswith('"}'):
        counts = rle_text[len(prefix) : -2]
        if '"' not in counts and "\\" not in counts:
            return counts
    return rle_batch.plain_counts(_json_or_none(rle_text), size)


def _box_is(bbox_text: str, box: list[float]) -> bool:
    """Whether the stored box (JSON text) is ``box``: by its text as both databases write a
    list of floats, else parsed."""
    return bbox_text == f"[{box[0]!r}, {box[1]!r}, {box[2]!r}, {box[3]!r}]" or same_box(
        _json_or_none(bbox_text), box
    )


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError, RecursionError):
        return None


def _fallback_points(rles: dict[int, str]) -> dict[int, str]:
    """mask id -> JSON [[x, y]] for masks stored without a point (see the module docstring)."""
    clicks = _first_positive_clicks(list(rles))
    points = {}
    for mask_id, rle in rles.items():
        point = clicks.get(mask_id) or interior_point(json.loads(rle))
        points[mask_id] = json.dumps([[float(x), float(y)] for x, y in point])
    return points


def _first_positive_clicks(mask_ids: list[int]) -> dict[int, list[list[float]]]:
    prompts = (
        prompt
        for start in range(0, len(mask_ids), MAX_IN_PARAMS)
        for prompt in MaskPrompt.objects.filter(
            mask_id__in=mask_ids[start : start + MAX_IN_PARAMS]
        ).values("mask_id", "points", "labels")
    )
    clicks = {}
    for prompt in prompts:
        for point, label in zip(prompt["points"], prompt["labels"], strict=False):
            if label == 1:
                clicks[prompt["mask_id"]] = [point]
                break
    return clicks


def interior_point(rle: dict[str, Any]) -> list[list[float]]:
    """[[x, y]]: the centre of the foreground pixel farthest from the background."""
    mask = rle_codec.decode(rle)  # checked already (``checked_rle``); decode checks again
    # Pad so the image border counts as background: a mask touching it is not "deep" there.
    distance = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(distance)), distance.shape)
    return [[float(x) + 0.5, float(y) + 0.5]]
