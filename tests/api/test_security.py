"""Security behaviour beyond the role matrix (tests/api/test_permissions.py): CSRF on
session-authenticated writes, upload size limits, path traversal in zip uploads, the predict
rate limit. A stale mask edit refused with 409 is tests/api/test_mask_concurrency.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation.models import Image
from annotation.services.image_holds import claim_next_image
from tests import factories

pytestmark = pytest.mark.django_db


# --- CSRF ---------------------------------------------------------------------------------------


@pytest.fixture
def session_client(annotator):
    """A browser: logged in through the session cookie, CSRF checks enforced as in production."""
    client = APIClient(enforce_csrf_checks=True)
    assert client.login(username=annotator.username, password="pw-for-tests")
    return client


def test_a_session_write_without_the_csrf_token_is_refused(session_client, dataset):
    response = session_client.post(
        f"/api/datasets/{dataset.pk}/next-image/", {"stage": 1}, format="json"
    )

    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


def test_a_session_write_with_the_csrf_token_is_accepted(session_client, dataset, image):
    session_client.get("/api/auth/login/")  # the login page sets the CSRF cookie
    token = session_client.cookies["csrftoken"].value

    response = session_client.post(
        f"/api/datasets/{dataset.pk}/next-image/",
        {"stage": 1},
        format="json",
        headers={"X-CSRFToken": token},
    )

    assert response.status_code == 200 and response.json()["id"] == image.pk


def test_a_session_read_needs_no_csrf_token(session_client, dataset):
    assert session_client.get(f"/api/datasets/{dataset.pk}/").status_code == 200


def test_token_authentication_needs_no_csrf_token(annotator, dataset, image):
    client = APIClient(enforce_csrf_checks=True)
    token = Token.objects.create(user=annotator).key

    response = client.post(
        f"/api/datasets/{dataset.pk}/next-image/",
        {"stage": 1},
        format="json",
        headers={"Authorization": f"Token {token}"},
    )

    assert response.status_code == 200


# --- Upload size ---------------------------------------------------------------------------------


def upload(name: str, data: bytes) -> dict:
    return {"files": [SimpleUploadedFile(name, data)]}


def test_an_upload_over_the_request_limit_is_refused_with_413_naming_it(
    admin_client, dataset, settings
):
    data = factories.image_bytes(256, 256, seed=5)
    settings.MAX_UPLOAD_BYTES = len(data) // 2

    response = admin_client.post(f"/api/datasets/{dataset.pk}/images/", upload("big.png", data))

    assert response.status_code == 413
    body = response.json()
    assert "SADE_MAX_UPLOAD_BYTES" in body["detail"] and body["limit_bytes"] == len(data) // 2
    assert not Image.objects.exists()


def test_a_json_body_over_its_limit_is_refused_with_413(annotator_client, image, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    points = [[1, 1]] * 500

    response = annotator_client.post(
        f"/api/images/{image.pk}/predict/",
        {"points": points, "labels": [1] * 500},
        format="json",
    )

    assert response.status_code == 413 and "SADE_MAX_REQUEST_BYTES" in response.json()["detail"]


def test_a_file_over_the_per_file_limit_is_rejected_naming_it(admin_client, dataset, settings):
    data = factories.image_bytes(256, 256, seed=6)
    settings.IMPORT_MAX_FILE_BYTES = len(data) - 1

    response = admin_client.post(f"/api/datasets/{dataset.pk}/images/", upload("a.png", data))

    assert response.status_code == 400
    (rejected,) = response.json()["rejected"]
    assert "SADE_IMPORT_MAX_FILE_BYTES" in rejected["reason"]
    assert not Image.objects.exists()


def test_an_image_over_the_pixel_limit_is_rejected(admin_client, dataset, settings):
    settings.IMPORT_MAX_PIXELS = 100 * 100

    response = admin_client.post(
        f"/api/datasets/{dataset.pk}/images/",
        upload("wide.png", factories.image_bytes(200, 100, seed=7)),
    )

    assert response.status_code == 400
    assert "pixels" in response.json()["rejected"][0]["reason"]


# --- Path traversal -----------------------------------------------------------------------------

UNSAFE = ["../../evil.png", "/etc/abs.png", "..\\..\\win.png", "C:/drive.png", "ok/../../up.png"]


def test_zip_entries_that_climb_out_are_refused_and_nothing_is_written_outside(
    admin_client, dataset, isolated_storage: Path
):
    entries = {name: factories.image_bytes(seed=i) for i, name in enumerate(UNSAFE, start=10)}
    entries["fine/ok.png"] = factories.image_bytes(seed=99)

    response = admin_client.post(
        f"/api/datasets/{dataset.pk}/images/",
        upload("batch.zip", factories.zip_bytes(entries)),
    )

    assert response.status_code == 207
    body = response.json()
    assert [item["name"] for item in body["imported"]] == ["batch.zip/fine/ok.png"]
    rejected = {item["name"]: item["reason"] for item in body["rejected"]}
    assert set(rejected) == {f"batch.zip/{name}" for name in UNSAFE}
    assert all("unsafe path" in reason for reason in rejected.values())
    # Stored files are named by their content hash, never by an entry's name.
    (stored,) = Image.objects.all()
    assert stored.file.startswith(f"images/{dataset.pk}/") and ".." not in stored.file
    written = [p.name for p in isolated_storage.parent.rglob("*") if p.is_file()]
    assert not {"evil.png", "abs.png", "win.png", "drive.png", "up.png"} & set(written)


# --- Predict rate limit -------------------------------------------------------------------------


def test_predict_over_the_per_user_rate_is_429_with_retry_after(
    client_for, annotator, outsider, dataset, image, tiny_model, settings
):
    settings.PREDICT_RATE = "3/min"
    claim_next_image(dataset, annotator, 1)
    client = client_for(annotator)
    url = f"/api/images/{image.pk}/predict/"
    click = {"points": [[3, 4]], "labels": [1]}

    answers = [client.post(url, click, format="json") for _ in range(4)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    refused = answers[-1]
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert "at most 3/min predictions per user (SADE_PREDICT_RATE)" in refused.json()["detail"]
    # Per user: another member of the dataset still gets answers.
    dataset.memberships.create(user=outsider, role="annotator")
    assert client_for(outsider).post(url, click, format="json").status_code == 200


def test_an_empty_predict_rate_means_no_limit(annotator_client, image, tiny_model, settings):
    settings.PREDICT_RATE = ""
    url = f"/api/images/{image.pk}/predict/"
    click = {"points": [[3, 4]], "labels": [1]}

    codes = {annotator_client.post(url, click, format="json").status_code for _ in range(5)}

    assert codes == {200}
