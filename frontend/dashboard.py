"""The admin dashboard: staff see, per dataset, the data engine's numbers drawn as charts in the
browser (Chart.js, served from this server), the automatic passes' progress, and the exports,
which they can start from the page.

The views only authorise and gather: every number comes from
``annotation.services.stats.dataset_stats``, the service behind ``GET /api/datasets/{id}/stats/``,
and the page's script polls that endpoint (and the exports endpoint) while something runs, so the
page and the API cannot disagree. Exports are started through ``POST
/api/datasets/{id}/exports/``, the API's own validation answering bad filters.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse

from annotation.api.export_serializers import ExportSerializer
from annotation.models import Dataset, Export, ImageStatus, MaskSource, Stage
from annotation.services.sa1b import DEFAULT_SHARD_SIZE, MAX_SHARD_SIZE
from annotation.services.stats import (
    HELDOUT_COLUMNS,
    HELDOUT_KEYS,
    MASK_BINS,
    dataset_stats,
    datasets_overview,
)
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
        },
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
    }
    return render(request, "frontend/dashboard/dataset.html", context)
