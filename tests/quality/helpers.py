"""Setting up quality checks in tests."""

from __future__ import annotations

from annotation.models import AnnotatorDraw, DatasetQualitySettings
from annotation.services.quality_claims import draws_ground_truth


def set_shares(dataset, ground_truth: float = 0.0, double: float = 0.0) -> None:
    DatasetQualitySettings.objects.update_or_create(
        dataset=dataset, defaults={"ground_truth_share": ground_truth, "double_share": double}
    )


def next_claim_draws(dataset, user, share: float, ground_truth: bool = True) -> int:
    """Set the annotator's count of hand-outs to the first at which the draw gives (or does not
    give) a ground-truth image; returns that count."""
    n = 0
    while draws_ground_truth(dataset.pk, user.pk, n, share) != ground_truth:
        n += 1
    AnnotatorDraw.objects.update_or_create(dataset=dataset, annotator=user, defaults={"claims": n})
    return n
