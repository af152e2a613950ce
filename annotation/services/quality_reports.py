"""The figures of quality control, from the completed attempts (annotation.models_quality):
each annotator's accuracy on ground truth, over time, and the agreement of two annotators on
doubled images, per stage (the paper's consistency figure: the share of matched pairs at
IoU > 0.90)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, timedelta
from typing import Any

from annotation.models import AttemptKind, Dataset, QualityAttempt, Stage
from annotation.services.errors import InvalidInput

PERIODS = ("day", "week")


def _figures(attempts: list[QualityAttempt]) -> dict[str, Any]:
    """Totals over attempts: mean matched IoU over every matched pair, missed and extra objects
    per image, seconds per mask drawn, share of matched pairs at IoU > 0.90."""
    images = len(attempts)
    matched = sum(a.matched for a in attempts)
    drawn = sum(a.attempt_masks for a in attempts)
    return {
        "attempts": images,
        "reference_masks": sum(a.reference_masks for a in attempts),
        "attempt_masks": drawn,
        "matched": matched,
        "mean_iou": sum(a.iou_sum for a in attempts) / matched if matched else None,
        "share_above_90": sum(a.matched_above_90 for a in attempts) / matched if matched else None,
        "missed_per_image": sum(a.reference_masks - a.matched for a in attempts) / images
        if images
        else None,
        "extra_per_image": sum(a.attempt_masks - a.matched for a in attempts) / images
        if images
        else None,
        "seconds_per_mask": sum(a.seconds for a in attempts) / drawn if drawn else None,
    }


def _period_start(attempt: QualityAttempt, period: str) -> str:
    day = attempt.completed_at.astimezone(UTC).date()
    if period == "week":  # ISO weeks, named by their Monday
        day -= timedelta(days=day.weekday())
    return day.isoformat()


def annotator_accuracy(dataset: Dataset, period: str = "week") -> dict[str, Any]:
    """Per annotator, their completed ground-truth attempts in ``dataset``: the figures over all
    of them and per ``period`` (day or week, UTC), oldest first."""
    if period not in PERIODS:
        raise InvalidInput(f"period must be one of {', '.join(PERIODS)}", field="period")
    attempts = (
        QualityAttempt.objects.filter(
            dataset=dataset,
            kind=AttemptKind.GROUND_TRUTH,
            completed_at__isnull=False,
            withdrawn_at__isnull=True,
        )
        .select_related("annotator")
        .order_by("completed_at", "pk")
    )
    by_annotator: dict[int, list[QualityAttempt]] = defaultdict(list)
    names: dict[int, str] = {}
    for attempt in attempts:
        by_annotator[attempt.annotator_id].append(attempt)
        names[attempt.annotator_id] = attempt.annotator.get_username()
    annotators = []
    for user_id in sorted(by_annotator, key=lambda pk: names[pk]):
        rows = by_annotator[user_id]
        periods: dict[str, list[QualityAttempt]] = defaultdict(list)
        for attempt in rows:
            periods[_period_start(attempt, period)].append(attempt)
        annotators.append(
            {
                "annotator": user_id,
                "username": names[user_id],
                **_figures(rows),
                "over_time": [{"start": start, **_figures(periods[start])} for start in periods],
            }
        )
    return {"period": period, "annotators": annotators}


def agreement(dataset: Dataset) -> dict[str, Any]:
    """Per stage, the completed second annotations of doubled images matched to the first: how
    many images and matched pairs, the share of pairs at IoU > 0.90 and their mean IoU."""
    attempts = QualityAttempt.objects.filter(
        dataset=dataset, kind=AttemptKind.DOUBLE, completed_at__isnull=False
    ).order_by("pk")
    by_stage: dict[int, list[QualityAttempt]] = defaultdict(list)
    for attempt in attempts:
        by_stage[attempt.stage].append(attempt)
    stages = []
    for stage in sorted(by_stage):
        figures = _figures(by_stage[stage])
        stages.append(
            {
                "stage": stage,
                "label": Stage(stage).label,
                "images": figures["attempts"],
                "first_masks": figures["reference_masks"],
                "second_masks": figures["attempt_masks"],
                "pairs": figures["matched"],
                "pairs_above_90": sum(a.matched_above_90 for a in by_stage[stage]),
                "share_above_90": figures["share_above_90"],
                "mean_iou": figures["mean_iou"],
                "unmatched_first": figures["reference_masks"] - figures["matched"],
                "unmatched_second": figures["attempt_masks"] - figures["matched"],
            }
        )
    return {"stages": stages}
