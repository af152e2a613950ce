"""The annotation queue does not hand out held-out images first: on a fresh dataset the first
images annotators get are ones a round trains on, so a first round launched after a few images
trains instead of being refused with nothing to train on; once enough images are done, the
held-out ones are handed out too (the evaluation set fills as the stage goes on)."""

from __future__ import annotations

import pytest

from annotation.models import Image
from annotation.services.heldout import HELDOUT_AFTER_DONE, heldout_by_hash, likely_heldout
from annotation.services.image_holds import claim_next_image, complete_image
from annotation.services.imports import Candidate, import_images
from annotation.services.next_images import upcoming_images
from modeltrain import rounds
from modeltrain.models import ImageSplit
from modeltrain.round_export import assign_splits
from tests.modeltrain.conftest import add_mask, object_image

pytestmark = pytest.mark.django_db

IMAGES = 12


@pytest.fixture
def fresh(dataset, tiny_model, settings):
    """Twelve images with one object each and no masks yet; no round has run (no split)."""
    settings.TRAINING_HELDOUT_FRACTION = 0.5
    objects = {}
    for seed in range(IMAGES):
        data, mask = object_image(seed)
        report = import_images(dataset, [Candidate(f"obj-{seed}.png", read=lambda d=data: d)])
        objects[report.imported[0]["id"]] = mask
    return dataset, objects


def heldout_ids(dataset, fraction):
    return {
        image.pk
        for image in Image.objects.filter(dataset=dataset)
        if heldout_by_hash(image.content_sha256, fraction)
    }


def test_the_filter_is_the_split_rule(fresh):
    dataset, _ = fresh
    for fraction in (0.0, 0.05, 0.1, 0.5, 0.9, 1.0):
        found = set(
            Image.objects.filter(likely_heldout(fraction), dataset=dataset).values_list(
                "pk", flat=True
            )
        )
        assert found == heldout_ids(dataset, fraction), fraction
    assert 0 < len(heldout_ids(dataset, 0.5)) < IMAGES  # both kinds in the dataset


def test_first_claims_are_training_images_and_a_first_round_trains(
    fresh, annotator, django_capture_on_commit_callbacks
):
    dataset, objects = fresh
    heldout = heldout_ids(dataset, 0.5)
    oldest = list(Image.objects.filter(dataset=dataset).order_by("created_at", "pk"))
    assert oldest[0].pk in heldout or oldest[1].pk in heldout  # plain oldest-first would fail

    annotated = []
    for _ in range(2):
        assert upcoming_images(dataset, 1)[0].pk not in heldout
        image = claim_next_image(dataset, annotator, 1)
        assert image.pk not in heldout
        add_mask(image, objects[image.pk])
        complete_image(image, annotator)
        annotated.append(image.pk)

    with django_capture_on_commit_callbacks(execute=True):
        launched = rounds.launch_training_round(
            dataset, promotion="never", options={"iterations": 1, "masks_per_image": 1}
        )
    launched.refresh_from_db()
    assert launched.status == "done", launched.error
    assert launched.train_images == 2 and launched.train_masks == 2
    # The round's split agrees: what was annotated first is training data.
    splits = ImageSplit.objects.filter(image_id__in=annotated)
    assert set(splits.values_list("heldout", flat=True)) == {False}


def test_heldout_images_are_handed_out_once_enough_are_done(fresh, annotator):
    dataset, _ = fresh
    heldout = heldout_ids(dataset, 0.5)
    order = []
    while (image := claim_next_image(dataset, annotator, 1)) is not None:
        order.append(image.pk)
        complete_image(image, annotator)
    everything = Image.objects.filter(dataset=dataset).values_list("pk", flat=True)
    assert sorted(order) == sorted(everything)
    first = order[:HELDOUT_AFTER_DONE]
    assert not set(first) & heldout
    # After that, oldest first again: the held-out images are not all kept for the end.
    rest = order[HELDOUT_AFTER_DONE:]
    assert rest == sorted(rest, key=lambda pk: Image.objects.get(pk=pk).created_at)
    assert len(heldout) < IMAGES - HELDOUT_AFTER_DONE or set(rest) == heldout
    assign_splits(dataset)
    assert (
        set(
            ImageSplit.objects.filter(dataset=dataset, heldout=True).values_list(
                "image_id", flat=True
            )
        )
        == heldout
    )
