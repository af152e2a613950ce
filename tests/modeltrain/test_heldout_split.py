"""Held-out images: chosen once per image, persisted, never exported for training."""

from __future__ import annotations

import pytest

from annotation.models import Image
from modeltrain.models import ImageSplit
from modeltrain.round_export import assign_splits, export_round, heldout_by_hash

from .conftest import add_masked_image


@pytest.mark.django_db
def test_held_out_images_are_exported_for_evaluation_only(masked_dataset, tiny_model, tmp_path):
    heldout_ids = set(ImageSplit.objects.filter(heldout=True).values_list("image_id", flat=True))

    data, until = export_round(masked_dataset, tmp_path / "r", tiny_model, with_embeddings=False)

    assert {r.image_id for r in data.heldout} == heldout_ids
    assert not heldout_ids & {r.image_id for r in data.train}
    assert data.train_masks + data.heldout_masks == 4
    assert until is not None


@pytest.mark.django_db
def test_a_split_is_never_revised(masked_dataset, settings):
    before = dict(ImageSplit.objects.values_list("image_id", "heldout"))
    settings.TRAINING_HELDOUT_FRACTION = 1.0  # every new image would now be held out

    assign_splits(masked_dataset)
    newcomer = add_masked_image(masked_dataset, 77)
    assign_splits(masked_dataset)

    after = dict(ImageSplit.objects.values_list("image_id", "heldout"))
    assert {k: after[k] for k in before} == before
    assert after[newcomer.pk] is True


@pytest.mark.django_db
def test_the_split_follows_the_content_hash_up_to_a_maximum(dataset, settings, tiny_model):
    settings.TRAINING_HELDOUT_FRACTION = 1.0
    settings.TRAINING_HELDOUT_MAX_IMAGES = 2
    for seed in range(4):
        add_masked_image(dataset, seed)

    assert assign_splits(dataset) == 2
    assert ImageSplit.objects.filter(heldout=True).count() == 2
    assert ImageSplit.objects.count() == Image.objects.count() == 4


def test_hash_rule():
    assert heldout_by_hash("0" * 64, 0.1) and not heldout_by_hash("f" * 64, 0.99)
    assert not heldout_by_hash("1" + "0" * 63, 0.05)  # 1/16 = 0.0625
