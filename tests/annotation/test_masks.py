"""Accepting masks: RLE checked against the image, geometry computed here, prompts kept."""

from __future__ import annotations

import uuid

import pytest

from annotation.models import Mask, MaskPrompt, Role
from annotation.services.access import set_membership
from annotation.services.errors import InvalidInput
from annotation.services.masks import accept_mask, update_mask
from annotation.services.sessions import finish_session, start_session
from tests import factories

pytestmark = pytest.mark.django_db


def test_box_and_area_come_from_the_rle(image, annotator):
    mask, created = accept_mask(
        image, annotator, rle=factories.rect_rle(image, 5, 10, 25, 30), source="manual"
    )

    assert created
    assert mask.bbox == [5.0, 10.0, 20.0, 20.0] and mask.area == 400
    assert mask.author == annotator and mask.stage == 1 and mask.model_version is None


def test_uncompressed_rle_is_stored_compressed(image, annotator):
    h, w = image.height, image.width
    counts = [0, h * w]  # everything foreground
    mask, _ = accept_mask(image, annotator, rle={"size": [h, w], "counts": counts}, source="manual")

    assert isinstance(mask.rle["counts"], str) and mask.area == h * w


@pytest.mark.parametrize(
    ("rle", "message"),
    [
        ({"size": [10, 10], "counts": "PP4"}, r"size \[10, 10\] does not match"),
        ({"size": [48, 64]}, "missing 'counts'"),
        ({"size": [48, 64], "counts": [5, 5]}, "invalid rle"),
        ("not a dict", "invalid rle"),
    ],
)
def test_malformed_or_wrong_size_rle_is_refused(image, annotator, rle, message):
    with pytest.raises(InvalidInput, match=message):
        accept_mask(image, annotator, rle=rle, source="manual")
    assert not Mask.objects.exists()


def test_an_empty_mask_is_refused(image, annotator):
    with pytest.raises(InvalidInput, match="empty"):
        accept_mask(image, annotator, rle=factories.rect_rle(image, 0, 0, 0, 0), source="manual")


def test_model_assisted_mask_records_the_active_model_and_the_prompts(image, annotator, tiny_model):
    prompt = {"points": [[10, 12], [30, 20]], "labels": [1, 0], "box": None, "chosen_index": 2}
    mask, _ = accept_mask(
        image,
        annotator,
        rle=factories.rect_rle(image, 5, 5, 20, 20),
        source="model_assisted",
        predicted_iou=0.87,
        seconds_spent=12.5,
        prompt=prompt,
    )

    assert mask.model_version == tiny_model and mask.predicted_iou == 0.87
    stored = MaskPrompt.objects.get(mask=mask)
    assert stored.points == [[10.0, 12.0], [30.0, 20.0]] and stored.labels == [1, 0]
    assert stored.chosen_index == 2 and stored.box is None


def test_prompts_outside_the_image_are_refused(image, annotator, tiny_model):
    with pytest.raises(InvalidInput, match="outside"):
        accept_mask(
            image,
            annotator,
            rle=factories.rect_rle(image, 5, 5, 20, 20),
            source="model_assisted",
            prompt={"points": [[100, 100]], "labels": [1]},
        )
    assert not Mask.objects.exists()


def test_a_manual_mask_with_a_model_version_is_refused(image, annotator, tiny_model):
    with pytest.raises(InvalidInput, match="no model version"):
        accept_mask(
            image,
            annotator,
            rle=factories.rect_rle(image, 0, 0, 5, 5),
            source="manual",
            model_version=tiny_model,
        )


def test_annotators_cannot_claim_engine_sources(
    image, annotator, dataset_admin, tiny_model, client_for
):
    rle = factories.rect_rle(image, 0, 0, 5, 5)
    refused = client_for(annotator).post(
        "/api/masks/", {"image": image.pk, "rle": rle, "source": "automatic"}, format="json"
    )
    assert refused.status_code == 403 and "annotators create" in refused.json()["detail"]
    assert not Mask.objects.exists()

    stored = client_for(dataset_admin).post(
        "/api/masks/", {"image": image.pk, "rle": rle, "source": "imported"}, format="json"
    )
    assert stored.status_code == 201 and stored.json()["source"] == "imported"


def test_the_same_client_id_returns_the_stored_mask(image, annotator):
    client_id = uuid.uuid4()
    rle = factories.rect_rle(image, 0, 0, 5, 5)
    first, created = accept_mask(image, annotator, rle=rle, source="manual", client_id=client_id)
    again, created_again = accept_mask(
        image, annotator, rle=rle, source="manual", client_id=client_id
    )

    assert created and not created_again and again.pk == first.pk
    assert Mask.objects.count() == 1


def test_a_session_must_be_the_annotators_open_one_on_this_image(
    dataset, image, annotator, dataset_admin
):
    rle = factories.rect_rle(image, 0, 0, 5, 5)
    theirs, _ = start_session(image, dataset_admin)
    with pytest.raises(InvalidInput, match="not yours"):
        accept_mask(image, annotator, rle=rle, source="manual", session=theirs)

    mine, _ = start_session(image, annotator)
    mine = finish_session(mine)
    with pytest.raises(InvalidInput, match="finished"):
        accept_mask(image, annotator, rle=rle, source="manual", session=mine)


def test_update_recomputes_geometry(image, annotator):
    mask, _ = accept_mask(
        image, annotator, rle=factories.rect_rle(image, 0, 0, 5, 5), source="manual"
    )

    update_mask(
        mask,
        annotator,
        expected_version=1,
        rle=factories.rect_rle(image, 10, 10, 20, 30),
        seconds_spent=3,
    )

    mask.refresh_from_db()
    assert mask.bbox == [10.0, 10.0, 10.0, 20.0] and mask.area == 200 and mask.seconds_spent == 3


def test_a_bad_update_changes_nothing(image, annotator):
    mask, _ = accept_mask(
        image, annotator, rle=factories.rect_rle(image, 0, 0, 5, 5), source="manual"
    )

    with pytest.raises(InvalidInput):
        update_mask(
            mask,
            annotator,
            expected_version=1,
            seconds_spent=9,
            prompt={"points": [[999, 1]], "labels": [1]},
        )

    mask.refresh_from_db()
    assert mask.seconds_spent == 0 and not MaskPrompt.objects.exists()


def test_only_author_reviewer_and_admin_change_or_delete(dataset, image, annotator, client_for):
    colleague, reviewer = factories.make_user("col"), factories.make_user("rev")
    set_membership(dataset, colleague, Role.ANNOTATOR)
    set_membership(dataset, reviewer, Role.REVIEWER)
    mask, _ = accept_mask(
        image, annotator, rle=factories.rect_rle(image, 0, 0, 5, 5), source="manual"
    )
    url = f"/api/masks/{mask.pk}/"

    change = client_for(colleague).patch(url, {"version": 1, "seconds_spent": 1}, format="json")
    assert change.status_code == 403 and "may change it" in change.json()["detail"]
    delete = client_for(colleague).delete(f"{url}?version=1")
    assert delete.status_code == 403 and "may delete it" in delete.json()["detail"]
    mask.refresh_from_db()
    assert mask.version == 1 and mask.seconds_spent == 0
    assert client_for(reviewer).patch(url, {"version": 1, "seconds_spent": 2}).status_code == 200
    assert client_for(reviewer).delete(f"{url}?version=2").status_code == 204
    assert not Mask.objects.exists()
