"""Annotator sessions through the API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from annotation.models import AnnotatorSession

pytestmark = pytest.mark.django_db


def test_start_heartbeat_finish(annotator_client, image):
    started = annotator_client.post("/api/sessions/", {"image": image.pk}, format="json")
    again = annotator_client.post("/api/sessions/", {"image": image.pk}, format="json")
    session_id = started.json()["id"]
    AnnotatorSession.objects.filter(pk=session_id).update(
        last_heartbeat_at=timezone.now() - timedelta(seconds=10)
    )

    beat = annotator_client.post(f"/api/sessions/{session_id}/heartbeat/", {"active_seconds": 4})
    finished = annotator_client.post(f"/api/sessions/{session_id}/finish/")
    late = annotator_client.post(f"/api/sessions/{session_id}/heartbeat/")

    assert started.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == session_id
    assert beat.json()["active_seconds"] == pytest.approx(4)
    assert finished.json()["ended_at"] is not None and finished.json()["masks_made"] == 0
    assert late.status_code == 409 and "finished" in late.json()["detail"]


def test_session_for_an_unknown_image_is_a_404(annotator_client):
    assert annotator_client.post("/api/sessions/", {"image": 424242}).status_code == 404


def test_negative_active_seconds_is_a_400(annotator_client, image):
    session = annotator_client.post("/api/sessions/", {"image": image.pk}).json()

    response = annotator_client.post(
        f"/api/sessions/{session['id']}/heartbeat/", {"active_seconds": -5}
    )

    assert response.status_code == 400 and "active_seconds" in response.json()


def test_annotators_list_only_their_own_sessions(annotator_client, client_for, dataset, image):
    from tests import factories

    colleague = factories.make_user("col")
    dataset.memberships.create(user=colleague)
    client_for(colleague).post("/api/sessions/", {"image": image.pk})
    annotator_client.post("/api/sessions/", {"image": image.pk})

    listed = annotator_client.get("/api/sessions/").json()

    assert listed["count"] == 1


def test_dataset_admins_see_every_session_of_their_dataset(
    annotator_client, client_for, dataset_admin, image
):
    annotator_client.post("/api/sessions/", {"image": image.pk})

    assert client_for(dataset_admin).get("/api/sessions/").json()["count"] == 1
