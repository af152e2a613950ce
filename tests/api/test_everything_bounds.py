""" "Everything" holds a web thread for seconds, so annotators get it within bounds a site admin
sets (grid size, and a smaller grid with the filters off) and at a per-user rate; dataset admins
may use the full 32x32 grid."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db

OFF = {"pred_iou_thresh": 0.0, "stability_score_thresh": 0.0}


def everything(client, image, **body):
    return client.post(f"/api/images/{image.pk}/everything/", body, format="json")


def test_an_annotator_may_not_ask_for_a_grid_above_the_sites_limit(
    annotator_client, image, tiny_model, settings
):
    settings.EVERYTHING_MAX_GRID = 16

    refused = everything(annotator_client, image, points_per_side=32)

    assert refused.status_code == 400
    assert "16x16" in refused.json()["detail"] and "SADE_EVERYTHING_MAX_GRID" in str(refused.json())


def test_with_the_filters_off_an_annotators_grid_is_smaller_still(
    annotator_client, image, tiny_model, settings
):
    settings.EVERYTHING_MAX_GRID, settings.EVERYTHING_MAX_GRID_UNFILTERED = 16, 4

    refused = everything(annotator_client, image, points_per_side=8, **OFF)
    allowed = everything(annotator_client, image, points_per_side=4, **OFF)
    filtered = everything(annotator_client, image, points_per_side=8)

    assert refused.status_code == 400 and "SADE_EVERYTHING_MAX_GRID_UNFILTERED" in str(
        refused.json()
    )
    assert allowed.status_code == 200 and filtered.status_code == 200


def test_a_dataset_admin_may_use_a_grid_above_the_annotators_limit(
    client_for, dataset_admin, image, tiny_model, settings
):
    settings.EVERYTHING_MAX_GRID, settings.EVERYTHING_MAX_GRID_UNFILTERED = 2, 2

    answer = everything(client_for(dataset_admin), image, points_per_side=6, **OFF)

    assert answer.status_code == 200 and answer.json()["config"]["points_per_side"] == 6


def test_everything_over_the_per_user_rate_is_429_with_retry_after(
    annotator_client, image, tiny_model, settings
):
    settings.EVERYTHING_RATE = "2/min"

    answers = [everything(annotator_client, image, points_per_side=2) for _ in range(3)]

    assert [a.status_code for a in answers] == [200, 200, 429]
    assert int(answers[-1]["Retry-After"]) >= 1
    assert "SADE_EVERYTHING_RATE" in answers[-1].json()["detail"]
