"""Annotator sessions: one open per annotator and image, bounded active time."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from annotation.models import AnnotatorSession, Image, Mask
from annotation.services.errors import Conflict, InvalidInput
from annotation.services.image_holds import claim_next_image
from annotation.services.masks import accept_mask
from annotation.services.sessions import (
    HEARTBEAT_MAX_SECONDS,
    finish_session,
    heartbeat_session,
    start_session,
)
from tests import factories

pytestmark = pytest.mark.django_db


def age(session: AnnotatorSession, seconds: float) -> None:
    """Pretend the last heartbeat was ``seconds`` ago."""
    AnnotatorSession.objects.filter(pk=session.pk).update(
        last_heartbeat_at=timezone.now() - timedelta(seconds=seconds)
    )


def test_start_opens_one_session_and_returns_it_again(image, annotator):
    session, created = start_session(image, annotator)
    again, created_again = start_session(image, annotator)

    assert created and not created_again and again.pk == session.pk
    assert session.stage == image.stage and session.ended_at is None


def test_the_database_refuses_a_second_open_session(image, annotator):
    start_session(image, annotator)

    with pytest.raises(IntegrityError), transaction.atomic():
        AnnotatorSession.objects.create(
            annotator=annotator, image=image, stage=1, last_heartbeat_at=timezone.now()
        )


def test_a_finished_session_allows_a_new_one(image, annotator):
    session, _ = start_session(image, annotator)
    finish_session(session)

    new, created = start_session(image, annotator)

    assert created and new.pk != session.pk


def test_heartbeat_adds_the_time_since_the_last_one(image, annotator):
    session, _ = start_session(image, annotator)
    age(session, 20)

    session = heartbeat_session(session, annotator)

    assert 19 <= session.active_seconds <= 22


def test_an_idle_pause_counts_at_most_the_cap(image, annotator):
    session, _ = start_session(image, annotator)
    age(session, 3600)

    session = heartbeat_session(session, annotator)

    assert session.active_seconds == pytest.approx(HEARTBEAT_MAX_SECONDS)


def test_client_reported_activity_can_only_lower_the_count(image, annotator):
    session, _ = start_session(image, annotator)
    age(session, 30)
    session = heartbeat_session(session, annotator, active_seconds=5)
    assert session.active_seconds == pytest.approx(5)

    age(session, 10)
    session = heartbeat_session(session, annotator, active_seconds=500)
    assert 14 <= session.active_seconds <= 16


def test_negative_activity_is_refused(image, annotator):
    session, _ = start_session(image, annotator)
    with pytest.raises(InvalidInput):
        heartbeat_session(session, annotator, active_seconds=-1)


def test_heartbeat_extends_the_hold_on_the_image(dataset, image, annotator):
    claim_next_image(dataset, annotator, 1)
    soon = timezone.now() + timedelta(seconds=5)
    Image.objects.filter(pk=image.pk).update(held_until=soon)
    session, _ = start_session(image, annotator)

    heartbeat_session(session, annotator)

    image.refresh_from_db()
    assert image.held_until > soon + timedelta(seconds=60)


def test_finish_records_end_time_and_masks_made(image, annotator, tiny_model):
    session, _ = start_session(image, annotator)
    for box in [(0, 0, 10, 10), (20, 20, 30, 30)]:
        accept_mask(
            image, annotator, rle=factories.rect_rle(image, *box), source="manual", session=session
        )
    age(session, 10)

    session = finish_session(session)

    assert session.ended_at is not None and session.masks_made == 2
    assert 9 <= session.active_seconds <= 12
    assert finish_session(session).ended_at == session.ended_at  # idempotent


def test_heartbeat_on_a_finished_session_is_a_conflict(image, annotator):
    session, _ = start_session(image, annotator)
    finish_session(session)

    with pytest.raises(Conflict, match="finished"):
        heartbeat_session(session, annotator)


def test_only_the_annotator_may_heartbeat_or_finish(image, annotator, dataset_admin, client_for):
    session, _ = start_session(image, annotator)
    admin = client_for(dataset_admin)  # sees the session (their dataset's), may not drive it

    for action in ("heartbeat", "finish"):
        answer = admin.post(f"/api/sessions/{session.pk}/{action}/", {}, format="json")
        assert answer.status_code == 403 and "annotator may" in answer.json()["detail"]
    session.refresh_from_db()
    assert session.ended_at is None


@pytest.mark.parametrize("call", [heartbeat_session, finish_session], ids=["heartbeat", "finish"])
def test_a_session_deleted_meanwhile_is_gone_not_a_crash(image, annotator, call):
    from annotation.services.errors import Gone

    claim_next_image(image.dataset, annotator, image.stage)
    session, _ = start_session(image, annotator)
    AnnotatorSession.objects.filter(pk=session.pk).delete()  # e.g. its image deleted meanwhile

    args = (session, annotator) if call is heartbeat_session else (session,)
    with pytest.raises(Gone, match=f"session {session.pk} no longer exists") as error:
        call(*args, active_seconds=1.0)
    assert error.value.status_code == 404


def test_today_counts_the_annotators_own_work_from_the_database(image, annotator, tiny_model):
    from annotation.services.image_holds import complete_image
    from annotation.services.masks import delete_mask
    from annotation.services.sessions import annotator_today

    other = factories.make_user("other")
    claim_next_image(image.dataset, annotator, image.stage)
    session, _ = start_session(image, annotator)
    masks = [
        accept_mask(
            image,
            annotator,
            rle=factories.rect_rle(image, 2 + 10 * i, 2, 8 + 10 * i, 9),
            source="manual",
            session=session,
            seconds_spent=seconds,
        )[0]
        for i, seconds in enumerate([4.0, 6.0, 0.0])
    ]
    accept_mask(image, other, rle=factories.rect_rle(image, 30, 30, 40, 40), source="manual")
    old = masks[0]
    Mask.objects.filter(pk=masks[1].pk).update(created_at=timezone.now() - timedelta(days=2))
    delete_mask(old, expected_version=old.version)  # a deleted mask no longer counts

    before = annotator_today(annotator)
    image.refresh_from_db()  # held by the annotator since the claim
    complete_image(image, annotator)
    finish_session(session)
    image.refresh_from_db()
    complete_image(image, annotator)  # a repeated Done counts the image once
    after = annotator_today(annotator)

    assert before == {
        "day": timezone.now().date().isoformat(),
        "masks": 1,
        "timed_masks": 0,
        "seconds": 0.0,
        "images": 0,
    }
    assert after["images"] == 1 and after["masks"] == 1
    assert annotator_today(other)["masks"] == 1 and annotator_today(other)["images"] == 0
