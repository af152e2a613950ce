"""Uploading images through the API: a report per batch, good files kept from bad batches."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from annotation.models import Image
from tests import factories

pytestmark = pytest.mark.django_db


def files(**named: bytes) -> dict:
    return {"files": [SimpleUploadedFile(name, data) for name, data in named.items()]}


@pytest.fixture
def url(dataset):
    return f"/api/datasets/{dataset.pk}/images/"


def test_all_good_files_answer_201_with_the_report(admin_client, url):
    response = admin_client.post(
        url,
        files(
            **{
                "a.png": factories.image_bytes(seed=1),
                "b.jpg": factories.image_bytes(seed=2, fmt="JPEG"),
            }
        ),
        format="multipart",
    )

    assert response.status_code == 201
    body = response.json()
    assert [item["name"] for item in body["imported"]] == ["a.png", "b.jpg"]
    assert body["duplicates"] == [] and body["rejected"] == []


def test_a_mixed_batch_answers_207_and_imports_the_good_files(admin_client, url):
    existing = admin_client.post(url, files(**{"old.png": factories.image_bytes(seed=1)}))
    old_id = existing.json()["imported"][0]["id"]

    response = admin_client.post(
        url,
        files(
            **{
                "again.png": factories.image_bytes(seed=1),
                "new.png": factories.image_bytes(seed=2),
                "empty.png": b"",
                "text.png": b"just text",
            }
        ),
        format="multipart",
    )

    assert response.status_code == 207
    body = response.json()
    assert [item["name"] for item in body["imported"]] == ["new.png"]
    assert body["duplicates"] == [{"name": "again.png", "existing_id": old_id}]
    reasons = {item["name"]: item["reason"] for item in body["rejected"]}
    assert "empty" in reasons["empty.png"] and "not an image" in reasons["text.png"]
    assert Image.objects.count() == 2


def test_only_duplicates_answer_200(admin_client, url):
    admin_client.post(url, files(**{"a.png": factories.image_bytes(seed=1)}))

    response = admin_client.post(url, files(**{"a.png": factories.image_bytes(seed=1)}))

    assert response.status_code == 200 and len(response.json()["duplicates"]) == 1


def test_nothing_importable_answers_400_with_each_reason(admin_client, url):
    response = admin_client.post(url, files(**{"x.txt": b"hello", "y.gif": b"GIF89a...."}))

    assert response.status_code == 400
    reasons = [item["reason"] for item in response.json()["rejected"]]
    assert "not an image" in reasons[0] and "GIF is not supported" in reasons[1]


def test_a_zip_upload_is_expanded_and_unsafe_entries_rejected(admin_client, url):
    archive = factories.zip_bytes(
        {
            "ok.png": factories.image_bytes(seed=3),
            "../../etc/evil.png": factories.image_bytes(seed=4),
        }
    )

    response = admin_client.post(url, files(**{"batch.zip": archive}))

    assert response.status_code == 207
    body = response.json()
    assert body["imported"][0]["name"] == "batch.zip/ok.png"
    assert body["rejected"][0]["name"] == "batch.zip/../../etc/evil.png"


def test_short_side_downscales(admin_client, url):
    response = admin_client.post(
        url, {**files(**{"a.png": factories.image_bytes(200, 100)}), "short_side": 50}
    )

    assert (response.json()["imported"][0]["width"], response.json()["imported"][0]["height"]) == (
        100,
        50,
    )


def test_bad_short_side_is_a_400_and_imports_nothing(admin_client, url):
    response = admin_client.post(
        url, {**files(**{"a.png": factories.image_bytes()}), "short_side": -3}
    )

    assert response.status_code == 400 and "short_side" in response.json()
    assert not Image.objects.exists()


def test_no_files_is_a_400_naming_the_field(admin_client, url):
    response = admin_client.post(url, {}, format="multipart")

    assert response.status_code == 400 and "'files'" in response.json()["detail"]


def test_new_images_show_their_embedding_status(admin_client, url):
    admin_client.post(url, files(**{"a.png": factories.image_bytes(seed=8)}))

    listing = admin_client.get(f"{url}?embedding_status=queued").json()

    assert listing["count"] == 1 and listing["results"][0]["embedding_status"] == "queued"
    assert admin_client.get(f"{url}?embedding_status=done").json()["count"] == 0


def test_a_dataset_admin_who_is_not_staff_may_upload(client_for, dataset_admin, url):
    response = client_for(dataset_admin).post(url, files(**{"a.png": factories.image_bytes()}))

    assert response.status_code == 201


def test_server_path_import_is_queued_and_reported(admin_client, dataset, tmp_path):
    (tmp_path / "a.png").write_bytes(factories.image_bytes(seed=5))

    response = admin_client.post(
        f"/api/datasets/{dataset.pk}/import-path/", {"path": str(tmp_path)}, format="json"
    )

    assert response.status_code == 202 and response.json()["status"] == "queued"
    job_id = response.json()["id"]
    assert admin_client.get(f"/api/import-jobs/{job_id}/").json()["status"] == "queued"


def test_server_path_import_of_a_missing_or_relative_path_is_a_400(admin_client, dataset, tmp_path):
    url = f"/api/datasets/{dataset.pk}/import-path/"
    missing = admin_client.post(url, {"path": str(tmp_path / "nope")}, format="json")
    relative = admin_client.post(url, {"path": "photos"}, format="json")

    assert missing.status_code == 400 and "does not exist" in missing.json()["detail"]
    assert relative.status_code == 400 and "absolute" in relative.json()["detail"]


def test_a_dataset_admin_may_not_import_from_the_servers_disk(
    client_for, dataset_admin, dataset, tmp_path
):
    response = client_for(dataset_admin).post(
        f"/api/datasets/{dataset.pk}/import-path/", {"path": str(tmp_path)}, format="json"
    )

    assert response.status_code == 403 and "staff" in response.json()["detail"]
