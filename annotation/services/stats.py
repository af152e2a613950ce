"""Dataset statistics for the admin dashboard. Numbers about masks come from the mask tallies
(annotation.services.tallies: a few rows per image, kept exact by triggers at every write), the
rest from aggregate queries over images, sessions and passes, so a request costs rows per image,
not per mask.

- ``images``: images per stage and status.
- ``masks_per_image``: per stage (the stage each mask was made in) and over all stages, how many
  images have 1-10, 11-50, 51-100, 101-200 and more than 200 masks (the bins of the SA-1B
  paper's figure), the mean over those images, and the totals. Images with no mask in a stage
  are not counted in it.
- ``seconds_per_mask``: per stage and day (UTC) the masks were made, the mean ``seconds_spent``
  of masks annotators made (sources manual and model_assisted) with a recorded time (> 0).
- ``annotators``: per annotator, the active seconds of their sessions on the dataset's images,
  the masks those sessions hold now (open sessions too: saved masks count before Done), and
  masks per hour (null without active time).
- ``model_versions``: every version, oldest first, with its stored ``metrics``, its masks in this
  dataset, and ``heldout``: the held-out evaluation the retraining round stored in
  ``metrics["heldout"]`` reduced to ``HELDOUT_KEYS`` (a key it lacks is null), or null for a
  version never evaluated.
- ``automatic_passes``: each pass on the dataset, oldest first, with its images done and failed,
  masks so far, model version and times, and a note saying why a finished pass wrote no mask.
- ``labels``: each label of the dataset, in the pickers' order, with its masks; and
  ``unlabelled_masks``: all masks (from the tallies) less the labelled ones. One grouped query
  reads only labelled masks (the partial index ``mask_label_idx``), so the count costs what the
  labelled masks do, however many class-agnostic masks the automatic passes made.

``datasets_overview`` is the dashboard's index: per dataset its images per stage and masks.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Avg, Count, F, IntegerField, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce

from annotation.models import (
    AnnotatorSession,
    AutomaticPass,
    Dataset,
    HumanMaskDay,
    Image,
    Label,
    MaskTally,
    Stage,
)
from annotation.services.access import member_dataset_ids
from annotation.services.automatic_plan import zero_masks_note
from annotation.services.quality_claims import attempt_sessions_filter
from registry import visibility
from registry.metrics import SUMMARY_LABELS, SUMMARY_METRICS
from registry.models import ModelVersion

# The held-out metrics a retraining round records, in chart order: the evaluation's summary.
HELDOUT_KEYS = SUMMARY_METRICS
# (key, label) of each held-out column of the dashboard's table, in HELDOUT_KEYS order.
HELDOUT_COLUMNS = tuple((key, SUMMARY_LABELS[key]) for key in HELDOUT_KEYS)

# (label, lowest, highest or None): the SA-1B paper's masks-per-image bins.
MASK_BINS = (
    ("1-10", 1, 10),
    ("11-50", 11, 50),
    ("51-100", 51, 100),
    ("101-200", 101, 200),
    (">200", 201, None),
)


def dataset_stats(dataset: Dataset, viewer: AbstractBaseUser | None = None) -> dict[str, Any]:
    """The dataset's statistics as ``viewer`` may see them (None: everything, for staff pages):
    a model version trained on a dataset the viewer is not a member of appears only when it made
    masks here, and then redacted (registry.visibility)."""
    visible = (
        visibility.visible_version_ids(member_dataset_ids(viewer)) if viewer is not None else None
    )
    every_stage = _mask_histogram(dataset, None)
    labels = _labels(dataset)
    return {
        "dataset": {"id": dataset.pk, "name": dataset.name},
        "images": _images(dataset),
        "masks_per_image": {
            **{str(stage): _mask_histogram(dataset, stage) for stage in Stage.values},
            "all": every_stage,
        },
        "seconds_per_mask": _seconds_per_mask(dataset),
        "annotators": _annotators(dataset),
        "model_versions": _model_versions(dataset, visible),
        "automatic_passes": _automatic_passes(dataset, visible),
        "labels": labels,
        # max(): the tallies and the count are two reads; a mask made between them is no reason
        # to show a negative number.
        "unlabelled_masks": max(every_stage["masks"] - sum(row["masks"] for row in labels), 0),
    }


def label_counts(dataset: Dataset) -> QuerySet[Label, dict[str, Any]]:
    """The dataset's labels with their masks: the label table joined to the masks on
    ``label_id``, which the partial index ``mask_label_idx`` serves. Counting ``label_id`` (not
    the mask's id) lets PostgreSQL answer from the index alone (an index-only scan) once the
    table is vacuumed."""
    return (
        Label.objects.filter(dataset=dataset)
        .annotate(masks_n=Count("masks__label"))
        .order_by("position", "id")
        .values("id", "name", "color", "masks_n")
    )


def _labels(dataset: Dataset) -> list[dict[str, Any]]:
    return [
        {"id": row["id"], "name": row["name"], "color": row["color"], "masks": row["masks_n"]}
        for row in label_counts(dataset)
    ]


def _images(dataset: Dataset) -> dict[str, Any]:
    rows = (
        Image.objects.filter(dataset=dataset)
        .values("stage", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    by_stage: dict[str, dict[str, int]] = {str(stage): {} for stage in Stage.values}
    for row in rows:
        by_stage[str(row["stage"])][row["status"]] = row["n"]
    return {"total": sum(sum(s.values()) for s in by_stage.values()), "by_stage": by_stage}


def _mask_histogram(dataset: Dataset, stage: int | None) -> dict[str, Any]:
    in_stage = Q(mask_tallies__stage=stage) if stage is not None else Q()
    per_image = (
        Image.objects.filter(dataset=dataset)
        .annotate(n=Sum("mask_tallies__masks", filter=in_stage))
        .filter(n__gt=0)
    )
    bins = {
        label: Count("id", filter=Q(n__gte=low) & (Q(n__lte=high) if high else Q()))
        for label, low, high in MASK_BINS
    }
    result = per_image.aggregate(images=Count("id"), masks=Sum("n"), mean=Avg("n"), **bins)
    return {
        "images": result["images"],
        "masks": result["masks"] or 0,
        "mean": float(result["mean"]) if result["mean"] is not None else None,
        "bins": {label: result[label] for label, _, _ in MASK_BINS},
    }


def _seconds_per_mask(dataset: Dataset) -> list[dict[str, Any]]:
    rows = HumanMaskDay.objects.filter(dataset=dataset).order_by("stage", "day")
    return [
        {
            "stage": row.stage,
            "day": row.day.isoformat(),
            "masks": row.masks,
            "seconds": row.seconds,
            "seconds_per_mask": row.seconds / row.masks,
        }
        for row in rows
    ]


def _annotators(dataset: Dataset) -> list[dict[str, Any]]:
    rows = (
        AnnotatorSession.objects.filter(image__dataset=dataset)
        # Sessions on quality attempts made no mask of the dataset's (see quality_claims).
        .exclude(attempt_sessions_filter())
        .values("annotator", "annotator__username")
        .annotate(
            sessions=Count("id"),
            active_seconds=Sum("active_seconds"),
            masks_made=Sum("masks_made"),
        )
        .order_by("annotator__username")
    )
    return [
        {
            "annotator": row["annotator"],
            "username": row["annotator__username"],
            "sessions": row["sessions"],
            "active_seconds": row["active_seconds"],
            "masks_made": row["masks_made"],
            "masks_per_hour": (
                row["masks_made"] * 3600.0 / row["active_seconds"]
                if row["active_seconds"]
                else None
            ),
        }
        for row in rows
    ]


def _model_versions(dataset: Dataset, visible: set[int] | None) -> list[dict[str, Any]]:
    counts = dict(
        MaskTally.objects.filter(image__dataset=dataset, model_version_key__gt=0)
        .values("model_version_key")
        .annotate(n=Sum("masks"))
        .values_list("model_version_key", "n")
        .order_by()
    )
    versions = ModelVersion.objects.order_by("created_at", "id")
    if visible is not None:
        versions = versions.filter(
            Q(pk__in=visible) | Q(pk__in=[k for k, n in counts.items() if n])
        )
    fields = ("id", "name", "model_type", "round", "is_active", "metrics")
    rows = []
    for row in versions.values(*fields, "created_at"):
        row = {
            **row,
            "masks_in_dataset": counts.get(row["id"], 0),
            "created_at": row["created_at"].isoformat(),
        }
        if visible is not None and row["id"] not in visible:
            row["name"] = visibility.redacted_name(row["id"])
            row["metrics"] = {}
        rows.append({**row, "heldout": _heldout(row["metrics"])})
    return rows


def _heldout(metrics: Any) -> dict[str, float | None] | None:
    heldout = metrics.get("heldout") if isinstance(metrics, dict) else None
    if not isinstance(heldout, dict) or not any(key in heldout for key in HELDOUT_KEYS):
        return None
    return {key: _number(heldout.get(key)) for key in HELDOUT_KEYS}


def _number(value: Any) -> float | None:
    # A hand-edited metrics JSON may hold anything; a chart needs numbers or gaps.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _automatic_passes(dataset: Dataset, visible: set[int] | None) -> list[dict[str, Any]]:
    done = Q(items__status="done")
    passes = (
        AutomaticPass.objects.filter(dataset=dataset)
        .annotate(
            done_images=Count("items", filter=done),
            failed_images=Count("items", filter=Q(items__status="failed")),
            masks=Coalesce(
                Sum("items__mask_count", filter=done), Value(0), output_field=IntegerField()
            ),
        )
        .order_by("created_at", "id")
    )
    fields = ("id", "kind", "status", "total_images", "done_images", "failed_images", "masks")
    times = ("created_at", "started_at", "finished_at")
    rows = list(
        passes.values(
            *fields, "model_version", "config", *times, model_version_name=F("model_version__name")
        )
    )
    versions = ModelVersion.objects.in_bulk({row["model_version"] for row in rows})
    return [
        {
            **{key: value for key, value in row.items() if key != "config"},
            "note": zero_masks_note(
                row["status"],
                row["done_images"],
                row["masks"],
                row["config"],
                versions.get(row["model_version"]),
            ),
            **{key: _iso(row[key]) for key in times},
            "model_version_name": row["model_version_name"]
            if visible is None or row["model_version"] in (None, *visible)
            else visibility.redacted_name(row["model_version"]),
        }
        for row in rows
    ]


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def datasets_overview() -> list[dict[str, Any]]:
    """Every dataset with its images in each stage, all its images and all its masks (from the
    tallies: one query over the images, one over a few rows per image)."""
    images = Image.objects.values("dataset", "stage").annotate(n=Count("id")).order_by()
    per_stage: dict[int, dict[int, int]] = {}
    for row in images:
        per_stage.setdefault(row["dataset"], {})[row["stage"]] = row["n"]
    masks = dict(
        MaskTally.objects.values("image__dataset")
        .annotate(n=Sum("masks"))
        .values_list("image__dataset", "n")
        .order_by()
    )
    overview = []
    for dataset in Dataset.objects.order_by("name").values("id", "name"):
        stages = per_stage.get(dataset["id"], {})
        overview.append(
            {
                **dataset,
                "image_count": sum(stages.values()),
                "mask_count": masks.get(dataset["id"], 0),
                **{f"stage_{stage}": stages.get(stage, 0) for stage in Stage.values},
            }
        )
    return overview
