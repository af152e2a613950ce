"""An audit's comparisons and report: each original mask against what the reviewer made of it,
and the figures per model version, source and stage (annotation.services.audit_metrics).

The report (``Audit.report``) is JSON::

    {"images": {"sampled", "reviewed"}, "originals": int,
     "boundary_ratio": 0.02, "histogram_edges": [0.0, 0.05, ..., 1.0],
     "overall": FIGURES,
     "groups": [{"model_version", "model_version_name", "source", "stage", **FIGURES}]}

where FIGURES is ``audit_metrics.summarize``'s dict over the reviewed images. Objects added on
an image count as misses of every group with originals on that image (an image's masks come
from one pass, so this is one group in practice); ``overall`` counts each added object once.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from typing import Any

from annotation.audit_models import Audit, AuditImage, AuditItem
from annotation.models import Mask
from annotation.services import audit_metrics as metrics
from engine import rle as rle_codec
from registry.models import ModelVersion

GroupKey = tuple[int | None, str, int]
FIGURE_COLUMNS = [
    "originals",
    "pairs",
    "unchanged",
    "deleted",
    "added",
    "share_iou_90",
    "share_iou_75",
    "share_iou_50",
    "median_iou",
    "mean_iou",
    "mean_boundary_iou",
    "precision",
    "recall",
]


def review_image(entry: AuditImage) -> None:
    """Record the outcome of each original of a reviewed sample image: deleted (gone from the
    image), kept (same pixels) or fixed, with its IoU and boundary IoU against what it is now;
    and the masks added since the draw."""
    image = entry.image
    size = (image.height, image.width)
    d = metrics.boundary_distance(*size)
    current = {
        mask.pk: mask for mask in Mask.objects.filter(image=image).only("pk", "rle", "image_id")
    }
    items = list(entry.items.all())
    for item in items:
        mask = current.get(item.mask_id)
        if mask is None:
            item.outcome, item.iou, item.boundary_iou = AuditItem.Outcome.DELETED, None, None
            continue
        original = rle_codec.decode(item.rle, expected_size=size)
        now = rle_codec.decode(mask.rle, expected_size=size)
        item.iou = metrics.iou(original, now)
        item.boundary_iou = metrics.boundary_iou(original, now, d)
        same = bool((original == now).all())
        item.outcome = AuditItem.Outcome.KEPT if same else AuditItem.Outcome.FIXED
    AuditItem.objects.bulk_update(items, ["outcome", "iou", "boundary_iou"])
    prior = set(entry.prior_mask_ids)
    entry.added_mask_ids = sorted(pk for pk in current if pk not in prior)
    entry.save(update_fields=["added_mask_ids"])


def _figures(items: list[AuditItem], added: int) -> dict[str, Any]:
    pairs = [item for item in items if item.outcome != AuditItem.Outcome.DELETED]
    return metrics.summarize(
        [item.iou for item in pairs],
        [item.boundary_iou for item in pairs],
        deleted=len(items) - len(pairs),
        added=added,
    )


def build_report(audit: Audit) -> dict[str, Any]:
    entries = list(audit.images.all())
    reviewed = [entry for entry in entries if entry.status == AuditImage.Status.DONE]
    items = list(
        AuditItem.objects.filter(audit_image__in=reviewed).only(
            "audit_image_id",
            "model_version_id",
            "source",
            "stage",
            "outcome",
            "iou",
            "boundary_iou",
        )
    )
    by_group: dict[GroupKey, list[AuditItem]] = defaultdict(list)
    groups_of_image: dict[int, set[GroupKey]] = defaultdict(set)
    for item in items:
        key = (item.model_version_id, item.source, item.stage)
        by_group[key].append(item)
        groups_of_image[item.audit_image_id].add(key)
    added_to: dict[GroupKey, int] = defaultdict(int)
    for entry in reviewed:
        for key in groups_of_image[entry.pk]:
            added_to[key] += len(entry.added_mask_ids)
    names = dict(
        ModelVersion.objects.filter(
            pk__in={key[0] for key in by_group if key[0] is not None}
        ).values_list("pk", "name")
    )
    groups = [
        {
            "model_version": version,
            "model_version_name": names.get(version) if version is not None else None,
            "source": source,
            "stage": stage,
            **_figures(by_group[(version, source, stage)], added_to[(version, source, stage)]),
        }
        for version, source, stage in sorted(by_group, key=lambda k: (k[0] or 0, k[1], k[2]))
    ]
    return {
        "images": {"sampled": len(entries), "reviewed": len(reviewed)},
        "originals": AuditItem.objects.filter(audit_image__audit=audit).count(),
        "boundary_ratio": metrics.BOUNDARY_RATIO,
        "histogram_edges": metrics.histogram_edges(),
        "overall": _figures(items, sum(len(entry.added_mask_ids) for entry in reviewed)),
        "groups": groups,
    }


def report_csv(audit: Audit) -> str:
    """The report as CSV: one row for the whole audit, then one per group; the histogram's
    bins as the last columns (``iou_0.00-0.05`` ...)."""
    report = audit.report or build_report(audit)
    edges = report["histogram_edges"]
    bins = [f"iou_{lo:.2f}-{hi:.2f}" for lo, hi in zip(edges, edges[1:], strict=False)]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["audit", "scope", "model_version", "model_version_name", "source", "stage"]
        + FIGURE_COLUMNS
        + bins
    )
    rows = [("all", {"model_version": "", "source": "", "stage": ""}, report["overall"])]
    rows += [("group", group, group) for group in report["groups"]]
    for scope, key, figures in rows:
        writer.writerow(
            [audit.pk, scope, key["model_version"], key.get("model_version_name") or ""]
            + [key["source"], key["stage"]]
            + ["" if figures[c] is None else figures[c] for c in FIGURE_COLUMNS]
            + figures["histogram"]
        )
    return out.getvalue()
