"""Optimistic concurrency on masks: every change names the version it started from; a stale
one is refused with 409 and changes nothing, so no edit silently overwrites another."""

import pytest

from annotation.models import Mask, MaskSource
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def mask(annotator_client, image):
    body = {"image": image.pk, "rle": factories.rect_rle(image, 0, 0, 4, 4)}
    return annotator_client.post("/api/masks/", body, format="json")


def test_a_new_mask_is_at_version_1_with_its_etag(mask):
    assert mask.status_code == 201
    assert mask.json()["version"] == 1 and mask["ETag"] == '"1"'


def test_an_edit_raises_the_version(annotator_client, mask):
    url = f"/api/masks/{mask.json()['id']}/"

    response = annotator_client.patch(url, {"seconds_spent": 3, "version": 1}, format="json")

    assert response.status_code == 200 and response.json()["version"] == 2
    assert annotator_client.get(url)["ETag"] == '"2"'


def test_a_stale_edit_is_refused_and_changes_nothing(annotator_client, image, mask):
    url = f"/api/masks/{mask.json()['id']}/"
    first = {"rle": factories.rect_rle(image, 0, 0, 6, 6), "version": 1}
    assert annotator_client.patch(url, first, format="json").status_code == 200

    second = {"rle": factories.rect_rle(image, 0, 0, 2, 2), "version": 1}
    response = annotator_client.patch(url, second, format="json")

    assert response.status_code == 409
    assert response.json()["current_version"] == 2
    assert "changed by someone else" in response.json()["detail"]
    stored = Mask.objects.get()
    assert stored.area == 36 and stored.version == 2


def test_if_match_header_is_accepted(annotator_client, mask):
    url = f"/api/masks/{mask.json()['id']}/"

    fresh = annotator_client.patch(url, {"seconds_spent": 1}, format="json", HTTP_IF_MATCH='"1"')
    stale = annotator_client.patch(url, {"seconds_spent": 2}, format="json", HTTP_IF_MATCH='"1"')

    assert fresh.status_code == 200 and stale.status_code == 409
    assert Mask.objects.get().seconds_spent == 1


def test_an_edit_without_a_version_is_refused(annotator_client, mask):
    url = f"/api/masks/{mask.json()['id']}/"

    response = annotator_client.patch(url, {"seconds_spent": 5}, format="json")
    garbled = annotator_client.patch(url, {"seconds_spent": 5}, format="json", HTTP_IF_MATCH="x")

    assert response.status_code == 428 and "If-Match" in response.json()["detail"]
    assert garbled.status_code == 428
    assert Mask.objects.get().version == 1


def test_annotators_keep_a_prefilled_mask(annotator, annotator_client, image, tiny_model):
    prefilled = factories.add_mask(image, source=MaskSource.PREFILLED, model_version=tiny_model)
    url = f"/api/masks/{prefilled.pk}/keep/"

    response = annotator_client.post(url, {"version": 1}, format="json")
    again = annotator_client.post(url, {"version": 1}, format="json")

    assert response.status_code == 200 and response.json()["review"] == "kept"
    assert response.json()["reviewed_by"] == annotator.pk
    assert response.json()["source"] == "prefilled" and response.json()["author"] is None
    assert again.status_code == 409


def test_fixing_a_prefilled_mask_marks_it_edited(annotator_client, image, tiny_model):
    prefilled = factories.add_mask(image, source=MaskSource.PREFILLED, model_version=tiny_model)
    body = {"rle": factories.rect_rle(image, 1, 1, 5, 5), "version": 1}

    response = annotator_client.patch(f"/api/masks/{prefilled.pk}/", body, format="json")

    assert response.status_code == 200
    assert response.json()["review"] == "edited" and response.json()["source"] == "prefilled"


def test_only_prefilled_masks_are_kept(annotator_client, mask):
    response = annotator_client.post(
        f"/api/masks/{mask.json()['id']}/keep/", {"version": 1}, format="json"
    )

    assert response.status_code == 400 and "pre-filled" in response.json()["detail"]
