"""Accepting, correcting and deleting masks. The RLE is checked against its image's size and the
box and area are computed here from it; nothing geometric is taken from the client on trust."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from annotation.models import (
    AnnotatorSession,
    Image,
    Mask,
    MaskPrompt,
    MaskSource,
    PrefillReview,
)
from annotation.services.errors import Conflict, InvalidInput
from annotation.services.labels import KEEP, label_for_mask
from annotation.services.prompts import check_prompts
from engine import rle as rle_codec
from registry.active import get_active_version
from registry.models import ModelVersion

NO_MODEL_SOURCES = (MaskSource.MANUAL, MaskSource.IMPORTED)


def accept_mask(
    image: Image,
    user: AbstractBaseUser,
    *,
    rle: Any,
    source: str,
    client_id: uuid.UUID | None = None,
    model_version: ModelVersion | None = None,
    session: AnnotatorSession | None = None,
    seconds_spent: float = 0.0,
    predicted_iou: float | None = None,
    stability_score: float | None = None,
    point_coords: list[list[float]] | None = None,
    crop_box: list[float] | None = None,
    prompt: dict[str, Any] | None = None,
    label: int | None = None,
) -> tuple[Mask, bool]:
    """Store a mask on ``image``; returns (mask, created).

    With a ``client_id`` already used on this image (a double submission or a retry after a
    network error) the existing mask is returned and nothing is written. Who may create a mask
    of ``source`` is the view's check (access.require_mask_source). ``label`` is the id of a
    label of the image's dataset (labels.label_for_mask), None for a class-agnostic mask.
    """
    existing = mask_with_client_id(image, client_id)
    if existing is not None:
        return existing, False
    _check_source(source)
    rle, bbox, area = mask_geometry(image, rle)
    if source in NO_MODEL_SOURCES:
        if model_version is not None:
            raise InvalidInput(f"a {source} mask has no model version")
    elif model_version is None:
        model_version = get_active_version()
    if session is not None:
        _check_session(session, image, user)
    if prompt is not None:
        check_mask_prompt(image, prompt)
    _check_model_outputs(image, point_coords, crop_box)
    chosen_label = label_for_mask(image.dataset, label) if label is not None else None
    try:
        with transaction.atomic():
            mask = Mask.objects.create(
                image=image,
                rle=rle,
                bbox=bbox,
                area=area,
                source=source,
                stage=image.stage,
                predicted_iou=predicted_iou,
                stability_score=stability_score,
                point_coords=point_coords,
                crop_box=crop_box,
                author=user if user.is_authenticated else None,
                model_version=model_version,
                session=session,
                seconds_spent=seconds_spent,
                client_id=client_id,
                label=chosen_label,
            )
            if prompt is not None:
                MaskPrompt.objects.create(mask=mask, **_prompt_fields(prompt))
            if session is not None:  # the session's count is current before it is finished
                AnnotatorSession.objects.filter(pk=session.pk).update(
                    masks_made=F("masks_made") + 1
                )
    except IntegrityError:
        existing = Mask.objects.filter(image=image, client_id=client_id).first()
        if client_id is None or existing is None:
            raise
        return existing, False
    return mask, True


def mask_with_client_id(image: Image, client_id: uuid.UUID | None) -> Mask | None:
    """The mask already stored on ``image`` under ``client_id`` (a repeated submission)."""
    if client_id is None:
        return None
    return Mask.objects.filter(image=image, client_id=client_id).first()


def update_mask(
    mask: Mask,
    user: AbstractBaseUser,
    *,
    expected_version: int,
    rle: Any = None,
    seconds_spent: float | None = None,
    prompt: dict[str, Any] | None = None,
    label: Any = KEEP,
) -> Mask:
    """Correct a mask (the view has checked ``user`` may: access.require_mask_editor; a
    pre-filled mask records them as its reviewer). ``expected_version`` is the version the editor
    started from: if someone changed the mask since, the edit is refused with 409 (optimistic
    concurrency), so nobody overwrites an edit they never saw. ``label``: a label id of the
    mask's dataset, None to remove the label, KEEP (the default) to leave it."""
    changes: dict[str, Any] = {}
    if label is not KEEP:
        changes["label"] = label_for_mask(mask.image.dataset, label)
    if rle is not None:
        changes["rle"], changes["bbox"], changes["area"] = mask_geometry(mask.image, rle)
        if mask.source == MaskSource.PREFILLED:
            changes["review"], changes["reviewed_by"] = PrefillReview.EDITED, user
    if seconds_spent is not None:
        changes["seconds_spent"] = seconds_spent
    if prompt is not None:
        check_mask_prompt(mask.image, prompt)
    with transaction.atomic():
        _bump_version(mask, expected_version, changes)
        if prompt is not None:
            MaskPrompt.objects.update_or_create(mask=mask, defaults=_prompt_fields(prompt))
    mask.refresh_from_db()
    return mask


