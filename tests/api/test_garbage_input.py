"""Values no honest client sends are refused with a 400 naming the field, and nothing is stored:
scores outside 0..1, grid points outside the image or by the thousand, crop boxes that are not
boxes of the image, boxes without an area, another user's logits, invisible characters in
names."""

from __future__ import annotations

import pytest

from annotation.models import Dataset, Mask
from annotation.services.image_holds import claim_next_image
from tests import factories

pytestmark = pytest.mark.django_db


def mask_body(image, **extra):
    return {
        "image": image.pk,
        "rle": factories.rect_rle(image, 4, 6, 14, 26),
        "source": "model_assisted",
        **extra,
    }


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"predicted_iou": -5}, "predicted_iou"),
        ({"predicted_iou": 1e308}, "predicted_iou"),
        ({"stability_score": 99}, "stability_score"),
        ({"stability_score": "NaN"}, "stability_score"),
        ({"point_coords": [[10, 10]] * 50_000}, "point_coords"),
        ({"point_coords": [[10, "Infinity"]]}, "point_coords"),
        ({"seconds_spent": "nan"}, "seconds_spent"),
    ],
)
def test_a_mask_with_an_impossible_model_output_is_refused_by_field(
    annotator_client, image, tiny_model, extra, field
):
    response = annotator_client.post("/api/masks/", mask_body(image, **extra), format="json")

    assert response.status_code == 400 and field in response.json(), response.content
    assert not Mask.objects.exists()


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"point_coords": [[65, 10]]}, "point_coords[0] (65.0, 10.0) is outside"),
        ({"point_coords": [[-1, 10]]}, "is outside the 64x48 image"),
        ({"crop_box": [-4, 0, 10, 10]}, "crop_box"),
        ({"crop_box": [0, 0, 0, 10]}, "w, h > 0"),
        ({"crop_box": [60, 0, 10, 10]}, "reaches outside the 64x48 image"),
    ],
)
def test_a_mask_whose_grid_point_or_crop_is_not_in_its_image_is_refused(
    annotator_client, image, tiny_model, extra, words
):
    response = annotator_client.post("/api/masks/", mask_body(image, **extra), format="json")

    assert response.status_code == 400 and words in response.json()["detail"]
    assert not Mask.objects.exists()


def test_plausible_model_outputs_are_stored(annotator_client, image, tiny_model):
    extra = {
        "predicted_iou": 0.93,
        "stability_score": 1.0,
        "point_coords": [[64, 48]],
        "crop_box": [0, 0, 64, 48],
    }
    response = annotator_client.post("/api/masks/", mask_body(image, **extra), format="json")

    assert response.status_code == 201, response.content
    assert response.json()["crop_box"] == [0, 0, 64, 48]


def test_predict_refuses_a_box_without_an_area(annotator_client, image, tiny_model):
    for box in ([10, 10, 10, 30], [5, 20, 40, 20]):
        response = annotator_client.post(
            f"/api/images/{image.pk}/predict/", {"box": box}, format="json"
        )
        assert response.status_code == 400 and "a box with an area" in response.json()["detail"]


def test_predict_answers_predicted_iou_within_0_and_1(annotator_client, image, tiny_model):
    answer = annotator_client.post(
        f"/api/images/{image.pk}/predict/", {"points": [[3, 4]], "labels": [1]}, format="json"
    ).json()

    assert all(0.0 <= m["predicted_iou"] <= 1.0 for m in answer["masks"])


def test_another_users_logits_cannot_be_used_as_mask_input(
    client_for, annotator, dataset, image, tiny_model
):
    colleague = factories.make_user("colleague")
    dataset.memberships.create(user=colleague, role="annotator")
    claim_next_image(dataset, annotator, 1)
    url = f"/api/images/{image.pk}/predict/"
    click = {"points": [[3, 4]], "labels": [1]}
    theirs = client_for(annotator).post(url, click, format="json").json()["masks"][0]["logits_id"]

    response = client_for(colleague).post(url, {**click, "mask_input_id": theirs}, format="json")

    assert response.status_code == 400 and "another user's" in response.json()["detail"]


@pytest.mark.parametrize(
    "name", ["cats\x00", "ca\x1bts", "a\u202ereversed", "zero\u200bwidth", "line\u2028break"]
)
def test_a_dataset_name_with_control_or_invisible_characters_is_refused(admin_client, name):
    response = admin_client.post("/api/datasets/", {"name": name}, format="json")

    assert response.status_code == 400 and "character" in str(response.json()["name"])
    # Nothing stored (counted, since PostgreSQL refuses a NUL even in a query).
    assert Dataset.objects.count() == 0


def test_a_description_may_have_lines_and_tabs_but_no_other_control_characters(admin_client):
    fine = admin_client.post(
        "/api/datasets/", {"name": "birds", "description": "two lines\n\tand a tab"}, format="json"
    )
    bad = admin_client.post(
        "/api/datasets/", {"name": "fish", "description": "bell\x07"}, format="json"
    )

    assert fine.status_code == 201 and bad.status_code == 400
