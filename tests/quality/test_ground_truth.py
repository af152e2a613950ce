"""Ground truth: marking freezes the masks; claims hand out ground-truth images by a reproducible
draw, shown like any other; the attempt's masks stay apart and are measured exactly."""

from __future__ import annotations

import json

import pytest

from annotation.models import (
    AnnotatorDraw,
    GroundTruthImage,
    Image,
    ImageStatus,
    Mask,
    QualityAttempt,
)
from annotation.services.attempt_masks import add_attempt_mask
from annotation.services.coco import export_coco
from annotation.services.errors import InvalidInput
from annotation.services.ground_truth import mark_ground_truth, update_quality_settings
from annotation.services.image_holds import claim_next_image, complete_image, release_image
from annotation.services.quality_claims import draws_ground_truth, open_attempt
from annotation.services.quality_reports import annotator_accuracy
from annotation.services.sessions import finish_session, start_session
from annotation.services.stats import dataset_stats
from tests import factories
from tests.quality.conftest import rect
from tests.quality.helpers import next_claim_draws, set_shares

pytestmark = pytest.mark.django_db

TRUTH = [rect(0, 0, 10, 10), rect(20, 20, 30, 30), rect(40, 0, 50, 10)]


@pytest.fixture
def truth_image(dataset, dataset_admin):
    image = factories.add_image(dataset, seed=100)
    for rle in TRUTH:
        factories.add_mask(image, rle=rle)
    mark_ground_truth(dataset, dataset_admin, [image.pk])
    return Image.objects.get(pk=image.pk)


@pytest.fixture
def pending(dataset):
    return [factories.add_image(dataset, seed=i) for i in range(4)]


def test_marking_copies_the_masks_and_sets_the_image_done(dataset, dataset_admin, truth_image):
    truth = GroundTruthImage.objects.get(image=truth_image)
    assert truth.marked_by == dataset_admin and truth.stage == 1
    assert list(truth.masks.values_list("rle", flat=True)) == TRUTH
    assert truth_image.status == ImageStatus.DONE
    # Later edits of the dataset's masks do not move the truth.
    Mask.objects.filter(image=truth_image).update(rle=rect(0, 0, 2, 2))
    assert list(truth.masks.values_list("rle", flat=True)) == TRUTH


def test_marking_refuses_images_without_masks_elsewhere_or_already_marked(
    dataset, dataset_admin, other_dataset, truth_image
):
    bare = factories.add_image(dataset, seed=7)
    foreign = factories.add_image(other_dataset, seed=8)
    for ids, words in [
        ([bare.pk], "have no masks"),
        ([foreign.pk], "are not in dataset"),
        ([truth_image.pk], "ground truth already"),
        ([], "at least one"),
    ]:
        with pytest.raises(InvalidInput, match=words):
            mark_ground_truth(dataset, dataset_admin, ids)
    assert GroundTruthImage.objects.count() == 1


def test_shares_are_checked_and_named(dataset, dataset_admin):
    for fields, name in [
        ({"ground_truth_share": 0.6}, "ground_truth_share"),
        ({"ground_truth_share": float("nan")}, "ground_truth_share"),
        ({"double_share": -0.1}, "double_share"),
        ({"double_share": 1.5}, "double_share"),
    ]:
        with pytest.raises(InvalidInput, match=name):
            update_quality_settings(dataset, dataset_admin, **fields)
    answer = update_quality_settings(dataset, dataset_admin, ground_truth_share=0.05)
    assert (answer["ground_truth_share"], answer["double_share"]) == (0.05, 0.0)


def test_the_draw_hits_the_share_and_is_reproducible():
    draws = [draws_ground_truth(3, 11, n, 0.05) for n in range(20000)]
    assert 0.045 < sum(draws) / len(draws) < 0.055
    assert draws == [draws_ground_truth(3, 11, n, 0.05) for n in range(20000)]
    assert draws != [draws_ground_truth(3, 12, n, 0.05) for n in range(20000)]


def test_claims_follow_the_draw_and_never_repeat_a_ground_truth_image(
    dataset, annotator, truth_image, pending
):
    set_shares(dataset, ground_truth=0.5)
    expected = [draws_ground_truth(dataset.pk, annotator.pk, n, 0.5) for n in range(4)]
    handed = []
    for _ in range(4):
        image = claim_next_image(dataset, annotator, 1)
        handed.append(image.pk)
        complete_image(image, annotator)
    # The first drawn hand-out is the ground-truth image; a later draw finds none left undone
    # by this annotator, so that claim takes an ordinary image.
    first_gt = expected.index(True) if True in expected else None
    got = [pk == truth_image.pk for pk in handed]
    assert got == [n == first_gt for n in range(4)]
    assert AnnotatorDraw.objects.get(annotator=annotator).claims == 4


