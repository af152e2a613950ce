"""Quality control through the API: who sees what, and a ground-truth attempt made through the
ordinary annotation endpoints, measured the same as by the services."""

from __future__ import annotations

import pytest

from annotation.models import Image, ImageStatus, Mask, Role
from annotation.services.attempt_masks import ATTEMPT_MASK_ID_BASE
from annotation.services.ground_truth import mark_ground_truth
from tests import factories
from tests.quality.conftest import rect
from tests.quality.helpers import next_claim_draws, set_shares

pytestmark = pytest.mark.django_db

CLIENT_ID = "8c0d2a52-3c1e-4a43-9a55-0f0a3d3b7e01"
ENDPOINTS = ["settings", "ground-truth", "annotators", "agreement"]


def url(dataset, what):
    return f"/api/datasets/{dataset.pk}/quality/{what}/"


@pytest.fixture
def reviewer(dataset):
    user = factories.make_user("rita")
    dataset.memberships.create(user=user, role=Role.REVIEWER)
    return user


@pytest.fixture
def truth_image(dataset, dataset_admin):
    image = factories.add_image(dataset, seed=100)
    for rle in [rect(0, 0, 10, 10), rect(20, 20, 30, 30)]:
        factories.add_mask(image, rle=rle)
    mark_ground_truth(dataset, dataset_admin, [image.pk])
    return image


@pytest.mark.parametrize("what", ENDPOINTS)
def test_outsiders_get_404_and_annotators_403(
    what, dataset, outsider_client, annotator_client, client_for, reviewer
):
    assert outsider_client.get(url(dataset, what)).status_code == 404
    answer = annotator_client.get(url(dataset, what))
    assert answer.status_code == 403 and "reviewers and admins" in answer.json()["detail"]
    assert client_for(reviewer).get(url(dataset, what)).status_code == 200


def test_only_admins_change_settings_and_mark_ground_truth(
    dataset, client_for, reviewer, dataset_admin
):
    image = factories.add_image(dataset, seed=3)
    factories.add_mask(image)
    as_reviewer, as_admin = client_for(reviewer), client_for(dataset_admin)
    body = {"image_ids": [image.pk]}
    assert as_reviewer.patch(url(dataset, "settings"), {"double_share": 0.2}).status_code == 403
    assert as_reviewer.post(url(dataset, "ground-truth"), body, format="json").status_code == 403

    answer = as_admin.patch(url(dataset, "settings"), {"ground_truth_share": 0.05}, format="json")
    assert answer.status_code == 200
    assert (answer.json()["ground_truth_share"], answer.json()["double_share"]) == (0.05, 0.0)
    bad = as_admin.patch(url(dataset, "settings"), {"ground_truth_share": 0.7}, format="json")
    assert bad.status_code == 400 and "ground_truth_share" in bad.json()
    marked = as_admin.post(url(dataset, "ground-truth"), body, format="json")
    assert marked.status_code == 201
    assert [(r["image"], r["truth_masks"]) for r in marked.json()] == [(image.pk, 1)]
    again = as_admin.post(url(dataset, "ground-truth"), body, format="json")
    assert again.status_code == 400 and "already" in again.json()["detail"]


