"""Handing out quality checks inside an annotator's ordinary queue, and finishing them.

When a dataset's settings ask for it, a claim (annotation.services.image_holds) may hand an
annotator a ground-truth image they have not done, or a done image that waits for its second
annotator. Either is an attempt (QualityAttempt): the image row itself is neither held nor
changed, and the API shows the attempt's annotator the image as pending and held by them
(``present``), exactly like any other. Whether a claim is a ground-truth one is decided by a
hash of (dataset, annotator, how many images they were handed), so it is reproducible; which
images are doubled, by a hash of the image id.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from annotation.models import (
    AnnotatorDraw,
    AnnotatorSession,
    AttemptKind,
    Dataset,
    DatasetQualitySettings,
    GroundTruthImage,
    Image,
    ImageStatus,
    Mask,
    QualityAttempt,
)
from annotation.services.matching import match_masks


def active_settings(dataset: Dataset) -> DatasetQualitySettings | None:
    """The dataset's quality settings when any share is above 0, else None (no check runs and a
    claim is exactly what it was before quality control existed)."""
    row = DatasetQualitySettings.objects.filter(dataset=dataset).first()
    if row is None or (row.ground_truth_share <= 0 and row.double_share <= 0):
        return None
    return row


def unit_hash(text: str) -> float:
    """A number in [0, 1) fixed by ``text``: the draws' reproducible coin."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2.0**64


def draws_ground_truth(dataset_id: int, user_id: int, claims: int, share: float) -> bool:
    return unit_hash(f"ground-truth:{dataset_id}:{user_id}:{claims}") < share


def is_doubled(image_id: int, share: float) -> bool:
    return unit_hash(f"double:{image_id}") < share


def open_attempt(image: Image, user: AbstractBaseUser) -> QualityAttempt | None:
    if not user.is_authenticated:
        return None
    return QualityAttempt.objects.filter(
        image_id=image.pk, annotator=user, completed_at__isnull=True, released_at__isnull=True
    ).first()


def closed_attempt(image: Image, user: AbstractBaseUser) -> QualityAttempt | None:
    """``user``'s completed or released attempt on ``image``: a save arriving late for it must
    not land among the dataset's masks."""
    if not user.is_authenticated:
        return None
    return (
        QualityAttempt.objects.filter(image_id=image.pk, annotator=user)
        .exclude(completed_at__isnull=True, released_at__isnull=True)
        .first()
    )


def present(image: Image, user: AbstractBaseUser) -> Image:
    """``image`` as ``user`` should see it: pending and held by them while they have an open
    attempt on it (in memory only; the row is untouched), else as it is."""
    if open_attempt(image, user) is not None:
        _show_held(image, user)
    return image


def present_all(images: list[Image], user: AbstractBaseUser) -> list[Image]:
    """``present`` for a page of images, in one query: a list must not show done what the
    image's own endpoint shows pending and held (which would tell the annotator it is a check)."""
    if not user.is_authenticated or not images:
        return images
    checks = set(
        QualityAttempt.objects.filter(
            image_id__in=[image.pk for image in images],
            annotator=user,
            completed_at__isnull=True,
            released_at__isnull=True,
        ).values_list("image_id", flat=True)
    )
    for image in images:
        if image.pk in checks:
            _show_held(image, user)
    return images


def _show_held(image: Image, user: AbstractBaseUser) -> Image:
    image.status = ImageStatus.PENDING
    image.held_by = user
    image.held_until = timezone.now() + timedelta(seconds=settings.IMAGE_HOLD_SECONDS)
    return image


def resume_attempt(dataset: Dataset, user: AbstractBaseUser, stage: int) -> Image | None:
    """The image of ``user``'s open attempt in ``stage``, if any (a reloaded page)."""
    attempt = (
        QualityAttempt.objects.filter(
            dataset=dataset,
            annotator=user,
            stage=stage,
            completed_at__isnull=True,
            released_at__isnull=True,
        )
        .select_related("image")
        .order_by("started_at", "pk")
        .first()
    )
    return _show_held(attempt.image, user) if attempt is not None else None


def draw_attempt(
    dataset: Dataset, user: AbstractBaseUser, stage: int, checks: DatasetQualitySettings
) -> Image | None:
    """Count this hand-out and, when the draw says so, start a ground-truth attempt; else take a
    doubled image waiting for its second annotator. None: the claim goes on as usual."""
    draw, _ = AnnotatorDraw.objects.get_or_create(dataset=dataset, annotator=user)
    AnnotatorDraw.objects.filter(pk=draw.pk).update(claims=F("claims") + 1)
    if checks.ground_truth_share > 0 and draws_ground_truth(
        dataset.pk, user.pk, draw.claims, checks.ground_truth_share
    ):
        image = _start_ground_truth(dataset, user, stage)
        if image is not None:
            return image
    if checks.double_share > 0:
        return _take_double(dataset, user, stage)
    return None


def _start_ground_truth(dataset: Dataset, user: AbstractBaseUser, stage: int) -> Image | None:
    done = QualityAttempt.objects.filter(annotator=user).values("image")
    truth = (
        GroundTruthImage.objects.filter(image__dataset=dataset, image__stage=stage)
        .exclude(image__in=done)
        .select_related("image")
        .order_by("marked_at", "pk")
        .first()
    )
    if truth is None:
        return None
    try:
        with transaction.atomic():
            QualityAttempt.objects.create(
                kind=AttemptKind.GROUND_TRUTH,
                dataset=dataset,
                image=truth.image,
                annotator=user,
                stage=stage,
            )
    except IntegrityError:  # the same annotator's concurrent claim started it
        return None
    return _show_held(truth.image, user)


