"""Token and session authentication, who-am-I, the model status, the OpenAPI schema and docs."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def test_token_endpoint_gives_a_token_that_authenticates(annotator, dataset):
    client = APIClient()
    response = client.post(
        "/api/auth/token/", {"username": "annie", "password": "pw-for-tests"}, format="json"
    )
    assert response.status_code == 200
    token = response.json()["token"]

    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    me = client.get("/api/me/")

    assert me.status_code == 200 and me.json()["username"] == "annie"


def test_wrong_password_is_a_400_saying_so(annotator):
    response = APIClient().post(
        "/api/auth/token/", {"username": "annie", "password": "nope"}, format="json"
    )

    assert response.status_code == 400
    assert "Unable to log in" in str(response.json())


def test_session_login_works_for_the_browser(annotator):
    client = APIClient(enforce_csrf_checks=True)
    assert client.login(username="annie", password="pw-for-tests")

    assert client.get("/api/me/").status_code == 200


def test_session_posts_need_the_csrf_token(annotator, dataset):
    client = APIClient(enforce_csrf_checks=True)
    client.login(username="annie", password="pw-for-tests")

    response = client.post(f"/api/datasets/{dataset.pk}/next-image/", {"stage": 1}, format="json")

    assert response.status_code == 403 and "CSRF" in response.json()["detail"]


def test_me_lists_datasets_with_roles(annotator_client, dataset, other_dataset):
    body = annotator_client.get("/api/me/").json()

    assert body["is_staff"] is False
    assert body["datasets"] == [{"id": dataset.pk, "name": "cats", "role": "annotator"}]


def test_me_for_staff_lists_every_dataset_as_admin(admin_client, dataset, other_dataset):
    body = admin_client.get("/api/me/").json()

    assert {d["name"]: d["role"] for d in body["datasets"]} == {"cats": "admin", "dogs": "admin"}


def test_model_status_says_which_model_answers(annotator_client, tiny_model):
    body = annotator_client.get("/api/model/").json()

    assert body["name"] == tiny_model.name and body["model_type"] == "vit_tiny"
    assert body["is_official"] is False
    assert "python -m engine.checkpoints download vit_b" in body["hint"]
    assert body["precision"] == "fp32"


def test_model_status_and_page_say_the_precision(
    annotator_client, annotator, client, tiny_model, settings
):
    settings.SAM_PRECISION = "bf16"

    assert annotator_client.get("/api/model/").json()["precision"] == "bf16"
    client.force_login(annotator)
    page = client.get("/").content.decode()
    assert 'class="precision"' in page and ">bf16</span>" in page


def test_a_broken_configured_checkpoint_is_a_503_with_the_reason(
    annotator_client, settings, tmp_path
):
    path = tmp_path / "broken.pth"
    path.write_bytes(b"garbage")
    settings.SAM_MODEL_TYPE, settings.SAM_CHECKPOINT = "vit_b", str(path)

    response = annotator_client.get("/api/model/")

    assert response.status_code == 503 and "broken.pth" in response.json()["detail"]


def test_openapi_schema_describes_the_endpoints(anon_client):
    response = anon_client.get("/api/schema/", HTTP_ACCEPT="application/json")

    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in [
        "/api/images/{id}/predict/",
        "/api/datasets/{id}/images/",
        "/api/datasets/{id}/next-image/",
        "/api/masks/",
        "/api/sessions/{id}/heartbeat/",
        "/api/auth/token/",
    ]:
        assert path in paths


def test_docs_page_loads_its_assets_from_this_server(anon_client):
    response = anon_client.get("/api/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html and "/static/drf_spectacular_sidecar/" in html
    assert "cdn.jsdelivr.net" not in html and "unpkg.com" not in html


def test_schema_generates_without_warnings(tmp_path):
    from django.core.management import call_command

    out = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))

    assert "/api/images/{id}/predict/" in out.read_text()
