"""Handing out images: holds, release, completion, and moving images between stages.

A hold gives one annotator one image for settings.IMAGE_HOLD_SECONDS (heartbeats of their
session extend it); an expired hold counts as free. Claiming locks candidate rows with
SELECT ... FOR UPDATE SKIP LOCKED on PostgreSQL; SQLite serialises the write transactions
(transaction_mode IMMEDIATE), and a conditional UPDATE guards both.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from annotation.models import AnnotatorSession, Dataset, Image, ImageStatus, Stage
from annotation.services import quality_claims
from annotation.services.access import can_administer
from annotation.services.audits import audit_held_images
from annotation.services.errors import Conflict, InvalidInput
from annotation.services.heldout import queue_order

CLAIM_ATTEMPTS = 5


def hold_deadline():
    return timezone.now() + timedelta(seconds=settings.IMAGE_HOLD_SECONDS)


def claim_next_image(dataset: Dataset, user: AbstractBaseUser, stage: int) -> Image | None:
    """The image ``user`` holds in ``stage`` if any (its hold renewed), else the next pending
    image in ``stage`` nobody holds (oldest first, held-out candidates after the first few:
    annotation.services.heldout), now held by ``user``; None when there is none.

    With the dataset's quality checks on, an open attempt of ``user`` comes first, and a new
    hand-out may be a ground-truth image or a doubled one (annotation.services.quality_claims).
    """
    stage = check_stage(stage)
    checks = quality_claims.active_settings(dataset)
    if checks is not None:
        resumed = quality_claims.resume_attempt(dataset, user, stage)
        if resumed is not None:
            return resumed
        holds = Image.objects.filter(
            dataset=dataset,
            stage=stage,
            status=ImageStatus.PENDING,
            held_by=user,
            held_until__gt=timezone.now(),
        )
        if not holds.exists():
            drawn = quality_claims.draw_attempt(dataset, user, stage, checks)
            if drawn is not None:
                return drawn
    for _ in range(CLAIM_ATTEMPTS):
        with transaction.atomic():
            now = timezone.now()
            pending = Image.objects.filter(dataset=dataset, stage=stage, status=ImageStatus.PENDING)
            mine = pending.filter(held_by=user, held_until__gt=now).order_by("created_at", "pk")
            image = mine.first()
            if image is None:
                free = pending.filter(Q(held_by__isnull=True) | Q(held_until__lte=now))
                # An open audit's images are the reviewers' until reviewed (one held already
                # by an annotator stays theirs: the audit does not take work in progress).
                free = free.exclude(pk__in=audit_held_images())
                candidates = queue_order(dataset, free)
                if connection.features.has_select_for_update_skip_locked:
                    candidates = candidates.select_for_update(skip_locked=True)
                image = candidates.first()
                if image is None:
                    return None
                claimed = free.filter(pk=image.pk)
            else:
                claimed = mine.filter(pk=image.pk)
            until = hold_deadline()
            if claimed.update(held_by=user, held_until=until) == 1:
                image.held_by, image.held_until = user, until
                return image
    raise Conflict("too many annotators are claiming images at once; try again")


def release_image(image: Image, user: AbstractBaseUser, *, skip: bool = False) -> Image:
    """Give an image back. With ``skip`` it is set aside (status skipped) so it is not handed out
    again until an admin moves it; otherwise it goes back to the pending pool."""
    attempt = quality_claims.open_attempt(image, user)
    if attempt is not None:
        image = quality_claims.release_attempt(attempt, image)
        if skip:
            image.status = ImageStatus.SKIPPED
        return image
    _check_holder(image, user, "release")
    fields = {"held_by": None, "held_until": None}
    if skip:
        fields["status"] = ImageStatus.SKIPPED
    Image.objects.filter(pk=image.pk).update(**fields)
    image.refresh_from_db()
    return image


def complete_image(image: Image, user: AbstractBaseUser) -> Image:
    """Mark an image done in its stage and release it. Completing again an image that is done
    and that ``user`` annotated (a session of theirs on it) answers the image unchanged: a
    repeated Done (double click, retry after a lost answer) is no error and changes nothing.
    Completing a quality attempt records its figures and leaves the image row as it is."""
    attempt = quality_claims.open_attempt(image, user)
    if attempt is not None:
        return quality_claims.complete_attempt(attempt, image)
    if (
        image.status == ImageStatus.DONE
        and image.held_by_id is None
        and AnnotatorSession.objects.filter(image=image, annotator=user).exists()
    ):
        return image
    _check_holder(image, user, "complete")
    Image.objects.filter(pk=image.pk).update(status=ImageStatus.DONE, held_by=None, held_until=None)
    image.refresh_from_db()
    quality_claims.offer_double(image, user)
    return image


def extend_hold(image: Image, user: AbstractBaseUser) -> bool:
    """Renew ``user``'s hold on ``image`` (heartbeats); False if the user no longer holds it."""
    return (
        Image.objects.filter(pk=image.pk, held_by=user, held_until__gt=timezone.now()).update(
            held_until=hold_deadline()
        )
        == 1
    )


def expire_holds() -> int:
    """Clear the holds that have expired (bookkeeping: an expired hold is free anyway)."""
    return Image.objects.filter(held_until__lte=timezone.now()).update(
        held_by=None, held_until=None
    )


def change_stage(
    dataset: Dataset, image_ids: Iterable[int], stage: int, status: str = ImageStatus.PENDING
) -> int:
    """Move images of ``dataset`` to ``stage`` (with ``status``, pending by default), dropping
    their holds. All or nothing: an id not in the dataset rejects the whole request."""
    stage = check_stage(stage)
    if status not in ImageStatus.values:
        raise InvalidInput(f"status must be one of {', '.join(ImageStatus.values)}")
    ids = sorted(set(image_ids))
    if not ids:
        raise InvalidInput("give at least one image id")
    with transaction.atomic():
        found = set(Image.objects.filter(dataset=dataset, pk__in=ids).values_list("pk", flat=True))
        missing = [pk for pk in ids if pk not in found]
        if missing:
            raise InvalidInput(
                f"images {missing[:20]} are not in dataset {dataset.name!r}", missing=missing
            )
        return Image.objects.filter(pk__in=ids).update(
            stage=stage, status=status, held_by=None, held_until=None
        )


def images_in_stage(dataset: Dataset, stage: object, status: str | None = None) -> list[int]:
    """The ids of ``dataset``'s images in ``stage`` (with ``status``, when given): a bulk move's
    selection by filter. InvalidInput when there is none, so a move never silently does
    nothing."""
    stage = check_stage(stage)
    images = Image.objects.filter(dataset=dataset, stage=stage)
    if status is not None:
        images = images.filter(status=status)
    ids = list(images.order_by("pk").values_list("pk", flat=True))
    if not ids:
        which = f"{status} image" if status else "image"
        raise InvalidInput(f"dataset {dataset.name!r} has no {which} in stage {stage}")
    return ids


def check_stage(stage: object) -> int:
    try:
        value = int(stage)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        value = 0
    if value not in Stage.values:
        raise InvalidInput(
            "stage must be 1 (assisted-manual), 2 (semi-automatic) or 3 (fully automatic), "
            f"got {stage!r}"
        )
    return value


def _check_holder(image: Image, user: AbstractBaseUser, action: str) -> None:
    holds = image.held_by_id == user.pk and image.held_until and image.held_until > timezone.now()
    if not holds and not can_administer(user, image.dataset):
        raise Conflict(f"you do not hold image {image.pk}, so you cannot {action} it")
