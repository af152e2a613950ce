"""The dashboard's quality pages (staff, like the rest of the dashboard): a dataset's audits with
a form that starts one through the API (POST /api/datasets/{id}/audits/), and an audit's report:
the SA paper's histogram of IoU between the model's masks and their corrections, drawn here as
SVG, and the figures per model version, source and stage."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse

from annotation.models import Audit, Dataset
from annotation.services.audit_report import build_report
from registry.models import ModelVersion

CHART_WIDTH, CHART_HEIGHT, CHART_PAD = 640, 220, 30
# Rows of the figures table: report key, what it means.
FIGURE_ROWS = [
    ("originals", "original masks"),
    ("pairs", "kept or fixed (pairs)"),
    ("unchanged", "kept unchanged"),
    ("deleted", "deleted as wrong"),
    ("added", "objects added as missed"),
    ("share_iou_90", "pairs at IoU > 0.90"),
    ("share_iou_75", "pairs at IoU > 0.75"),
    ("share_iou_50", "pairs at IoU > 0.50"),
    ("median_iou", "median IoU"),
    ("mean_boundary_iou", "mean boundary IoU"),
    ("precision", "precision (pairs / originals)"),
    ("recall", "recall (pairs / (pairs + added))"),
]


@staff_member_required
def dataset_audits(request: HttpRequest, dataset_id: int) -> HttpResponse:
    dataset = get_object_or_404(Dataset, pk=dataset_id)
    context = {
        **admin.site.each_context(request),
        "title": f"Quality audits: {dataset.name}",
        "dataset": dataset,
        "audits": dataset.audits.select_related("model_version"),
        "sources": Audit.Source.choices,
        "model_versions": ModelVersion.objects.order_by("-created_at", "-id").only("id", "name"),
        "start_url": reverse("dataset-audits", args=[dataset.pk]),
    }
    return render(request, "frontend/dashboard/audits.html", context)


def _shown(key: str, value: Any) -> str:
    if value is None:
        return "–"
    if key.startswith("share") or key in ("precision", "recall"):
        return f"{100 * value:.1f}%"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def histogram_bars(figures: dict[str, Any], edges: list[float]) -> list[dict[str, Any]]:
    """SVG rectangles of the histogram: the share of pairs per IoU bin, as the paper plots it."""
    counts = figures["histogram"]
    total = sum(counts) or 1
    inner_w, inner_h = CHART_WIDTH - 2 * CHART_PAD, CHART_HEIGHT - 2 * CHART_PAD
    width = inner_w / len(counts)
    top = max(counts) / total if any(counts) else 1
    bars = []
    for k, count in enumerate(counts):
        height = inner_h * (count / total) / top if count else 0
        bars.append(
            {
                "x": round(CHART_PAD + k * width + 1, 2),
                "y": round(CHART_PAD + inner_h - height, 2),
                "w": round(width - 2, 2),
                "h": round(height, 2),
                "count": count,
                "share": f"{100 * count / total:.1f}%",
                "label": f"{edges[k]:.2f}–{edges[k + 1]:.2f}",
            }
        )
    return bars


@staff_member_required
def audit_report_page(request: HttpRequest, audit_id: int) -> HttpResponse:
    audit = get_object_or_404(Audit.objects.select_related("dataset"), pk=audit_id)
    report = audit.report or build_report(audit)
    edges = report["histogram_edges"]
    columns = [("all masks", report["overall"])] + [
        (
            f"{group['model_version_name'] or 'no model'} · {group['source']} · "
            f"stage {group['stage']}",
            group,
        )
        for group in report["groups"]
    ]
    rows = [
        {"label": label, "key": key, "cells": [_shown(key, fig[key]) for _, fig in columns]}
        for key, label in FIGURE_ROWS
    ]
    context = {
        **admin.site.each_context(request),
        "title": f"Audit {audit.pk} of {audit.dataset.name}",
        "audit": audit,
        "report": report,
        "columns": [name for name, _ in columns],
        "rows": rows,
        "bars": histogram_bars(report["overall"], edges),
        "chart": {
            "w": CHART_WIDTH,
            "h": CHART_HEIGHT,
            "pad": CHART_PAD,
            "base": CHART_HEIGHT - CHART_PAD,
            "right": CHART_WIDTH - CHART_PAD,
        },
        "urls": {
            "json": reverse("audit-report", args=[audit.pk]),
            "csv": reverse("audit-report-csv", args=[audit.pk]),
            "list": reverse("dashboard-audits", args=[audit.dataset_id]),
        },
    }
    return render(request, "frontend/dashboard/audit_report.html", context)
