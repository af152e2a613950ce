"""Un-marking ground truth (a truth found wrong, or marked by mistake): the frozen truth goes,
the image and its masks stay, the measurements against it are kept but leave every figure, an
attempt still open is released so its late saves are refused, and the image can be marked
again later, without handing it to annotators who have seen it."""

from __future__ import annotations

import pytest

from annotation.models import (
    GroundTruthImage,
    GroundTruthMask,
    Image,
    ImageStatus,
    Mask,
    QualityAttempt,
    Role,
)
from annotation.services.attempt_masks import add_attempt_mask
from annotation.services.errors import InvalidInput
from annotation.services.ground_truth import (
    ground_truth_images,
    mark_ground_truth,
    unmark_ground_truth,
)
from annotation.services.image_holds import claim_next_image, complete_image
from annotation.services.quality_claims import open_attempt
from annotation.services.quality_reports import annotator_accuracy
from annotation.services.sessions import start_session
from tests import factories
from tests.quality.conftest import rect
from tests.quality.helpers import next_claim_draws, set_shares

pytestmark = pytest.mark.django_db
TRUTH = [rect(0, 0, 10, 10), rect(20, 20, 30, 30)]


def url(dataset, what="ground-truth/unmark"):
    return f"/api/datasets/{dataset.pk}/quality/{what}/"


def truth_of(dataset, admin, seed=100) -> Image:
    image = factories.add_image(dataset, seed=seed)
    for rle in TRUTH:
        factories.add_mask(image, rle=rle)
    mark_ground_truth(dataset, admin, [image.pk])
    return Image.objects.get(pk=image.pk)


def member(dataset, name, role=Role.ANNOTATOR):
    user = factories.make_user(name)
    dataset.memberships.create(user=user, role=role)
    return user


def check_claimed(dataset, user) -> Image:
    next_claim_draws(dataset, user, 0.5)
    return claim_next_image(dataset, user, 1)


def test_unmarking_withdraws_the_truth_and_its_measurements_and_loses_nothing(
    dataset, annotator, dataset_admin, client_for
):
    set_shares(dataset, ground_truth=0.5)
    truth = truth_of(dataset, dataset_admin)
    ordinary = factories.add_image(dataset, seed=1)
    other = member(dataset, "bob")
    # One annotator completes the check, another is in the middle of it.
    done = check_claimed(dataset, annotator)
    assert done.pk == truth.pk
    session, _ = start_session(done, annotator)
    add_attempt_mask(
        open_attempt(done, annotator), done, annotator, rle=TRUTH[0], source="manual",
        seconds_spent=2.0, session=session,
    )  # fmt: skip
    complete_image(Image.objects.get(pk=done.pk), annotator)
    assert check_claimed(dataset, other).pk == truth.pk
    assert [a["username"] for a in annotator_accuracy(dataset)["annotators"]] == ["annie"]
    masks_before = sorted(Mask.objects.filter(image=truth).values_list("pk", "rle"))

    answer = client_for(dataset_admin).post(url(dataset), {"image_ids": [truth.pk]}, format="json")

    assert answer.status_code == 200
    assert answer.json() == [{"image": truth.pk, "attempts_withdrawn": 2}]
    assert not GroundTruthImage.objects.exists() and not GroundTruthMask.objects.exists()
    assert ground_truth_images(dataset) == []
    # The image and its own masks are as they were.
    assert sorted(Mask.objects.filter(image=truth).values_list("pk", "rle")) == masks_before
    assert Image.objects.get(pk=truth.pk).status == ImageStatus.DONE
    # Both attempts are kept, withdrawn, and out of every figure; the open one is released.
    attempts = {a.annotator_id: a for a in QualityAttempt.objects.all()}
    assert all(a.withdrawn_at is not None for a in attempts.values())
    assert attempts[annotator.pk].completed_at is not None
    assert attempts[annotator.pk].masks.count() == 1
    assert attempts[other.pk].released_at is not None and attempts[other.pk].completed_at is None
    assert annotator_accuracy(dataset)["annotators"] == []
    # The annotator still on the page: a late save is refused, never stored in the dataset.
    late = {"image": truth.pk, "rle": rect(0, 0, 5, 5), "source": "manual"}
    refused = client_for(other).post("/api/masks/", late, format="json")
    assert refused.status_code == 409
    assert Mask.objects.filter(image=truth).count() == len(TRUTH)
    # Nobody is handed it as a check any more: the draw finds no truth, the claim is ordinary.
    assert check_claimed(dataset, member(dataset, "cleo")).pk == ordinary.pk


def test_an_unmarked_image_can_be_marked_again_for_those_who_have_not_seen_it(
    dataset, annotator, dataset_admin
):
    set_shares(dataset, ground_truth=0.5)
    truth = truth_of(dataset, dataset_admin)
    factories.add_image(dataset, seed=1)
    image = check_claimed(dataset, annotator)
    complete_image(image, annotator)
    unmark_ground_truth(dataset, dataset_admin, [truth.pk])
    Mask.objects.filter(image=truth).update(rle=rect(0, 0, 12, 12))  # the truth corrected

    (again,) = mark_ground_truth(dataset, dataset_admin, [truth.pk])
    assert list(again.masks.values_list("rle", flat=True)) == [rect(0, 0, 12, 12)] * 2
    (row,) = ground_truth_images(dataset)
    assert row["attempts_done"] == 0  # the withdrawn attempt does not count for the new truth
    assert check_claimed(dataset, annotator).pk != truth.pk  # seen it: not a fair check
    assert check_claimed(dataset, member(dataset, "dora")).pk == truth.pk


def test_unmarking_is_all_or_nothing_and_says_what_was_wrong(
    dataset, dataset_admin, other_dataset, outsider
):
    truth = truth_of(dataset, dataset_admin)
    plain = factories.add_image(dataset, seed=2)
    foreign = truth_of(other_dataset, outsider, seed=3)
    for ids, words in [
        ([truth.pk, plain.pk], f"images [{plain.pk}] are not ground truth"),
        ([foreign.pk], "not ground truth of dataset 'cats'"),
        ([], "at least one"),
        (list(range(1, 1003)), "at most 1000"),
    ]:
        with pytest.raises(InvalidInput, match=words.replace("[", r"\[").replace("]", r"\]")):
            unmark_ground_truth(dataset, dataset_admin, ids)
    assert GroundTruthImage.objects.count() == 2


def test_only_admins_unmark(dataset, dataset_admin, client_for, annotator_client, outsider_client):
    truth = truth_of(dataset, dataset_admin)
    body = {"image_ids": [truth.pk]}
    reviewer = member(dataset, "rita", Role.REVIEWER)
    assert outsider_client.post(url(dataset), body, format="json").status_code == 404
    assert annotator_client.post(url(dataset), body, format="json").status_code == 403
    assert client_for(reviewer).post(url(dataset), body, format="json").status_code == 403
    bad = client_for(dataset_admin).post(url(dataset), {"image_ids": ["x"]}, format="json")
    assert bad.status_code == 400 and "image_ids" in bad.json()
    assert GroundTruthImage.objects.count() == 1
    assert client_for(dataset_admin).post(url(dataset), body, format="json").status_code == 200
    again = client_for(dataset_admin).post(url(dataset), body, format="json")
    assert again.status_code == 400 and "not ground truth" in again.json()["detail"]
