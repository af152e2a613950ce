"""The admin dashboard: staff see, per dataset, the data engine's numbers drawn as charts in the
browser (Chart.js, served from this server), every job (passes, training rounds, imports,
exports) with its progress and a Cancel button, and they start from the page an automatic pass
or a pre-fill (after a preview of what it would touch), a training round, an export, and bulk
moves of images between stages.

The views only authorise and gather: every number comes from
``annotation.services.stats.dataset_stats``, the service behind ``GET /api/datasets/{id}/stats/``,
and the page's script polls that endpoint (and the exports endpoint) while something runs, so the
page and the API cannot disagree. Everything is started through the API's own endpoints (its
validation answering bad input, its permission checks deciding), and the jobs panel polls
``GET /api/datasets/{id}/jobs/``.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse

from annotation.api.export_serializers import ExportSerializer
from annotation.api.label_serializers import LabelSerializer
from annotation.models import AutomaticPass, Dataset, Export, ImageStatus, MaskSource, Stage
from annotation.services.automatic_config import PRESETS, resolve_config
from annotation.services.ground_truth import quality_settings
from annotation.services.labels import dataset_labels
from annotation.services.quality_reports import agreement, annotator_accuracy
from annotation.services.sa1b import DEFAULT_SHARD_SIZE, MAX_SHARD_SIZE
from annotation.services.stats import (
    HELDOUT_COLUMNS,
    HELDOUT_KEYS,
    MASK_BINS,
    dataset_stats,
    datasets_overview,
)
from modeltrain.jobs_panel import dataset_jobs
from registry.models import ModelVersion

RECENT_EXPORTS = 10
# Often enough to watch a pass move, rarely enough that an open tab costs the server little.
POLL_MILLISECONDS = 3000


@staff_member_required
def dashboard_index(request: HttpRequest) -> HttpResponse:
    context = {
        **admin.site.each_context(request),
        "title": "Data engine dashboard",
        "datasets": datasets_overview(),
    }
    return render(request, "frontend/dashboard/index.html", context)


@staff_member_required
def dataset_dashboard(request: HttpRequest, dataset_id: int) -> HttpResponse:
    dataset = get_object_or_404(Dataset, pk=dataset_id)
    recent = dataset.exports.all()[:RECENT_EXPORTS]
    page = {
        "dataset": {"id": dataset.pk, "name": dataset.name},
        "urls": {
            "stats": reverse("dataset-stats", args=[dataset.pk]),
            "exports": reverse("dataset-exports", args=[dataset.pk]),
            "jobs": reverse("dataset-jobs", args=[dataset.pk]),
            "passes": reverse("dataset-automatic-passes", args=[dataset.pk]),
            "preview": reverse("dataset-automatic-pass-preview", args=[dataset.pk]),
            "move": reverse("dataset-change-stage", args=[dataset.pk]),
            "rounds": reverse("traininground-list"),
            "labels": reverse("dataset-labels", args=[dataset.pk]),
        },
        "labels": LabelSerializer(dataset_labels(dataset), many=True).data,
        "presets": {
            name: {kind: _thresholds(kind, name) for kind in AutomaticPass.Kind.values}
            for name in PRESETS
        },
        "jobs": dataset_jobs(dataset, request.user),
        "poll_ms": POLL_MILLISECONDS,
        "recent_exports": RECENT_EXPORTS,
        "stages": {str(value): label for value, label in Stage.choices},
        "statuses": list(ImageStatus.values),
        "bins": [label for label, _, _ in MASK_BINS],
        "heldout_keys": list(HELDOUT_KEYS),
        "stats": dataset_stats(dataset),
        "exports": ExportSerializer(recent, many=True).data,
    }
    context = {
        **admin.site.each_context(request),
        "title": f"Dashboard: {dataset.name}",
        "dataset": dataset,
        "page": page,
        "formats": Export.Format.choices,
        "stages": Stage.choices,
        "sources": MaskSource.choices,
        "model_versions": ModelVersion.objects.order_by("-created_at", "-id").only("id", "name"),
        # The held-out table's metric headers; its script fills each row's cells from these.
        "heldout_columns": HELDOUT_COLUMNS,
        "default_shard_size": DEFAULT_SHARD_SIZE,
        "max_shard_size": MAX_SHARD_SIZE,
        "presets": list(PRESETS),
        # The same services as GET /api/datasets/{id}/quality/annotators/ and .../agreement/.
        "quality": {
            "settings": quality_settings(dataset),
            "annotators": annotator_accuracy(dataset, "week")["annotators"],
            "agreement": agreement(dataset)["stages"],
        },
    }
    return render(request, "frontend/dashboard/dataset.html", context)


def _thresholds(kind: str, preset: str) -> dict:
    """What the launch form says a preset means for a kind of pass."""
    config = resolve_config(kind, None, preset)
    return {
        "pred_iou_thresh": config["pred_iou_thresh"],
        "stability_score_thresh": config["stability_score_thresh"],
        "points_per_side": config["points_per_side"],
        "crop_n_layers": config["crop_n_layers"],
    }
