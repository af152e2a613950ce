"""Release gates: an export may require that every model-made mask it includes (sources
``automatic`` and ``prefilled``) comes from a model version, source and stage whose latest
finished audit met thresholds, e.g. ``{"min_share_iou_90": 0.9}``. The export then records the
audits it relied on (its report's and SA-1B manifest's ``gate``), or is refused (409) with
every gap named: a group with no finished audit, or whose audit fell short."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from annotation.audit_models import Audit
from annotation.models import Dataset
from annotation.services.errors import Conflict, InvalidInput
from annotation.services.export_format import ExportFilters, selected_masks

# Gate option -> the report figure it bounds from below.
GATE_FIGURES = {
    "min_share_iou_90": "share_iou_90",
    "min_share_iou_75": "share_iou_75",
    "min_share_iou_50": "share_iou_50",
    "min_median_iou": "median_iou",
    "min_precision": "precision",
    "min_recall": "recall",
    "min_boundary_iou": "mean_boundary_iou",
}
GATED_SOURCES = ("automatic", "prefilled")


def parse_gate(raw: Any) -> dict[str, float]:
    """A validated gate: a non-empty object of known thresholds, each a number from 0 to 1."""
    if not isinstance(raw, dict) or not raw:
        raise InvalidInput(
            f"gate must be an object of thresholds, e.g. {{'min_share_iou_90': 0.9}}; "
            f"known: {', '.join(GATE_FIGURES)}",
            field="gate",
        )
    unknown = sorted(str(key)[:40] for key in raw if key not in GATE_FIGURES)
    if unknown:
        raise InvalidInput(
            f"unknown gate thresholds: {', '.join(unknown)}; known: {', '.join(GATE_FIGURES)}",
            field="gate",
        )
    for key, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise InvalidInput(f"gate.{key} must be a number from 0 to 1", field="gate")
    return {key: float(value) for key, value in raw.items()}


def _latest_audit_of(dataset: Dataset, version: int | None, source: str, stage: int):
    """The most recently finished audit of ``dataset`` with reviewed originals of the group,
    and that group's figures; (None, None) when no finished audit covers it."""
    for audit in Audit.objects.filter(dataset=dataset, status=Audit.Status.DONE).order_by(
        "-finished_at", "-pk"
    ):
        for group in audit.report.get("groups", []):
            key = (group.get("model_version"), group.get("source"), group.get("stage"))
            if key == (version, source, stage) and group.get("originals"):
                return audit, group
    return None, None


def check_gate(dataset: Dataset, filters: ExportFilters, gate: dict[str, float]) -> dict[str, Any]:
    """What the gate relied on ({"thresholds", "relied_on": [...]}) when every model-made group
    of masks the export would include passes; else Conflict naming the gaps."""
    groups = (
        selected_masks(filters)
        .filter(image__dataset=dataset, source__in=GATED_SOURCES)
        .values_list("model_version_id", "source", "stage")
        .distinct()
        .order_by("model_version_id", "source", "stage")
    )
    relied_on, gaps = [], []
    for version, source, stage in groups:
        where = {"model_version": version, "source": source, "stage": stage}
        audit, figures = _latest_audit_of(dataset, version, source, stage)
        if audit is None:
            gaps.append({**where, "audit": None, "reason": "no finished audit covers these masks"})
            continue
        values = {GATE_FIGURES[key]: figures.get(GATE_FIGURES[key]) for key in gate}
        short = [
            f"{GATE_FIGURES[key]} = {_shown(values[GATE_FIGURES[key]])} < {threshold}"
            for key, threshold in gate.items()
            if values[GATE_FIGURES[key]] is None or values[GATE_FIGURES[key]] < threshold
        ]
        entry = {**where, "audit": audit.pk, "finished_at": audit.finished_at.isoformat()}
        if short:
            gaps.append({**entry, "figures": values, "reason": "; ".join(short)})
        else:
            relied_on.append({**entry, "figures": values})
    if gaps:
        named = "; ".join(
            f"model version {gap['model_version']} {gap['source']} stage {gap['stage']}: "
            f"{gap['reason']}" + (f" (audit {gap['audit']})" if gap["audit"] else "")
            for gap in gaps[:10]
        )
        raise Conflict(f"the export's release gate is not met: {named}", gaps=gaps)
    return {"thresholds": gate, "relied_on": relied_on}


def _shown(value: float | None) -> str:
    return "none" if value is None else f"{value:.4f}"


def record_gate(manifest: Path, gate: dict[str, Any]) -> None:
    """Add the gate's record to a written SA-1B ``manifest.json`` (replaced atomically)."""
    data = json.loads(manifest.read_text())
    data["gate"] = gate
    partial = manifest.with_suffix(".json.partial")
    partial.write_text(json.dumps(data, indent=2))
    os.replace(partial, manifest)
