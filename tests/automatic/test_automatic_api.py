"""The automatic pass endpoints: who may launch and see passes, progress in the answers, and
bad requests answered 400 with a message that says what is wrong."""

from __future__ import annotations

import pytest

from annotation.models import AutomaticPass
from annotation.services import automatic
from tests import factories
from tests.automatic.conftest import RELAXED

pytestmark = pytest.mark.django_db

ANON = (401, 403)


@pytest.fixture
def a_pass(dataset, dataset_admin, stage3_images) -> AutomaticPass:
    return automatic.launch_automatic_pass(dataset, dataset_admin, "automatic", config=RELAXED)


def launch_url(dataset) -> str:
    return f"/api/datasets/{dataset.pk}/automatic-passes/"


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        (None, ANON),
        ("annotator", (403,)),
        ("outsider", (404,)),
        ("dataset_admin", (202,)),
        ("admin_user", (202,)),
    ],
)
def test_only_dataset_admins_launch_a_pass(
    who, expected, request, client_for, dataset, stage3_images, other_dataset
):
    user = request.getfixturevalue(who) if who else None
    answer = client_for(user).post(launch_url(dataset), {"config": RELAXED}, format="json")
    assert answer.status_code in expected, answer.content
    assert AutomaticPass.objects.exists() == (expected == (202,))


@pytest.mark.parametrize(
    ("who", "detail", "listed"),
    [
        ("annotator", 404, 0),
        ("outsider", 404, 0),
        ("dataset_admin", 200, 1),
        ("admin_user", 200, 1),
    ],
)
def test_passes_are_seen_by_the_admins_of_their_dataset(
    who, detail, listed, request, client_for, a_pass, other_dataset
):
    user = request.getfixturevalue(who)
    client = client_for(user)
    assert client.get(f"/api/automatic-passes/{a_pass.pk}/").status_code == detail
    answer = client.get("/api/automatic-passes/")
    assert answer.status_code == 200 and answer.json()["count"] == listed
    on_dataset = client.get(launch_url(a_pass.dataset))
    assert on_dataset.status_code == (200 if listed else 403 if who == "annotator" else 404)
    assert client.post(f"/api/automatic-passes/{a_pass.pk}/cancel/").status_code == detail


def test_anonymous_sees_no_pass(anon_client, a_pass):
    assert anon_client.get("/api/automatic-passes/").status_code in ANON
    assert anon_client.get(f"/api/automatic-passes/{a_pass.pk}/").status_code in ANON
    assert anon_client.get(launch_url(a_pass.dataset)).status_code in ANON


def test_launch_answers_202_and_progress_shows_in_the_pass(
    client_for, dataset_admin, dataset, stage3_images, django_capture_on_commit_callbacks
):
    client = client_for(dataset_admin)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        answer = client.post(launch_url(dataset), {"config": RELAXED}, format="json")
    assert answer.status_code == 202, answer.content
    body = answer.json()
    assert (body["status"], body["kind"], body["stage"]) == ("queued", "automatic", 3)
    assert (body["total_images"], body["done_images"], body["mask_count"]) == (2, 0, 0)
    assert len(queued) == 1, "the pass is queued once its row is committed"

    queued[0]()  # what the broker would deliver: the fan-out, then each image (eager here)
    done = client.get(f"/api/automatic-passes/{body['id']}/").json()
    assert (done["status"], done["done_images"], done["failed_images"]) == ("done", 2, 0)
    assert done["mask_count"] == 24 and done["finished_at"] is not None
    listed = client.get(f"/api/automatic-passes/?dataset={dataset.pk}").json()["results"]
    assert [p["id"] for p in listed] == [body["id"]]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"image_ids": [999_999]}, "are not in dataset"),
        ({"image_ids": []}, "image_ids is empty"),
        ({"kind": "everything"}, "is not a valid choice"),
        ({"config": {"pred_iou_thresh": 2}}, "pred_iou_thresh must be between 0 and 1"),
        ({"config": {"points_per_side": 0}}, "points_per_side must be between 1 and 128"),
        ({"config": {"points_per_side": 2.5}}, "points_per_side must be an integer"),
        ({"config": {"box_nms_thresh": "high"}}, "box_nms_thresh must be a number"),
        ({"config": {"stability_score_thresh": True}}, "must be a number"),
        ({"config": {"box_nms_thresh": 1.5}}, "box_nms_thresh must be in [0, 1]"),
        ({"config": {"points_per_side": 2}}, "the deepest crop layer would get no points"),
        ({"config": {"colour": 1}}, "unknown config fields ['colour']"),
        ({"config": {"points_per_side": None}}, "cannot be null"),
        ({"stage": 1}, "has no image in stage 1"),
        ({"stage": 3, "image_ids": [1]}, "either image_ids or stage"),
    ],
)
def test_bad_requests_answer_400_with_a_message(
    payload, message, client_for, dataset_admin, dataset, stage3_images
):
    answer = client_for(dataset_admin).post(launch_url(dataset), payload, format="json")
    assert answer.status_code == 400
    assert message in str(answer.json())
    assert not AutomaticPass.objects.exists()


def test_images_of_another_dataset_are_refused(
    client_for, dataset_admin, dataset, stage3_images, other_dataset
):
    foreign = factories.add_image(other_dataset, 40, 32, seed=9)
    answer = client_for(dataset_admin).post(
        launch_url(dataset), {"image_ids": [stage3_images[0].pk, foreign.pk]}, format="json"
    )
    assert answer.status_code == 400
    assert answer.json()["missing"] == [foreign.pk]
    assert f"images [{foreign.pk}] are not in dataset" in answer.json()["detail"]


def test_cancel_then_resume(client_for, dataset_admin, a_pass, django_capture_on_commit_callbacks):
    client = client_for(dataset_admin)
    cancelled = client.post(f"/api/automatic-passes/{a_pass.pk}/cancel/")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = client.post(f"/api/automatic-passes/{a_pass.pk}/cancel/")
    assert again.status_code == 409 and "only queued or running" in again.json()["detail"]

    with django_capture_on_commit_callbacks(execute=True):
        resumed = client.post(f"/api/automatic-passes/{a_pass.pk}/resume/")
    assert resumed.status_code == 202
    final = client.get(f"/api/automatic-passes/{a_pass.pk}/").json()
    assert (final["status"], final["done_images"], final["mask_count"]) == ("done", 2, 24)
    finished = client.post(f"/api/automatic-passes/{a_pass.pk}/resume/")
    assert finished.status_code == 409 and "every image" in finished.json()["detail"]
