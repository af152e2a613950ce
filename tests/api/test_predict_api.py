"""POST /api/images/{id}/predict/"""

from __future__ import annotations

import pytest

from annotation.models import EmbeddingStatus, Image
from engine import rle as rle_codec
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def url(image):
    return f"/api/images/{image.pk}/predict/"


def test_answers_masks_and_the_model_that_made_them(annotator_client, url, image, tiny_model):
    response = annotator_client.post(url, {"points": [[30, 20]], "labels": [1]}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert len(body["masks"]) == 3
    assert rle_codec.decode(body["masks"][0]["rle"]).shape == (48, 64)
    assert body["model"]["name"] == tiny_model.name and body["model"]["is_official"] is False
    assert body["model"]["hint"]
    assert len(response.content) < 20_000


def test_the_next_click_refines_with_the_logits_id(annotator_client, url, tiny_model):
    first = annotator_client.post(url, {"points": [[30, 20]], "labels": [1]}, format="json")
    logits_id = first.json()["masks"][0]["logits_id"]

    second = annotator_client.post(
        url,
        {
            "points": [[30, 20], [5, 5]],
            "labels": [1, 0],
            "mask_input_id": logits_id,
            "multimask": False,
        },
        format="json",
    )

    assert second.status_code == 200 and len(second.json()["masks"]) == 1


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({}, "at least one point or a box"),
        ({"points": [[70, 5]], "labels": [1]}, "outside the 64x48 image"),
        ({"box": [0, 0, 100, 10]}, "box"),
        ({"box": [1, 2, 3]}, "box"),
        ({"points": [[1, 2, 3]], "labels": [1]}, "points"),
        ({"points": [[1, 2]], "labels": [3]}, "labels"),
        ({"points": [[1, 2]], "labels": [1, 0]}, "labels"),
        ({"points": [[1, 2]], "labels": [1], "mask_input_id": "f" * 32}, "unknown or expired"),
        ({"points": "here", "labels": [1]}, "points"),
    ],
)
def test_bad_requests_are_a_400_saying_what_was_wrong(
    annotator_client, url, tiny_model, body, needle
):
    response = annotator_client.post(url, body, format="json")

    assert response.status_code == 400, response.content
    assert needle in str(response.json())


def test_failed_embedding_is_a_409_with_the_reason(annotator_client, url, image, tiny_model):
    Image.objects.filter(pk=image.pk).update(
        embedding_status=EmbeddingStatus.FAILED,
        encoder_key=tiny_model.encoder_key,
        embedding_error="ImageError: truncated",
    )

    response = annotator_client.post(url, {"points": [[1, 1]], "labels": [1]}, format="json")

    assert response.status_code == 409 and "truncated" in response.json()["detail"]


def test_an_unreadable_image_file_is_a_409_not_a_500(
    annotator_client, url, image, tiny_model, settings, tmp_path
):
    settings.EMBEDDING_DIR = tmp_path / "empty-embeddings"
    (settings.MEDIA_ROOT / image.file).unlink()

    response = annotator_client.post(url, {"points": [[1, 1]], "labels": [1]}, format="json")

    assert response.status_code == 409 and "could not be computed" in response.json()["detail"]
    image.refresh_from_db()
    assert image.embedding_status == EmbeddingStatus.FAILED


def test_a_checkpoint_changed_on_disk_is_a_503_and_the_image_stays_usable(
    annotator_client, url, image, settings, tmp_path
):
    import torch

    from engine import build_sam, save_checkpoint
    from registry.predictors import clear_predictor_cache

    path = tmp_path / "changing.pt"
    torch.manual_seed(5)
    save_checkpoint(build_sam("vit_tiny"), path, trained_on="x")
    settings.SAM_MODEL_TYPE, settings.SAM_CHECKPOINT = "vit_tiny", str(path)
    annotator_client.get("/api/model/")  # registers it
    torch.manual_seed(6)
    save_checkpoint(build_sam("vit_tiny"), path, trained_on="y")
    clear_predictor_cache()  # a process started after the file changed

    response = annotator_client.post(url, {"points": [[1, 1]], "labels": [1]}, format="json")

    assert response.status_code == 503 and "changed on disk" in response.json()["detail"]
    image.refresh_from_db()
    assert image.embedding_status == EmbeddingStatus.QUEUED


def test_a_stored_mask_named_as_refine_mask_is_refined_by_the_click(
    annotator_client, url, image, tiny_model
):
    stored = factories.add_mask(
        image, source="prefilled", rle=factories.rect_rle(image, 10, 8, 40, 30)
    )

    response = annotator_client.post(
        url,
        {"points": [[20, 10]], "labels": [1], "refine_mask": stored.pk, "multimask": False},
        format="json",
    )

    assert response.status_code == 200, response.content
    assert len(response.json()["masks"]) == 1


def test_refine_mask_is_checked_like_every_other_prompt_field(
    annotator_client, url, image, dataset, other_dataset, outsider, tiny_model
):
    elsewhere = factories.add_mask(factories.add_image(dataset, seed=3))
    unseen = factories.add_mask(factories.add_image(other_dataset, seed=4))
    own = factories.add_mask(image)
    clicks = {"points": [[1, 1]], "labels": [1]}
    first = annotator_client.post(url, clicks, format="json").json()

    cases = [
        ({"refine_mask": elsewhere.pk}, 400, f"not of image {image.pk}"),
        ({"refine_mask": unseen.pk}, 404, f"refine_mask {unseen.pk}"),
        ({"refine_mask": 2**31}, 400, "refine_mask"),
        ({"refine_mask": "one"}, 400, "refine_mask"),
        ({"refine_mask": -1}, 400, "refine_mask"),
        ({"refine_mask": own.pk, "mask_input_id": first["masks"][0]["logits_id"]}, 400, "not both"),
    ]
    for extra, status, needle in cases:
        response = annotator_client.post(url, {**clicks, **extra}, format="json")
        assert response.status_code == status, (extra, response.content)
        assert needle in str(response.json()), (extra, response.json())
