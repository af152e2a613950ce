"""Masks through the API: RLE in and out, geometry from the server, double submissions."""

from __future__ import annotations

import uuid

import pytest

from annotation.models import Mask
from tests import factories

pytestmark = pytest.mark.django_db


def body(image, **extra):
    return {"image": image.pk, "rle": factories.rect_rle(image, 4, 6, 14, 26), **extra}


def test_create_computes_box_and_area_ignoring_client_geometry(annotator_client, image):
    response = annotator_client.post(
        "/api/masks/", body(image, bbox=[0, 0, 1, 1], area=1), format="json"
    )

    assert response.status_code == 201
    mask = response.json()
    assert mask["bbox"] == [4.0, 6.0, 10.0, 20.0] and mask["area"] == 200
    assert mask["source"] == "manual" and mask["rle"]["size"] == [48, 64]


def test_model_assisted_mask_with_prompts_round_trips(annotator_client, image, tiny_model):
    prompt = {
        "points": [[9, 10], [2, 3]],
        "labels": [1, 0],
        "box": [1, 1, 20, 30],
        "chosen_index": 0,
    }
    response = annotator_client.post(
        "/api/masks/",
        body(image, source="model_assisted", predicted_iou=0.9, seconds_spent=7.5, prompt=prompt),
        format="json",
    )

    mask = response.json()
    assert mask["model_version"] == tiny_model.pk and mask["seconds_spent"] == 7.5
    assert mask["prompt"] == {
        "points": [[9.0, 10.0], [2.0, 3.0]],
        "labels": [1, 0],
        "box": [1.0, 1.0, 20.0, 30.0],
        "chosen_index": 0,
    }


def test_a_repeated_client_id_returns_the_first_mask_with_200(annotator_client, image):
    client_id = str(uuid.uuid4())
    first = annotator_client.post("/api/masks/", body(image, client_id=client_id), format="json")
    again = annotator_client.post("/api/masks/", body(image, client_id=client_id), format="json")

    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"] and Mask.objects.count() == 1


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"rle": {"size": [48, 64], "counts": "!!!"}}, "invalid rle"),
        ({"rle": {"size": [10, 10], "counts": [100]}}, "does not match"),
        ({"source": "telepathy"}, "source"),
        ({"seconds_spent": -1}, "seconds_spent"),
        ({"client_id": "not-a-uuid"}, "client_id"),
        ({"model_version": 999}, "model version 999 does not exist"),
        ({"session": 999}, "session 999 does not exist"),
    ],
)
def test_bad_masks_are_a_400_and_store_nothing(annotator_client, image, tiny_model, change, needle):
    response = annotator_client.post("/api/masks/", {**body(image), **change}, format="json")

    assert response.status_code == 400 and needle in str(response.json())
    assert not Mask.objects.exists()


def test_annotators_cannot_create_automatic_masks(annotator_client, image):
    response = annotator_client.post("/api/masks/", body(image, source="automatic"), format="json")

    assert response.status_code == 403 and "annotators create" in response.json()["detail"]


def test_list_filters_by_image_and_source(annotator_client, dataset, image):
    other = factories.add_image(dataset, seed=3)
    annotator_client.post("/api/masks/", body(image), format="json")
    annotator_client.post("/api/masks/", body(other), format="json")

    listed = annotator_client.get(f"/api/masks/?image={image.pk}&source=manual").json()

    assert listed["count"] == 1 and listed["results"][0]["image"] == image.pk


def test_patch_replaces_the_rle_and_recomputes_geometry(annotator_client, image):
    mask = annotator_client.post("/api/masks/", body(image), format="json").json()

    response = annotator_client.patch(
        f"/api/masks/{mask['id']}/",
        {"rle": factories.rect_rle(image, 0, 0, 2, 3), "version": mask["version"]},
        format="json",
    )

    assert response.json()["area"] == 6 and response.json()["bbox"] == [0.0, 0.0, 2.0, 3.0]


def test_a_colleague_may_not_change_an_annotators_mask(
    annotator_client, client_for, dataset, image
):
    colleague = factories.make_user("col")
    dataset.memberships.create(user=colleague)
    mask = annotator_client.post("/api/masks/", body(image), format="json").json()

    response = client_for(colleague).delete(f"/api/masks/{mask['id']}/?version=1")

    assert response.status_code == 403 and Mask.objects.count() == 1
