"""A round refused for want of masks says how many masks the dataset has and where they are:
all on the held-out images (annotate others) or none a round learns from, in the API and the
admin's add form alike."""

from __future__ import annotations

import pytest

from annotation.models import MaskSource
from modeltrain.models import ImageSplit, TrainingRound
from tests import factories
from tests.modeltrain.conftest import add_masked_image

pytestmark = pytest.mark.django_db

HELDOUT = "no masks to train on: 3 masks, all on the 1 held-out image(s) kept for evaluation; "
HELDOUT += "annotate other images"


@pytest.fixture
def heldout_only(other_dataset, tiny_model):
    """Three drawn masks on the dataset's one held-out image; a second image, for training,
    has only a pre-filled mask (not learnt from)."""
    heldout = add_masked_image(other_dataset, 0)
    for x in (2, 20):
        factories.add_mask(heldout, rle=factories.rect_rle(heldout, x, 2, x + 10, 12))
    ImageSplit.objects.create(image=heldout, dataset=other_dataset, heldout=True)
    training = add_masked_image(other_dataset, 1, source=MaskSource.PREFILLED)
    ImageSplit.objects.create(image=training, dataset=other_dataset, heldout=False)
    return other_dataset


@pytest.fixture
def staff_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.com"))
    return client


def test_the_api_says_the_masks_are_all_held_out(admin_client, heldout_only):
    answer = admin_client.post("/api/training-rounds/", {"dataset": heldout_only.pk}, format="json")
    assert answer.status_code == 400
    assert HELDOUT in answer.json()["detail"]
    assert not TrainingRound.objects.exists()


def test_the_admin_form_says_the_masks_are_all_held_out(staff_client, heldout_only):
    answer = staff_client.post(
        "/admin/modeltrain/traininground/add/",
        {"dataset": heldout_only.pk, "mode": "auto", "promotion": "auto"},
    )
    assert answer.status_code == 200
    assert HELDOUT in answer.content.decode()
    assert not TrainingRound.objects.exists()


def test_a_dataset_without_any_mask_is_told_to_annotate(admin_client, other_dataset, tiny_model):
    factories.add_image(other_dataset)
    answer = admin_client.post(
        "/api/training-rounds/", {"dataset": other_dataset.pk}, format="json"
    )
    assert answer.status_code == 400
    detail = answer.json()["detail"]
    assert "no masks to train on: rounds learn from masks people drew" in detail
    assert "held-out" not in detail
