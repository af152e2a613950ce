"""Every error under /api/ is JSON with a "detail": whoever answers (DRF, Django's URL resolver,
a plain Django view, an unhandled exception), and requests without credentials get 401 with the
scheme to use."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from tests import factories

pytestmark = pytest.mark.django_db


def test_a_request_without_credentials_is_a_401_naming_the_token_scheme(anon_client):
    response = anon_client.get("/api/datasets/")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert "credentials were not provided" in response.json()["detail"]


def test_a_token_that_is_not_valid_is_a_401(anon_client, annotator):
    anon_client.credentials(HTTP_AUTHORIZATION="Token not-a-token")

    response = anon_client.get("/api/me/")

    assert response.status_code == 401 and response["WWW-Authenticate"] == "Token"


def test_the_browser_still_signs_in_by_session_with_the_csrf_token(annotator, dataset, image):
    client = APIClient(enforce_csrf_checks=True)
    client.login(username="annie", password="pw-for-tests")
    client.get("/api/auth/login/")  # sets the CSRF cookie
    token = client.cookies["csrftoken"].value

    response = client.post(
        f"/api/datasets/{dataset.pk}/next-image/",
        {"stage": 1},
        format="json",
        HTTP_X_CSRFTOKEN=token,
    )

    assert response.status_code == 200 and response.json()["id"] == image.pk


@pytest.mark.parametrize("debug", [False, True])
def test_an_unknown_api_path_is_a_json_404(annotator_client, settings, debug):
    settings.DEBUG = debug  # DEBUG's technical 404 page is HTML too

    response = annotator_client.get("/api/no-such-thing/")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert "/api/no-such-thing/" in response.json()["detail"]


def test_a_path_outside_the_api_keeps_its_html_404(annotator_client):
    response = annotator_client.get("/no-such-page/")

    assert response.status_code == 404 and "json" not in response["Content-Type"]


def test_a_method_a_plain_django_view_does_not_take_is_a_json_405(anon_client):
    response = anon_client.put("/api/auth/logout/")

    assert response.status_code == 405
    assert "PUT" in response.json()["detail"] and "Allow" in response


def test_a_method_an_api_view_does_not_take_is_a_json_405(annotator_client):
    response = annotator_client.put("/api/me/")

    assert response.status_code == 405 and response.json()["detail"]


def test_an_upload_over_the_file_count_limit_is_a_json_413(
    client_for, dataset_admin, dataset, settings
):
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 2
    files = [SimpleUploadedFile(f"{i}.png", factories.image_bytes(seed=i)) for i in range(3)]

    response = client_for(dataset_admin).post(
        f"/api/datasets/{dataset.pk}/images/", {"files": files}, format="multipart"
    )

    assert response.status_code == 413
    assert "at most 2" in response.json()["detail"]
    assert "SADE_MAX_UPLOAD_FILES" in response.json()["detail"]


def test_a_server_bug_under_the_api_is_a_json_500(annotator, monkeypatch):
    from annotation.api.views import account

    def broken(user, description):
        raise RuntimeError("a bug")

    monkeypatch.setattr(account.visibility, "shown_to", broken)
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(annotator)

    response = client.get("/api/model/")

    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert "server error" in response.json()["detail"]


def test_field_errors_come_with_a_detail_that_sums_them_up(annotator_client, image):
    response = annotator_client.post("/api/masks/", {"image": "one"}, format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["image"] == ["A valid integer is required."]
    assert "image: A valid integer is required." in body["detail"]
    assert "rle: This field is required." in body["detail"]
