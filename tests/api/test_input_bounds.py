"""Input that used to crash a view (a 500) is a 400 or 404 saying what was wrong: JSON nested
too deeply, ids beyond the database's 64-bit integers, pagination parameters out of range."""

from __future__ import annotations

import pytest

from annotation.api.pagination import MAX_LIMIT, BoundedLimitOffsetPagination
from annotation.models import Role
from tests import factories

pytestmark = pytest.mark.django_db

HUGE = 2**64
JUST_OVER = 2**63


@pytest.mark.parametrize("depth", [40, 100_000])
def test_json_nested_too_deeply_is_a_400(annotator_client, image, depth):
    body = "[" * depth + "]" * depth

    response = annotator_client.post(
        f"/api/images/{image.pk}/predict/", body, content_type="application/json"
    )

    assert response.status_code == 400
    assert "nested too deeply" in response.json()["detail"]


def test_the_token_endpoint_refuses_deep_json_too(anon_client):
    body = '{"username": ' + "[" * 100_000 + "]" * 100_000 + "}"

    response = anon_client.post("/api/auth/token/", body, content_type="application/json")

    assert response.status_code == 400 and "nested too deeply" in response.json()["detail"]


def test_json_of_ordinary_depth_is_read(annotator_client, image, tiny_model):
    response = annotator_client.post(
        f"/api/images/{image.pk}/predict/", {"points": [[30, 20]], "labels": [1]}, format="json"
    )

    assert response.status_code == 200


@pytest.mark.parametrize(
    "query",
    [
        f"/api/images/?dataset={HUGE}",
        f"/api/masks/?image={JUST_OVER}",
        f"/api/masks/?dataset={HUGE}",
        "/api/masks/?image=-1",
        "/api/masks/?image=1.5",
        f"/api/automatic-passes/?dataset={HUGE}",
        f"/api/training-rounds/?dataset={HUGE}",
    ],
)
def test_an_id_filter_beyond_the_database_range_is_a_400(annotator_client, query):
    response = annotator_client.get(query)

    assert response.status_code == 400, response.content
    assert "is not an id" in response.json()["detail"]


@pytest.mark.parametrize(
    "path",
    [
        f"/api/masks/{HUGE}/",
        f"/api/images/{JUST_OVER}/",
        f"/api/datasets/{HUGE}/stats/",
        f"/api/images/{HUGE}/everything/",
        f"/api/model-versions/{HUGE}/",
    ],
)
def test_a_path_id_beyond_the_database_range_is_a_404(annotator_client, path):
    method = annotator_client.post if path.endswith("everything/") else annotator_client.get

    response = method(path, {}, format="json")

    assert response.status_code == 404 and response.json()["detail"]


def test_image_ids_beyond_the_database_range_are_a_400(client_for, dataset_admin, dataset):
    response = client_for(dataset_admin).post(
        f"/api/datasets/{dataset.pk}/images/stage/",
        {"image_ids": [1, HUGE], "stage": 2},
        format="json",
    )

    assert response.status_code == 400
    assert "image_ids" in response.json() and response.json()["detail"]


def test_an_automatic_pass_over_images_beyond_the_range_is_a_400(
    client_for, dataset_admin, dataset, tiny_model
):
    response = client_for(dataset_admin).post(
        f"/api/datasets/{dataset.pk}/automatic-passes/", {"image_ids": [HUGE]}, format="json"
    )

    assert response.status_code == 400 and "image_ids" in response.json()


@pytest.mark.parametrize("field", ["image", "session", "model_version"])
def test_ids_beyond_the_range_in_a_mask_are_a_400(annotator_client, image, field):
    body = {"image": image.pk, "rle": {"size": [48, 64], "counts": "0PP3"}, field: HUGE}

    response = annotator_client.post("/api/masks/", body, format="json")

    assert response.status_code == 400 and field in response.json()


def test_a_session_on_an_image_beyond_the_range_is_a_400(annotator_client):
    response = annotator_client.post("/api/sessions/", {"image": HUGE}, format="json")

    assert response.status_code == 400 and "image" in response.json()


@pytest.mark.parametrize(
    "params",
    ["limit=-1", "limit=0", "limit=ten", "offset=-5", "offset=x", f"offset={JUST_OVER}"],
)
def test_pagination_parameters_out_of_range_are_a_400(annotator_client, dataset, params):
    response = annotator_client.get(f"/api/datasets/?{params}")

    assert response.status_code == 400
    assert params.split("=")[0] in response.json()


@pytest.mark.parametrize("limit", [3, JUST_OVER, HUGE])
def test_a_limit_above_the_maximum_is_served_as_the_maximum(
    annotator_client, annotator, dataset, limit, monkeypatch
):
    monkeypatch.setattr(BoundedLimitOffsetPagination, "max_limit", 2)
    for name in ("a", "b"):
        factories.make_dataset(name, [(annotator, Role.ANNOTATOR)])

    response = annotator_client.get(f"/api/datasets/?limit={limit}")

    assert response.status_code == 200
    assert len(response.json()["results"]) == 2 and "limit=2" in response.json()["next"]


def test_the_maximum_limit_is_documented(anon_client):
    schema = anon_client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    limit = next(
        p for p in schema["paths"]["/api/masks/"]["get"]["parameters"] if p["name"] == "limit"
    )

    assert limit["schema"]["minimum"] == 1 and f"at most {MAX_LIMIT}" in limit["description"]


def test_an_offset_past_the_end_is_an_empty_page(annotator_client, dataset):
    response = annotator_client.get("/api/datasets/?offset=1000000&limit=5")

    assert response.status_code == 200 and response.json()["results"] == []
