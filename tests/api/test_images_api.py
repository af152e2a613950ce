"""Images through the API: filters, the file, stages, the next image, release and completion."""

from __future__ import annotations

import pytest

from annotation.models import EmbeddingStatus, Image, ImageStatus
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def images(dataset):
    return [factories.add_image(dataset, seed=i) for i in range(3)]


def test_images_filter_by_stage_status_and_embedding_status(admin_client, dataset, images):
    Image.objects.filter(pk=images[0].pk).update(stage=2)
    Image.objects.filter(pk=images[1].pk).update(
        status=ImageStatus.DONE, embedding_status=EmbeddingStatus.DONE
    )

    def ids(query: str) -> list[int]:
        return [r["id"] for r in admin_client.get(f"/api/images/?{query}").json()["results"]]

    assert ids("stage=2") == [images[0].pk]
    assert ids("status=done") == [images[1].pk]
    assert ids("embedding_status=queued") == [images[0].pk, images[2].pk]
    assert ids(f"dataset={dataset.pk}&stage=1&status=pending") == [images[2].pk]


@pytest.mark.parametrize(
    ("query", "field"), [("stage=9", "stage"), ("status=lost", "status"), ("dataset=x", "dataset")]
)
def test_unknown_filter_values_are_a_400(admin_client, images, query, field):
    response = admin_client.get(f"/api/images/?{query}")

    assert response.status_code == 400 and field in response.json()


def test_annotators_do_not_see_other_datasets_images(outsider_client, images):
    assert outsider_client.get("/api/images/").json()["count"] == 0


def test_file_is_served_to_members_with_its_type(annotator_client, images):
    response = annotator_client.get(f"/api/images/{images[0].pk}/file/")

    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content) == factories.image_bytes(seed=0)
    assert "private" in response["Cache-Control"]


def test_file_url_is_in_the_image_answer(annotator_client, images):
    body = annotator_client.get(f"/api/images/{images[0].pk}/").json()

    assert body["file_url"] == f"/api/images/{images[0].pk}/file/"
    assert body["width"] == 64 and body["height"] == 48


def test_next_image_holds_distinct_images_then_answers_204(client_for, dataset, images):
    users = [factories.make_user(f"u{i}") for i in range(4)]
    for user in users:
        dataset.memberships.create(user=user)

    answers = [
        client_for(user).post(f"/api/datasets/{dataset.pk}/next-image/", {"stage": 1})
        for user in users
    ]

    ids = [a.json()["id"] for a in answers[:3]]
    assert sorted(ids) == sorted(i.pk for i in images)
    assert answers[3].status_code == 204
    assert answers[0].json()["held_by"] == users[0].pk


def test_next_image_needs_a_valid_stage(annotator_client, dataset):
    response = annotator_client.post(f"/api/datasets/{dataset.pk}/next-image/", {"stage": 5})

    assert response.status_code == 400 and "stage" in response.json()


def test_release_with_skip_and_complete(annotator_client, dataset, images):
    first = annotator_client.post(f"/api/datasets/{dataset.pk}/next-image/", {"stage": 1}).json()
    skipped = annotator_client.post(f"/api/images/{first['id']}/release/", {"skip": True})
    second = annotator_client.post(f"/api/datasets/{dataset.pk}/next-image/", {"stage": 1}).json()
    done = annotator_client.post(f"/api/images/{second['id']}/complete/")

    assert skipped.json()["status"] == "skipped" and skipped.json()["held_by"] is None
    assert second["id"] != first["id"]
    assert done.status_code == 200 and done.json()["status"] == "done"


def test_a_repeated_complete_by_its_annotator_is_answered_unchanged(
    client_for, annotator_client, annotator, dataset, images
):
    image = annotator_client.post(f"/api/datasets/{dataset.pk}/next-image/", {"stage": 1}).json()
    annotator_client.post("/api/sessions/", {"image": image["id"]})
    first = annotator_client.post(f"/api/images/{image['id']}/complete/")
    again = annotator_client.post(f"/api/images/{image['id']}/complete/")
    other = factories.make_user("late")
    dataset.memberships.create(user=other)
    stranger = client_for(other).post(f"/api/images/{image['id']}/complete/")

    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() and again.json()["status"] == "done"
    assert Image.objects.filter(status="done").count() == 1
    # Someone who never worked on it still cannot complete it.
    assert stranger.status_code == 409


def test_completing_an_image_held_by_someone_else_is_a_409(annotator_client, dataset, images):
    response = annotator_client.post(f"/api/images/{images[0].pk}/complete/")

    assert response.status_code == 409 and "you do not hold" in response.json()["detail"]


def test_single_and_bulk_stage_changes(admin_client, dataset, images):
    single = admin_client.post(f"/api/images/{images[0].pk}/stage/", {"stage": 2})
    bulk = admin_client.post(
        f"/api/datasets/{dataset.pk}/images/stage/",
        {"image_ids": [images[1].pk, images[2].pk], "stage": 3},
        format="json",
    )

    assert single.json()["stage"] == 2
    assert bulk.json() == {"updated": 2, "stage": 3, "status": "pending"}
    assert sorted(Image.objects.values_list("stage", flat=True)) == [2, 3, 3]


def test_bulk_stage_change_with_a_foreign_id_changes_nothing(
    admin_client, dataset, other_dataset, images
):
    foreign = factories.add_image(other_dataset, seed=50)

    response = admin_client.post(
        f"/api/datasets/{dataset.pk}/images/stage/",
        {"image_ids": [images[0].pk, foreign.pk], "stage": 3},
        format="json",
    )

    assert response.status_code == 400 and response.json()["missing"] == [foreign.pk]
    assert set(Image.objects.values_list("stage", flat=True)) == {1}


def test_deleting_an_image_removes_its_file_after_commit(
    admin_client, images, settings, django_capture_on_commit_callbacks
):
    path = settings.MEDIA_ROOT / images[0].file
    assert path.is_file()

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.delete(f"/api/images/{images[0].pk}/")

    assert response.status_code == 204 and not path.exists()


def test_requeue_embedding_marks_it_queued(admin_client, images):
    Image.objects.filter(pk=images[0].pk).update(
        embedding_status=EmbeddingStatus.FAILED, embedding_error="boom"
    )

    response = admin_client.post(f"/api/images/{images[0].pk}/embed/")

    assert response.status_code == 202 and response.json()["embedding_status"] == "queued"
    assert response.json()["embedding_error"] == ""