def test_a_ground_truth_attempt_through_the_annotation_endpoints(
    dataset, annotator, annotator_client, client_for, dataset_admin, truth_image
):
    factories.add_image(dataset, seed=1)
    set_shares(dataset, ground_truth=0.5)
    next_claim_draws(dataset, annotator, 0.5)
    claimed = annotator_client.post(
        f"/api/datasets/{dataset.pk}/next-image/", {"stage": 1}, format="json"
    ).json()
    assert claimed["id"] == truth_image.pk
    assert (claimed["status"], claimed["held_by"]) == ("pending", annotator.pk)
    shown = annotator_client.get(f"/api/images/{truth_image.pk}/").json()
    assert (shown["status"], shown["held_by"]) == ("pending", annotator.pk)
    # Every list shows it the same way (a "done" there would give the check away).
    for listing_url in (
        "/api/images/",
        "/api/images/?after=0",
        f"/api/datasets/{dataset.pk}/images/",
    ):
        rows = annotator_client.get(listing_url).json()["results"]
        row = next(r for r in rows if r["id"] == truth_image.pk)
        assert (row["status"], row["held_by"]) == ("pending", annotator.pk), listing_url
    as_admin = client_for(dataset_admin)
    admin_rows = as_admin.get(f"/api/datasets/{dataset.pk}/images/").json()["results"]
    assert next(r for r in admin_rows if r["id"] == truth_image.pk)["status"] == "done"
    assert as_admin.get(f"/api/images/{truth_image.pk}/").json()["status"] == "done"
    # The page opens the image empty: the truth is not shown to the annotator.
    listing = annotator_client.get(f"/api/masks/?image={truth_image.pk}").json()
    assert listing["results"] == []

    made = [
        annotator_client.post(
            "/api/masks/",
            {
                "image": truth_image.pk,
                "rle": rle,
                "source": "manual",
                "seconds_spent": 6.0,
                "client_id": client_id,
            },
            format="json",
        )
        for rle, client_id in [
            (rect(2, 0, 12, 10), None),
            (rect(50, 30, 60, 40), None),
            (rect(20, 20, 30, 30), CLIENT_ID),
        ]
    ]
    assert [m.status_code for m in made] == [201, 201, 201]
    ids = [m.json()["id"] for m in made]
    assert all(pk > ATTEMPT_MASK_ID_BASE for pk in ids)
    assert made[0].json()["author"] == annotator.pk and made[0].json()["stage"] == 1
    listing = annotator_client.get(f"/api/masks/?image={truth_image.pk}").json()
    assert [m["id"] for m in listing["results"]] == ids
    # Others never see the attempt's masks; the dataset keeps its own two.
    assert as_admin.get(f"/api/masks/{ids[0]}/").status_code == 404
    assert len(as_admin.get(f"/api/masks/?image={truth_image.pk}").json()["results"]) == 2

    fixed = annotator_client.patch(
        f"/api/masks/{ids[0]}/", {"rle": rect(1, 0, 11, 10), "version": 1}, format="json"
    )
    assert fixed.status_code == 200 and fixed.json()["version"] == 2
    stale = annotator_client.delete(f"/api/masks/{ids[1]}/?version=5")
    assert stale.status_code == 409
    assert annotator_client.delete(f"/api/masks/{ids[1]}/?version=1").status_code == 204

    done = annotator_client.post(f"/api/images/{truth_image.pk}/complete/")
    assert done.status_code == 200 and done.json()["status"] == "done"
    assert Image.objects.get(pk=truth_image.pk).status == ImageStatus.DONE
    assert Mask.objects.filter(image=truth_image).count() == 2
    # A save arriving late (a retry) is answered with the attempt's mask or refused; it never
    # lands among the dataset's masks.
    late = {"image": truth_image.pk, "rle": rect(0, 0, 5, 5), "source": "manual"}
    retry = annotator_client.post("/api/masks/", {**late, "client_id": CLIENT_ID}, format="json")
    assert retry.status_code == 200 and retry.json()["id"] == ids[2]
    refused = annotator_client.post("/api/masks/", late, format="json")
    assert refused.status_code == 409
    assert Mask.objects.filter(image=truth_image).count() == 2
    # The next claim hands out an ordinary image, never this one again.
    next_claim_draws(dataset, annotator, 0.5)
    again = annotator_client.post(
        f"/api/datasets/{dataset.pk}/next-image/", {"stage": 1}, format="json"
    )
    assert again.json()["id"] != truth_image.pk

    report = as_admin.get(url(dataset, "annotators") + "?period=week").json()
    (row,) = report["annotators"]
    assert row["username"] == annotator.username and row["attempts"] == 1
    assert row["matched"] == 2 and row["mean_iou"] == pytest.approx((90 / 110 + 1.0) / 2)
    assert (row["missed_per_image"], row["extra_per_image"]) == (0.0, 0.0)
    assert row["seconds_per_mask"] == pytest.approx(6.0)
    assert len(row["over_time"]) == 1
    bad = as_admin.get(url(dataset, "annotators") + "?period=year")
    assert bad.status_code == 400 and "period" in bad.json()
