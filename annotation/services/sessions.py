"""Annotator sessions: how long one annotator actively worked on one image.

Active time only grows through heartbeats, and one heartbeat adds at most the time since the
previous one, capped at HEARTBEAT_MAX_SECONDS: a tab left open over lunch does not count.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from annotation.models import AnnotatorSession, Image, ImageStatus, Mask
from annotation.services.errors import Conflict, Gone, InvalidInput
from annotation.services.image_holds import extend_hold

HEARTBEAT_MAX_SECONDS = 60.0


def start_session(image: Image, user: AbstractBaseUser) -> tuple[AnnotatorSession, bool]:
    """Open a session of ``user`` on ``image``; returns (session, created). An open session of
    the same annotator on the same image is returned as it is (a reloaded page)."""
    open_session = _open_session(image, user)
    if open_session is not None:
        return open_session, False
    try:
        with transaction.atomic():
            session = AnnotatorSession.objects.create(
                annotator=user, image=image, stage=image.stage, last_heartbeat_at=timezone.now()
            )
    except IntegrityError:
        # A concurrent start won the one-open-session constraint.
        session = _open_session(image, user)
        if session is None:
            raise
        return session, False
    return session, True


def heartbeat_session(
    session: AnnotatorSession, user: AbstractBaseUser, active_seconds: float | None = None
) -> AnnotatorSession:
    """Count active time and renew the annotator's hold on the image.

    ``active_seconds`` is what the client saw as active since its last heartbeat; the server
    adds no more than the time since the previous heartbeat, capped at HEARTBEAT_MAX_SECONDS.
    """
    with transaction.atomic():
        session = _locked(session)
        if session.ended_at is not None:
            raise Conflict(f"session {session.pk} is finished; start a new one")
        _add_active_time(session, active_seconds)
        session.save(update_fields=["active_seconds", "last_heartbeat_at"])
    extend_hold(session.image, user)
    return session


def _locked(session: AnnotatorSession) -> AnnotatorSession:
    """The session's row, locked for this transaction; Gone when it was deleted meanwhile (its
    image or dataset deleted while the annotator's heartbeat was on its way)."""
    locked = AnnotatorSession.objects.select_for_update().filter(pk=session.pk).first()
    if locked is None:
        raise Gone(f"session {session.pk} no longer exists (its image was deleted)")
    return locked


def finish_session(
    session: AnnotatorSession, active_seconds: float | None = None
) -> AnnotatorSession:
    """Close the session: a last bounded heartbeat, the end time and the masks made in it.
    Finishing a finished session returns it unchanged."""
    with transaction.atomic():
        session = _locked(session)
        if session.ended_at is not None:
            return session
        _add_active_time(session, active_seconds)
        session.ended_at = session.last_heartbeat_at
        session.masks_made = session.masks.count()
        session.save(
            update_fields=["active_seconds", "last_heartbeat_at", "ended_at", "masks_made"]
        )
    return session


def _add_active_time(session: AnnotatorSession, active_seconds: float | None) -> None:
    if active_seconds is not None and active_seconds < 0:
        raise InvalidInput("active_seconds cannot be negative")
    now = timezone.now()
    elapsed = max(0.0, (now - session.last_heartbeat_at).total_seconds())
    added = min(elapsed, HEARTBEAT_MAX_SECONDS)
    if active_seconds is not None:
        added = min(added, active_seconds)
    session.active_seconds += added
    session.last_heartbeat_at = now


def _open_session(image: Image, user: AbstractBaseUser) -> AnnotatorSession | None:
    return AnnotatorSession.objects.filter(
        image=image, annotator=user, ended_at__isnull=True
    ).first()


def annotator_today(user: AbstractBaseUser) -> dict[str, Any]:
    """What ``user`` did today (UTC day), from the database, in every tab and browser: the masks
    they made that still exist, the seconds spent on those with a recorded time, and the images
    they finished (a session of theirs ended today on an image that is done)."""
    now = timezone.now()
    start = datetime.combine(now.astimezone(UTC).date(), time.min, tzinfo=UTC)
    masks = Mask.objects.filter(author=user, created_at__gte=start).aggregate(
        masks=Count("id"),
        timed=Count("id", filter=Q(seconds_spent__gt=0)),
        seconds=Sum("seconds_spent", filter=Q(seconds_spent__gt=0)),
    )
    images = (
        AnnotatorSession.objects.filter(
            annotator=user, ended_at__gte=start, image__status=ImageStatus.DONE
        )
        .values("image")
        .distinct()
        .count()
    )
    return {
        "day": start.date().isoformat(),
        "masks": masks["masks"],
        "timed_masks": masks["timed"],
        "seconds": float(masks["seconds"] or 0.0),
        "images": images,
    }
