"""The masks an annotator draws in a quality attempt, through the same mask API as any other.

They are stored in their own table (AttemptMask), so the dataset's masks, exports, training,
statistics and tallies never see them. The API shows each as a mask with id
ATTEMPT_MASK_ID_BASE + its row id: the ranges never meet (a dataset would need 2**50 masks), so
an id alone says which table it names, and only the attempt's annotator sees it.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from annotation.models import (
    AnnotatorSession,
    AttemptMask,
    Image,
    Mask,
    QualityAttempt,
)
from annotation.services.errors import Conflict, InvalidInput
from annotation.services.masks import check_mask_prompt, mask_geometry

# Below 2**53, so ids stay exact as JavaScript numbers.
ATTEMPT_MASK_ID_BASE = 2**50


def is_attempt_mask_id(pk: int) -> bool:
    return pk >= ATTEMPT_MASK_ID_BASE


def find_attempt_mask(pk: int, user: AbstractBaseUser) -> AttemptMask | None:
    """The attempt mask shown as ``pk``, if it is in an open attempt of ``user``."""
    if not user.is_authenticated or not is_attempt_mask_id(pk):
        return None
    return (
        AttemptMask.objects.filter(
            pk=pk - ATTEMPT_MASK_ID_BASE,
            attempt__annotator=user,
            attempt__completed_at__isnull=True,
            attempt__released_at__isnull=True,
        )
        .select_related("attempt")
        .first()
    )


def as_mask(row: AttemptMask) -> Mask:
    """The attempt mask as an (unsaved) Mask, for the mask serializer: what the annotator sees is
    shaped like any mask of theirs."""
    mask = Mask(
        id=ATTEMPT_MASK_ID_BASE + row.pk,
        image_id=row.attempt.image_id,
        rle=row.rle,
        bbox=row.bbox,
        area=row.area,
        source=row.source,
        stage=row.attempt.stage,
        author_id=row.attempt.annotator_id,
        seconds_spent=row.seconds_spent,
        client_id=row.client_id,
        version=row.version,
        review="",
    )
    mask.created_at, mask.updated_at = row.created_at, row.updated_at
    # No prompt is kept for an attempt's masks; the serializer then shows none.
    mask._state.fields_cache["prompt"] = None
    return mask


def attempt_masks(attempt: QualityAttempt) -> list[Mask]:
    rows = attempt.masks.select_related("attempt").order_by("pk")
    return [as_mask(row) for row in rows]


def add_attempt_mask(
    attempt: QualityAttempt,
    image: Image,
    user: AbstractBaseUser,
    *,
    rle: Any,
    source: str,
    client_id: uuid.UUID | None = None,
    session: AnnotatorSession | None = None,
    seconds_spent: float = 0.0,
    prompt: dict[str, Any] | None = None,
    **_model_fields: Any,
) -> tuple[Mask, bool]:
    """Store a mask drawn in ``attempt``; (mask as shown, created). The same checks as
    masks.accept_mask (geometry against the image, the session being the user's open one on
    this image, the prompt inside it); a repeated client_id answers the stored mask. The model
    fields of a model-assisted mask (version, scores, grid point) are not kept: the figures
    compare pixels only."""
    if client_id is not None:
        existing = attempt.masks.filter(client_id=client_id).select_related("attempt").first()
        if existing is not None:
            return as_mask(existing), False
    rle, bbox, area = mask_geometry(image, rle)
    if session is not None and (
        session.image_id != image.pk or session.annotator_id != user.pk or session.ended_at
    ):
        raise InvalidInput("the session is not your open session on this image", field="session")
    if prompt is not None:
        check_mask_prompt(image, prompt)
    try:
        with transaction.atomic():
            row = AttemptMask.objects.create(
                attempt=attempt,
                rle=rle,
                bbox=bbox,
                area=area,
                source=source,
                seconds_spent=seconds_spent,
                client_id=client_id,
            )
    except IntegrityError:
        row = attempt.masks.filter(client_id=client_id).first()
        if client_id is None or row is None:
            raise
        return as_mask(row), False
    row.attempt = attempt
    return as_mask(row), True


def replay_closed_attempt_mask(
    attempt: QualityAttempt, client_id: uuid.UUID | None
) -> tuple[Mask, bool]:
    """A save for an attempt that is completed or released: the mask it stored, when it is a
    repeat; else 409, as for any image no longer held."""
    if client_id is not None:
        row = attempt.masks.filter(client_id=client_id).select_related("attempt").first()
        if row is not None:
            return as_mask(row), False
    raise Conflict(f"you no longer hold image {attempt.image_id}, so you cannot add masks to it")


def update_attempt_mask(
    row: AttemptMask,
    *,
    expected_version: int,
    rle: Any = None,
    seconds_spent: float | None = None,
    prompt: dict[str, Any] | None = None,
) -> Mask:
    """Correct an attempt's mask; 409 when it is no longer at ``expected_version``."""
    image = row.attempt.image
    changes: dict[str, Any] = {}
    if rle is not None:
        changes["rle"], changes["bbox"], changes["area"] = mask_geometry(image, rle)
    if seconds_spent is not None:
        changes["seconds_spent"] = seconds_spent
    if prompt is not None:
        check_mask_prompt(image, prompt)
    written = AttemptMask.objects.filter(pk=row.pk, version=expected_version).update(
        **changes, version=F("version") + 1, updated_at=timezone.now()
    )
    if not written:
        _stale(row, expected_version, "edit")
    row.refresh_from_db()
    return as_mask(row)


def delete_attempt_mask(row: AttemptMask, *, expected_version: int) -> None:
    deleted, _ = AttemptMask.objects.filter(pk=row.pk, version=expected_version).delete()
    if not deleted:
        _stale(row, expected_version, "delete")


def _stale(row: AttemptMask, expected_version: int, action: str) -> None:
    current = AttemptMask.objects.filter(pk=row.pk).values_list("version", flat=True).first()
    if current is None:
        raise Conflict("the mask was deleted meanwhile")
    raise Conflict(
        f"the mask was changed meanwhile (it is at version {current}, the {action} started from "
        f"version {expected_version}); reload it and apply the change again",
        current_version=current,
    )
