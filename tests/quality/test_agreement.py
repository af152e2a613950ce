"""Double annotation: a share of the images done goes to a second annotator, whose masks are an
attempt compared with the first's; the agreement per stage is exact on constructed masks."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from annotation.models import Image, ImageStatus, Mask, QualityAttempt, Role
from annotation.services.attempt_masks import add_attempt_mask
from annotation.services.ground_truth import mark_ground_truth
from annotation.services.image_holds import claim_next_image, complete_image, release_image
from annotation.services.masks import accept_mask
from annotation.services.quality_claims import is_doubled, open_attempt
from annotation.services.quality_reports import agreement
from tests import factories
from tests.quality.conftest import rect
from tests.quality.helpers import set_shares

pytestmark = pytest.mark.django_db

FIRST = [rect(0, 0, 10, 10), rect(20, 20, 30, 30), rect(40, 0, 50, 10)]
SECOND = [rect(0, 0, 10, 10), rect(21, 21, 29, 29), rect(40, 0, 50, 9), rect(0, 40, 5, 45)]


@pytest.fixture
def second(dataset):
    user = factories.make_user("bob")
    dataset.memberships.create(user=user, role=Role.ANNOTATOR)
    return user


def test_the_doubled_share_is_reproducible_per_image():
    picks = [is_doubled(pk, 0.25) for pk in range(1, 8001)]
    assert 0.23 < sum(picks) / len(picks) < 0.27
    assert picks == [is_doubled(pk, 0.25) for pk in range(1, 8001)]
    assert all(is_doubled(pk, 1.0) for pk in range(1, 100))
    assert not any(is_doubled(pk, 0.0) for pk in range(1, 100))


def test_a_doubled_image_goes_to_a_second_annotator_and_agreement_is_exact(
    dataset, annotator, second
):
    set_shares(dataset, double=1.0)
    images = [factories.add_image(dataset, seed=i) for i in range(2)]
    first = claim_next_image(dataset, annotator, 1)
    assert first.pk == images[0].pk
    for rle in FIRST:
        accept_mask(first, annotator, rle=rle, source="manual", seconds_spent=2.0)
    complete_image(first, annotator)

    # The first annotator is not handed their own image again: they get the next pending one.
    assert claim_next_image(dataset, annotator, 1).pk == images[1].pk
    doubled = claim_next_image(dataset, second, 1)
    assert doubled.pk == first.pk
    assert (doubled.status, doubled.held_by) == (ImageStatus.PENDING, second)
    attempt = open_attempt(doubled, second)
    assert attempt.kind == "double" and attempt.first_annotator == annotator
    for rle in SECOND:
        add_attempt_mask(attempt, doubled, second, rle=rle, source="manual", seconds_spent=1.0)
    complete_image(Image.objects.get(pk=doubled.pk), second)

    (stage,) = agreement(dataset)["stages"]
    ious = [1.0, 64 / 100, 90 / 100]  # identical, eroded, one row short (0.9 is not > 0.9)
    assert stage["stage"] == 1 and stage["images"] == 1
    assert (stage["first_masks"], stage["second_masks"], stage["pairs"]) == (3, 4, 3)
    assert (stage["pairs_above_90"], stage["share_above_90"]) == (1, pytest.approx(1 / 3))
    assert stage["mean_iou"] == pytest.approx(sum(ious) / 3)
    assert (stage["unmatched_first"], stage["unmatched_second"]) == (0, 1)
    # The second annotation is not the dataset's: its masks are the first annotator's only.
    assert Mask.objects.filter(image=first).count() == 3
    assert Image.objects.get(pk=first.pk).status == ImageStatus.DONE


def test_each_doubled_image_is_handed_to_one_second_annotator(dataset, annotator, second):
    set_shares(dataset, double=1.0)
    third = factories.make_user("carol")
    dataset.memberships.create(user=third, role=Role.ANNOTATOR)
    image = factories.add_image(dataset, seed=1)
    complete_image(claim_next_image(dataset, annotator, 1), annotator)

    assert claim_next_image(dataset, second, 1).pk == image.pk
    assert claim_next_image(dataset, third, 1) is None
    assert QualityAttempt.objects.filter(kind="double").count() == 1


def doubled_with_a_third_annotator(dataset, annotator, second):
    """An image done by ``annotator`` and claimed for its second annotation by ``second``,
    with a third annotator ("carol") in the dataset: (third, image, the second's claim)."""
    set_shares(dataset, double=1.0)
    third = factories.make_user("carol")
    dataset.memberships.create(user=third, role=Role.ANNOTATOR)
    image = factories.add_image(dataset, seed=1)
    complete_image(claim_next_image(dataset, annotator, 1), annotator)
    doubled = claim_next_image(dataset, second, 1)
    return third, image, doubled


def test_a_released_second_annotation_goes_to_another_annotator(dataset, annotator, second):
    third, image, doubled = doubled_with_a_third_annotator(dataset, annotator, second)
    add_attempt_mask(open_attempt(doubled, second), doubled, second, rle=FIRST[0], source="manual")
    release_image(doubled, second)

    assert claim_next_image(dataset, second, 1) is None
    assert claim_next_image(dataset, third, 1).pk == image.pk
    assert QualityAttempt.objects.filter(kind="double", released_at__isnull=False).count() == 1
    assert Image.objects.get(pk=image.pk).status == ImageStatus.DONE


def test_an_image_marked_as_truth_after_it_was_doubled_is_no_longer_handed_out(
    dataset, annotator, second, dataset_admin
):
    set_shares(dataset, double=1.0)
    image = factories.add_image(dataset, seed=1)
    accept_mask(image, annotator, rle=FIRST[0], source="manual")
    complete_image(claim_next_image(dataset, annotator, 1), annotator)
    mark_ground_truth(dataset, dataset_admin, [image.pk])

    assert claim_next_image(dataset, second, 1) is None


def test_without_a_double_share_nothing_is_doubled(dataset, annotator, second):
    factories.add_image(dataset, seed=1)
    complete_image(claim_next_image(dataset, annotator, 1), annotator)

    assert claim_next_image(dataset, second, 1) is None
    assert not QualityAttempt.objects.exists()
    assert agreement(dataset) == {"stages": []}


def test_an_abandoned_second_annotation_goes_to_another_annotator(dataset, annotator, second):
    """A second annotator who closes the tab keeps the doubled image only as long as an
    ordinary hold would last without a heartbeat."""
    third, image, doubled = doubled_with_a_third_annotator(dataset, annotator, second)
    assert doubled.pk == image.pk
    assert claim_next_image(dataset, third, 1) is None  # still being worked on

    gone = timezone.now() - timedelta(seconds=settings.IMAGE_HOLD_SECONDS + 1)
    QualityAttempt.objects.filter(annotator=second).update(started_at=gone)
    assert claim_next_image(dataset, third, 1).pk == image.pk
    abandoned = QualityAttempt.objects.get(annotator=second)
    assert abandoned.released_at is not None and abandoned.completed_at is None
    assert Image.objects.get(pk=image.pk).status == ImageStatus.DONE