def release_abandoned_doubles(dataset: Dataset, stage: int) -> int:
    """Second annotations left open longer than an image hold without a sign of life (the
    annotator's last session heartbeat on the image, or the attempt's start) are released, so a
    closed tab or a vanished annotator never keeps a doubled image from everyone else, as an
    expired hold does for ordinary images. Returns how many were released."""
    stale_before = timezone.now() - timedelta(seconds=settings.IMAGE_HOLD_SECONDS)
    heartbeat = (
        AnnotatorSession.objects.filter(image=OuterRef("image"), annotator=OuterRef("annotator"))
        .order_by("-last_heartbeat_at")
        .values("last_heartbeat_at")[:1]
    )
    abandoned = (
        QualityAttempt.objects.filter(
            dataset=dataset,
            kind=AttemptKind.DOUBLE,
            stage=stage,
            annotator__isnull=False,
            completed_at__isnull=True,
            released_at__isnull=True,
        )
        .annotate(alive=Coalesce(Subquery(heartbeat), F("started_at")))
        .filter(alive__lt=stale_before)
        .select_related("image")
    )
    released = 0
    for attempt in abandoned[:100]:
        release_attempt(attempt, attempt.image)
        released += 1
    return released


def _take_double(dataset: Dataset, user: AbstractBaseUser, stage: int) -> Image | None:
    release_abandoned_doubles(dataset, stage)
    waiting = QualityAttempt.objects.filter(
        dataset=dataset,
        kind=AttemptKind.DOUBLE,
        annotator__isnull=True,
        stage=stage,
        image__stage=stage,
        image__status=ImageStatus.DONE,
        image__ground_truth__isnull=True,  # marked as truth after it was doubled
    ).exclude(first_annotator=user)
    # Not an image this annotator had before (a released attempt stays theirs).
    waiting = waiting.exclude(
        image__in=QualityAttempt.objects.filter(annotator=user).values("image")
    )
    for slot in waiting.select_related("image").order_by("pk")[:5]:
        # A conditional update: of two annotators taking the same slot, one wins.
        taken = QualityAttempt.objects.filter(pk=slot.pk, annotator__isnull=True).update(
            annotator=user, started_at=timezone.now()
        )
        if taken == 1:
            return _show_held(slot.image, user)
    return None


def offer_double(image: Image, user: AbstractBaseUser) -> None:
    """After ``user`` completed ``image`` as ordinary work: when the dataset doubles this image,
    it waits for a second annotator (an attempt without one yet)."""
    checks = active_settings(image.dataset)
    if checks is None or checks.double_share <= 0 or not is_doubled(image.pk, checks.double_share):
        return
    if GroundTruthImage.objects.filter(image_id=image.pk).exists():
        return
    with transaction.atomic():
        QualityAttempt.objects.get_or_create(
            image=image,
            kind=AttemptKind.DOUBLE,
            defaults={
                "dataset_id": image.dataset_id,
                "stage": image.stage,
                "first_annotator": user if user.is_authenticated else None,
            },
        )


def complete_attempt(attempt: QualityAttempt, image: Image) -> Image:
    """Finish an attempt: its masks matched to the truth (ground truth) or to the dataset's masks
    of the image in its stage (double), the figures recorded. The image is shown done."""
    with transaction.atomic():
        attempt = QualityAttempt.objects.select_for_update().get(pk=attempt.pk)
        if attempt.completed_at is None:
            drawn = list(attempt.masks.order_by("pk").values_list("rle", "seconds_spent"))
            result = match_masks(_reference_rles(attempt), [rle for rle, _ in drawn])
            attempt.reference_masks = result.reference_count
            attempt.attempt_masks = result.candidate_count
            attempt.matched = result.matched
            attempt.matched_above_90 = result.above_90
            attempt.iou_sum = result.iou_sum
            attempt.seconds = float(sum(seconds for _, seconds in drawn))
            attempt.completed_at = timezone.now()
            attempt.save()
    image.status, image.held_by, image.held_until = ImageStatus.DONE, None, None
    return image


def _reference_rles(attempt: QualityAttempt) -> list[object]:
    if attempt.kind == AttemptKind.GROUND_TRUTH:
        truth = GroundTruthImage.objects.get(image_id=attempt.image_id)
        return list(truth.masks.order_by("pk").values_list("rle", flat=True))
    masks = Mask.objects.filter(image_id=attempt.image_id, stage=attempt.stage)
    return list(masks.order_by("pk").values_list("rle", flat=True))


def release_attempt(attempt: QualityAttempt, image: Image) -> Image:
    """The annotator gives the image back (or skips it). The attempt is kept as released (with
    its masks, out of every figure), so a late save for it is refused rather than stored among
    the dataset's masks, and the annotator is not handed this image again; a doubled image
    waits for another second annotator. The image's own status does not change; it is shown
    as the annotator would see a released one."""
    with transaction.atomic():
        released = QualityAttempt.objects.filter(
            pk=attempt.pk, completed_at__isnull=True, released_at__isnull=True
        ).update(released_at=timezone.now())
        if released and attempt.kind == AttemptKind.DOUBLE:
            QualityAttempt.objects.create(
                kind=AttemptKind.DOUBLE,
                dataset_id=attempt.dataset_id,
                image_id=attempt.image_id,
                stage=attempt.stage,
                first_annotator_id=attempt.first_annotator_id,
            )
    image.status, image.held_by, image.held_until = ImageStatus.PENDING, None, None
    return image


def attempt_sessions_filter() -> Q:
    """Sessions spent on attempts (statistics of the dataset's own work leave them out)."""
    return Q(
        Exists(
            QualityAttempt.objects.filter(image=OuterRef("image"), annotator=OuterRef("annotator"))
        )
    )