def keep_prefilled_mask(mask: Mask, user: AbstractBaseUser, *, expected_version: int) -> Mask:
    """An annotator keeps a mask the model pre-filled as it is: it stays the model's mask and is
    counted as kept, not as drawn by the annotator."""
    check_keepable(mask)
    with transaction.atomic():
        _bump_version(mask, expected_version, {"review": PrefillReview.KEPT, "reviewed_by": user})
    mask.refresh_from_db()
    return mask


def check_keepable(mask: Mask) -> None:
    if mask.source != MaskSource.PREFILLED:
        raise InvalidInput(f"only pre-filled masks are kept; this one is {mask.source!r}")


def _bump_version(mask: Mask, expected_version: int, changes: dict[str, Any]) -> None:
    """One conditional UPDATE: it writes only if the row is still at ``expected_version``, so
    two concurrent edits from the same version cannot both win (the database decides)."""
    written = Mask.objects.filter(pk=mask.pk, version=expected_version).update(
        **changes, version=F("version") + 1, updated_at=timezone.now()
    )
    if written:
        return
    current = Mask.objects.filter(pk=mask.pk).values_list("version", flat=True).first()
    if current is None:
        raise Conflict("the mask was deleted meanwhile")
    raise Conflict(
        f"the mask was changed by someone else (it is at version {current}, the edit started "
        f"from version {expected_version}); reload it and apply the change again",
        current_version=current,
    )


def delete_mask(mask: Mask, *, expected_version: int) -> None:
    """Delete a mask, if it is still at ``expected_version``: like an edit, a delete from a
    client that never saw the latest change is refused with 409 instead of silently removing
    someone else's newer work."""
    with transaction.atomic():
        # The row lock keeps a concurrent edit from landing between the check and the delete.
        row = (
            Mask.objects.select_for_update()
            .filter(pk=mask.pk)
            .values_list("version", "session")
            .first()
        )
        current, session_id = row if row is not None else (None, None)
        if current == expected_version:
            Mask.objects.filter(pk=mask.pk).delete()
            if session_id is not None:
                AnnotatorSession.objects.filter(pk=session_id, masks_made__gt=0).update(
                    masks_made=F("masks_made") - 1
                )
            return
    if current is None:
        raise Conflict("the mask was deleted meanwhile")
    raise Conflict(
        f"the mask was changed by someone else (it is at version {current}, the delete started "
        f"from version {expected_version}); reload it and decide again",
        current_version=current,
    )


def mask_geometry(image: Image, rle: Any) -> tuple[dict[str, Any], list[float], int]:
    """(canonical RLE, box, area) of a mask from outside, checked against its image (so the
    area is at most height x width and the box inside the image); InvalidInput naming what is
    wrong."""
    try:
        valid = rle_codec.checked(rle, expected_size=(image.height, image.width))
    except rle_codec.RLEError as exc:
        raise InvalidInput(f"invalid rle: {exc}") from exc
    if valid.area == 0:
        raise InvalidInput("the mask is empty (no foreground pixel)")
    return valid.rle, valid.bbox, valid.area


def _check_source(source: str) -> None:
    if source not in MaskSource.values:
        raise InvalidInput(f"source must be one of {', '.join(MaskSource.values)}")


def _check_session(session: AnnotatorSession, image: Image, user: AbstractBaseUser) -> None:
    if session.image_id != image.pk or session.annotator_id != user.pk:
        raise InvalidInput("the session is not yours on this image")
    if session.ended_at is not None:
        raise InvalidInput("the session is finished; start a new one")


def _check_model_outputs(
    image: Image, point_coords: list[list[float]] | None, crop_box: list[float] | None
) -> None:
    """The grid point(s) and crop box a model-made mask came from lie in its image (the
    serializer has checked they are finite numbers of the right count)."""
    for i, (x, y) in enumerate(point_coords or []):
        if not (0 <= x <= image.width and 0 <= y <= image.height):
            raise InvalidInput(
                f"point_coords[{i}] ({x}, {y}) is outside the {image.width}x{image.height} image"
            )
    if crop_box is not None:
        x, y, w, h = crop_box
        if not (0 <= x and 0 <= y and 0 < w and 0 < h):
            raise InvalidInput(f"crop_box {crop_box} must be [x, y, w, h] with x, y >= 0, w, h > 0")
        if x + w > image.width or y + h > image.height:
            raise InvalidInput(
                f"crop_box {crop_box} reaches outside the {image.width}x{image.height} image"
            )


def check_mask_prompt(image: Image, prompt: dict[str, Any]) -> None:
    """A saved mask's clicks and box (``{"points", "labels", "box"}``) lie in its image."""
    points: Sequence[Sequence[float]] = prompt.get("points") or []
    labels: Sequence[int] = prompt.get("labels") or []
    check_prompts(image, list(points), list(labels), prompt.get("box"))


def _prompt_fields(prompt: dict[str, Any]) -> dict[str, Any]:
    box = prompt.get("box")
    return {
        "points": [[float(x), float(y)] for x, y in prompt.get("points") or []],
        "labels": [int(label) for label in prompt.get("labels") or []],
        "box": [float(v) for v in box] if box is not None else None,
        "chosen_index": prompt.get("chosen_index"),
    }
