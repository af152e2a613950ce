"""Handing out images: one annotator per image, holds that expire, release and completion."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from annotation.models import DatasetMembership, Image, ImageStatus
from annotation.services.errors import Conflict, InvalidInput
from annotation.services.image_holds import (
    change_stage,
    claim_next_image,
    complete_image,
    expire_holds,
    release_image,
)
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def images(dataset):
    return [factories.add_image(dataset, seed=i) for i in range(3)]


def test_hands_out_the_oldest_pending_image_and_holds_it(dataset, images, annotator, settings):
    claimed = claim_next_image(dataset, annotator, 1)

    assert claimed.pk == images[0].pk
    claimed.refresh_from_db()
    assert claimed.held_by == annotator
    expected = timezone.now() + timedelta(seconds=settings.IMAGE_HOLD_SECONDS)
    assert abs((claimed.held_until - expected).total_seconds()) < 5


def test_asking_again_returns_the_image_already_held(dataset, images, annotator):
    first = claim_next_image(dataset, annotator, 1)
    again = claim_next_image(dataset, annotator, 1)

    assert again.pk == first.pk


def test_two_annotators_get_different_images(dataset, images, annotator, dataset_admin):
    a = claim_next_image(dataset, annotator, 1)
    b = claim_next_image(dataset, dataset_admin, 1)

    assert a.pk != b.pk


def test_an_expired_hold_is_handed_to_someone_else(dataset, images, annotator, dataset_admin):
    first = claim_next_image(dataset, annotator, 1)
    Image.objects.filter(pk=first.pk).update(held_until=timezone.now() - timedelta(seconds=1))

    assert claim_next_image(dataset, dataset_admin, 1).pk == first.pk


def test_only_images_of_the_requested_stage_and_pending(dataset, images, annotator):
    change_stage(dataset, [images[0].pk], 2)
    Image.objects.filter(pk=images[1].pk).update(status=ImageStatus.DONE)

    assert claim_next_image(dataset, annotator, 2).pk == images[0].pk
    assert claim_next_image(dataset, annotator, 1).pk == images[2].pk
    assert claim_next_image(dataset, annotator, 3) is None


def test_none_when_everything_is_held(dataset, image, annotator, dataset_admin):
    claim_next_image(dataset, annotator, 1)

    assert claim_next_image(dataset, dataset_admin, 1) is None


def test_bad_stage_is_refused(dataset, annotator):
    with pytest.raises(InvalidInput, match="stage must be 1"):
        claim_next_image(dataset, annotator, 7)


def test_release_returns_the_image_to_the_pool(dataset, image, annotator, dataset_admin):
    claim_next_image(dataset, annotator, 1)
    image.refresh_from_db()

    released = release_image(image, annotator)

    assert released.held_by is None and released.status == ImageStatus.PENDING
    assert claim_next_image(dataset, dataset_admin, 1).pk == image.pk


def test_skip_sets_the_image_aside(dataset, image, annotator):
    claim_next_image(dataset, annotator, 1)
    image.refresh_from_db()

    release_image(image, annotator, skip=True)

    assert Image.objects.get(pk=image.pk).status == ImageStatus.SKIPPED
    assert claim_next_image(dataset, annotator, 1) is None


def test_complete_marks_done_and_releases(dataset, image, annotator):
    claim_next_image(dataset, annotator, 1)
    image.refresh_from_db()

    done = complete_image(image, annotator)

    assert done.status == ImageStatus.DONE and done.held_by is None


def test_an_annotator_cannot_release_or_complete_what_they_do_not_hold(dataset, image, annotator):
    colleague = factories.make_user("bob")
    DatasetMembership.objects.create(dataset=dataset, user=colleague)
    claim_next_image(dataset, annotator, 1)
    image.refresh_from_db()

    with pytest.raises(Conflict, match="you do not hold"):
        complete_image(image, colleague)
    with pytest.raises(Conflict, match="you do not hold"):
        release_image(image, colleague)


def test_a_dataset_admin_may_release_any_image(dataset, image, annotator, dataset_admin):
    claim_next_image(dataset, annotator, 1)
    image.refresh_from_db()

    assert release_image(image, dataset_admin).held_by is None


def test_change_stage_is_all_or_nothing(dataset, other_dataset, images):
    foreign = factories.add_image(other_dataset, seed=99)

    with pytest.raises(InvalidInput, match=str(foreign.pk)):
        change_stage(dataset, [images[0].pk, foreign.pk], 2)
    assert set(Image.objects.values_list("stage", flat=True)) == {1}

    assert change_stage(dataset, [i.pk for i in images], 3) == 3
    assert set(Image.objects.filter(dataset=dataset).values_list("stage", flat=True)) == {3}


def test_change_stage_drops_holds_and_resets_status(dataset, image, annotator):
    claim_next_image(dataset, annotator, 1)
    Image.objects.filter(pk=image.pk).update(status=ImageStatus.DONE)

    change_stage(dataset, [image.pk], 2)

    image.refresh_from_db()
    assert (image.stage, image.status, image.held_by) == (2, ImageStatus.PENDING, None)


def test_expire_holds_clears_only_expired_ones(dataset, images, annotator, dataset_admin):
    a = claim_next_image(dataset, annotator, 1)
    claim_next_image(dataset, dataset_admin, 1)
    Image.objects.filter(pk=a.pk).update(held_until=timezone.now() - timedelta(seconds=1))

    assert expire_holds() == 1
    assert Image.objects.filter(held_by__isnull=False).count() == 1


@pytest.mark.django_db(transaction=True)
def test_annotators_claiming_at_the_same_time_never_get_the_same_image():
    annotators = [factories.make_user(f"a{i}") for i in range(4)]
    dataset = factories.make_dataset("race", [(user, "annotator") for user in annotators])
    for i in range(3):
        Image.objects.create(
            dataset=dataset,
            file=f"x{i}.png",
            original_name=f"x{i}.png",
            sha256=f"{i:064x}",
            content_sha256=f"{i:064x}",
            format="PNG",
            width=4,
            height=4,
            file_size=1,
        )
    barrier = threading.Barrier(len(annotators))
    results: dict[str, int | None] = {}
    errors: list[Exception] = []

    def claim(user):
        try:
            barrier.wait(timeout=10)
            image = claim_next_image(dataset, user, 1)
            results[user.username] = image.pk if image else None
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(user,)) for user in annotators]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not errors, errors
    claimed = [pk for pk in results.values() if pk is not None]
    assert len(claimed) == 3 and len(set(claimed)) == 3
    assert list(results.values()).count(None) == 1
    holders = dict(Image.objects.values_list("pk", "held_by__username"))
    assert all(holders[pk] == name for name, pk in results.items() if pk is not None)
