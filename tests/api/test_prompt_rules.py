"""Click prompts pass one set of rules (annotation.services.prompts) whether they ask for a
prediction or are stored with a mask: the same prompts get the same answer from both."""

from __future__ import annotations

import pytest

from annotation.models import Mask
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("prompt", "detail"),
    [
        ({"points": [[70, 5]], "labels": [1]}, "point 0 (70.0, 5.0) is outside the 64x48 image"),
        ({"points": [[1, 2]], "labels": [1, 0]}, "1 points need 1 labels, got 2"),
        ({"box": [5, 5, 5, 9]}, "box [5.0, 5.0, 5.0, 9.0] must satisfy 0 <= x0 < x1 <= 64"),
        ({"labels": [1]}, "give at least one point or a box"),
    ],
)
def test_a_prediction_and_a_stored_mask_refuse_a_prompt_alike(
    annotator_client, image, tiny_model, prompt, detail
):
    predicted = annotator_client.post(f"/api/images/{image.pk}/predict/", prompt, format="json")
    stored = annotator_client.post(
        "/api/masks/",
        {
            "image": image.pk,
            "rle": factories.rect_rle(image, 0, 0, 5, 5),
            "source": "model_assisted",
            "prompt": prompt,
        },
        format="json",
    )

    assert predicted.status_code == stored.status_code == 400
    assert predicted.json()["detail"] == stored.json()["detail"]
    assert predicted.json()["detail"].startswith(detail)
    assert not Mask.objects.exists()


def test_both_bound_the_number_of_points_alike(annotator_client, image, tiny_model):
    prompt = {"points": [[1, 1]] * 101, "labels": [1] * 101}
    predicted = annotator_client.post(f"/api/images/{image.pk}/predict/", prompt, format="json")
    stored = annotator_client.post(
        "/api/masks/",
        {"image": image.pk, "rle": factories.rect_rle(image, 0, 0, 5, 5), "prompt": prompt},
        format="json",
    )

    assert predicted.status_code == stored.status_code == 400
    assert predicted.json()["points"] == stored.json()["prompt"]["points"]
