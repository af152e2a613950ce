"""The endpoints the annotation tool adds around predict: POST /api/images/{id}/everything/,
GET /api/datasets/{id}/upcoming-images/ and POST /api/images/{id}/prepare/."""

from __future__ import annotations

import pytest

from annotation.models import EmbeddingStatus, Image, Mask
from annotation.services.embeddings import embedding_store, get_or_compute_embedding
from annotation.services.image_holds import claim_next_image
from annotation.services.next_images import stage_queues
from engine import rle as rle_codec
from tests import factories

pytestmark = pytest.mark.django_db

LOW = {"pred_iou_thresh": 0.0, "stability_score_thresh": 0.0}


def test_everything_answers_proposals_without_storing_them(annotator_client, image, tiny_model):
    response = annotator_client.post(
        f"/api/images/{image.pk}/everything/", {"points_per_side": 4, **LOW}, format="json"
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["masks"], "thresholds at 0 keep the random model's masks"
    first = body["masks"][0]
    decoded = rle_codec.decode(first["rle"])
    assert decoded.shape == (48, 64) and int(decoded.sum()) == first["area"] > 0
    # Every proposal's box is its RLE's tight box, as stored masks have: saved as proposed, it
    # passes every reader's check of stored rows.
    for mask in body["masks"]:
        assert mask["bbox"] == rle_codec.bbox_xywh(mask["rle"])
    assert len(first["point_coords"]) == 1 and 0 <= first["point_coords"][0][0] <= 64
    assert body["config"]["points_per_side"] == 4 and body["config"]["crop_n_layers"] == 0
    assert body["model"]["name"] == tiny_model.name
    assert Mask.objects.count() == 0


def test_everything_keeps_the_papers_thresholds_by_default(annotator_client, image, tiny_model):
    response = annotator_client.post(
        f"/api/images/{image.pk}/everything/", {"points_per_side": 2}, format="json"
    )

    # The untrained model's IoUs are near 0: nothing passes, and that is an empty answer.
    assert response.status_code == 200 and response.json()["masks"] == []
    config = response.json()["config"]
    assert (config["pred_iou_thresh"], config["stability_score_thresh"]) == (0.88, 0.95)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"points_per_side": 33}, "points_per_side"),
        ({"points_per_side": 0}, "points_per_side"),
        ({"pred_iou_thresh": 1.5}, "pred_iou_thresh"),
        ({"stability_score_thresh": "high"}, "stability_score_thresh"),
    ],
)
def test_everything_rejects_bad_settings_naming_them(
    annotator_client, image, tiny_model, body, field
):
    response = annotator_client.post(f"/api/images/{image.pk}/everything/", body, format="json")

    assert response.status_code == 400 and field in response.json()


def test_everything_on_a_failed_embedding_is_a_409(annotator_client, image, tiny_model):
    Image.objects.filter(pk=image.pk).update(
        embedding_status=EmbeddingStatus.FAILED,
        encoder_key=tiny_model.encoder_key,
        embedding_error="ImageError: truncated",
    )

    response = annotator_client.post(f"/api/images/{image.pk}/everything/", {}, format="json")

    assert response.status_code == 409 and "truncated" in response.json()["detail"]


def test_upcoming_lists_free_images_oldest_first_without_claiming(
    annotator_client, dataset, dataset_admin, tiny_model
):
    images = [factories.add_image(dataset, seed=s) for s in range(4)]
    claim_next_image(dataset, dataset_admin, 1)  # someone else holds the oldest

    response = annotator_client.get(f"/api/datasets/{dataset.pk}/upcoming-images/?stage=1&count=2")

    assert response.status_code == 200
    assert [row["id"] for row in response.json()] == [images[1].pk, images[2].pk]
    assert Image.objects.filter(held_by__isnull=False).count() == 1


@pytest.mark.parametrize("query", ["", "?stage=7", "?stage=1&count=99"])
def test_upcoming_needs_a_stage_and_a_small_count(annotator_client, dataset, query):
    response = annotator_client.get(f"/api/datasets/{dataset.pk}/upcoming-images/{query}")

    assert response.status_code == 400


def test_prepare_queues_a_missing_embedding(
    annotator_client, image, tiny_model, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.EMBEDDING_DIR = tmp_path / "no-embeddings-yet"
    Image.objects.filter(pk=image.pk).update(embedding_status=EmbeddingStatus.NONE)

    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = annotator_client.post(f"/api/images/{image.pk}/prepare/")

    assert response.status_code == 200
    assert response.json()["embedding_status"] == EmbeddingStatus.QUEUED
    assert len(queued) == 1
    queued[0]()  # the task (inline in tests) computes it
    image.refresh_from_db()
    assert image.embedding_status == EmbeddingStatus.DONE
    assert embedding_store().contains(image.content_sha256, tiny_model.encoder_key)


def test_prepare_does_not_queue_twice(
    annotator_client, image, tiny_model, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.EMBEDDING_DIR = tmp_path / "no-embeddings-yet"
    Image.objects.filter(pk=image.pk).update(embedding_status=EmbeddingStatus.NONE)

    with django_capture_on_commit_callbacks(execute=False) as queued:
        annotator_client.post(f"/api/images/{image.pk}/prepare/")
        annotator_client.post(f"/api/images/{image.pk}/prepare/")

    assert len(queued) == 1


def test_prepare_of_a_stored_embedding_marks_it_done_and_queues_nothing(
    annotator_client, image, tiny_model, django_capture_on_commit_callbacks
):
    get_or_compute_embedding(image, tiny_model)
    Image.objects.filter(pk=image.pk).update(embedding_status=EmbeddingStatus.NONE)

    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = annotator_client.post(f"/api/images/{image.pk}/prepare/")

    assert response.json()["embedding_status"] == EmbeddingStatus.DONE and queued == []


def test_prepare_leaves_a_failed_embedding_for_an_admin(annotator_client, image, tiny_model):
    Image.objects.filter(pk=image.pk).update(
        embedding_status=EmbeddingStatus.FAILED,
        encoder_key=tiny_model.encoder_key,
        embedding_error="ImageError: truncated",
    )
    embedding_store().path(image.content_sha256, tiny_model.encoder_key).unlink(missing_ok=True)

    response = annotator_client.post(f"/api/images/{image.pk}/prepare/")

    assert response.status_code == 200
    assert response.json()["embedding_status"] == EmbeddingStatus.FAILED


def test_stage_queues_count_available_mine_others_and_done(
    dataset, annotator, dataset_admin, tiny_model
):
    images = [factories.add_image(dataset, seed=seed) for seed in range(4)]
    claim_next_image(dataset, annotator, 1)
    claim_next_image(dataset, dataset_admin, 1)
    Image.objects.filter(pk=images[3].pk).update(status="done")

    (queue,) = stage_queues(annotator)

    first = queue["stages"][0]
    assert queue["dataset"] == dataset and queue["role"] == "annotator"
    assert (first["total"], first["available"], first["mine"], first["others"]) == (4, 1, 1, 1)
    assert first["done"] == 1
    assert queue["stages"][1]["total"] == 0