def test_a_ground_truth_claim_is_shown_as_held_but_the_image_row_is_untouched(
    dataset, annotator, dataset_admin, truth_image, pending
):
    set_shares(dataset, ground_truth=0.5)
    next_claim_draws(dataset, annotator, 0.5)
    image = claim_next_image(dataset, annotator, 1)

    assert image.pk == truth_image.pk
    assert (image.status, image.held_by) == (ImageStatus.PENDING, annotator)
    row = Image.objects.get(pk=image.pk)
    assert (row.status, row.held_by_id) == (ImageStatus.DONE, None)
    # Asking again resumes it; another annotator is not handed it as ordinary work.
    assert claim_next_image(dataset, annotator, 1).pk == truth_image.pk
    next_claim_draws(dataset, dataset_admin, 0.5, ground_truth=False)
    assert claim_next_image(dataset, dataset_admin, 1).pk == pending[0].pk


def test_releasing_a_ground_truth_image_drops_the_attempt_only(
    dataset, annotator, truth_image, pending
):
    set_shares(dataset, ground_truth=0.5)
    next_claim_draws(dataset, annotator, 0.5)
    image = claim_next_image(dataset, annotator, 1)
    shown = release_image(image, annotator, skip=True)

    assert shown.status == ImageStatus.SKIPPED
    (attempt,) = QualityAttempt.objects.all()
    assert attempt.released_at is not None and attempt.completed_at is None
    assert open_attempt(truth_image, annotator) is None
    assert Image.objects.get(pk=truth_image.pk).status == ImageStatus.DONE
    # The annotator is not handed it again, and it counts in no figure.
    next_claim_draws(dataset, annotator, 0.5)
    assert claim_next_image(dataset, annotator, 1).pk == pending[0].pk
    assert annotator_accuracy(dataset)["annotators"] == []


def test_attempt_figures_are_exact_and_its_masks_stay_out_of_the_dataset(
    dataset, annotator, truth_image, pending, tmp_path
):
    set_shares(dataset, ground_truth=0.5)
    stats_before = dataset_stats(dataset)
    next_claim_draws(dataset, annotator, 0.5)
    image = claim_next_image(dataset, annotator, 1)
    attempt = open_attempt(image, annotator)
    session, _ = start_session(image, annotator)
    drawn = [
        (rect(2, 0, 12, 10), 3.0),  # the first object shifted: IoU 80/120
        (rect(21, 21, 29, 29), 5.0),  # the second eroded: IoU 64/100
        (rect(50, 30, 60, 40), 4.0),  # an object the truth does not have; the third is missed
    ]
    for rle, seconds in drawn:
        add_attempt_mask(
            attempt,
            image,
            annotator,
            rle=rle,
            source="manual",
            seconds_spent=seconds,
            session=session,
        )
    finish_session(session)
    complete_image(Image.objects.get(pk=image.pk), annotator)

    attempt.refresh_from_db()
    assert attempt.completed_at is not None
    assert (attempt.reference_masks, attempt.attempt_masks, attempt.matched) == (3, 3, 2)
    assert attempt.iou_sum == pytest.approx(80 / 120 + 0.64)
    report = annotator_accuracy(dataset, "day")["annotators"]
    assert len(report) == 1 and report[0]["username"] == annotator.username
    figures = report[0]
    assert figures["attempts"] == 1
    assert figures["mean_iou"] == pytest.approx((80 / 120 + 0.64) / 2)
    assert (figures["missed_per_image"], figures["extra_per_image"]) == (1.0, 1.0)
    assert figures["seconds_per_mask"] == pytest.approx(4.0)
    assert [p["attempts"] for p in figures["over_time"]] == [1]
    # The dataset's masks, its statistics and its export did not change.
    assert Mask.objects.filter(image=truth_image).count() == 3
    assert Image.objects.get(pk=truth_image.pk).status == ImageStatus.DONE
    stats_after = dataset_stats(dataset)
    for key in ("images", "masks_per_image", "annotators", "seconds_per_mask"):
        assert stats_after[key] == stats_before[key], key
    assert stats_after["annotators"] == []  # the session on the attempt is not the dataset's
    export_coco(dataset, tmp_path / "out.json")
    doc = json.loads((tmp_path / "out.json").read_text())
    assert sorted(a["bbox"] for a in doc["annotations"]) == sorted(
        Mask.objects.values_list("bbox", flat=True)
    )
    assert len(doc["annotations"]) == 3
