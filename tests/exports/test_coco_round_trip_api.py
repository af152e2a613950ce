"""The COCO round trip through the HTTP API: upload the file, start a COCO export, download it;
the export's options are validated and recorded."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from annotation.models import Export, Mask
from tests.exports import coco_source

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client_for, dataset_admin):
    return client_for(dataset_admin)


@pytest.fixture
def uploaded(dataset, admin_client):
    coco_source.add_source_images(dataset)
    document = coco_source.source_document()
    upload = SimpleUploadedFile("source.json", json.dumps(document).encode())
    response = admin_client.post(
        f"/api/datasets/{dataset.pk}/annotation-imports/", {"file": upload}, format="multipart"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["masks_imported"] == 15
    assert body["labels_created"] == ["cat", "dog", "traffic light", "unused"]
    return document


def export_through_the_api(client, dataset, body, capture) -> tuple[dict, bytes]:
    with capture(execute=True):
        response = client.post(f"/api/datasets/{dataset.pk}/exports/", body, format="json")
    assert response.status_code == 202, response.content
    export = client.get(f"/api/exports/{response.json()['id']}/").json()
    assert export["status"] == "done", export
    download = client.get(export["download_url"])
    assert download.status_code == 200
    return export, b"".join(download.streaming_content)


def test_upload_then_export_gives_the_same_coco_file(
    dataset, uploaded, admin_client, tmp_path, django_capture_on_commit_callbacks
):
    export, data = export_through_the_api(
        admin_client, dataset, {"format": "coco"}, django_capture_on_commit_callbacks
    )

    assert export["filters"] == {"ids": "source", "coco_format": "instances"}
    assert export["report"]["options"] == {"ids": "source", "coco_format": "instances"}
    assert export["report"]["files"] == ["instances.json"]
    source = coco_source.write(tmp_path / "source.json", uploaded)
    exported = tmp_path / "exported.json"
    exported.write_bytes(data)
    coco_source.assert_same_coco(source, exported)


def test_platform_ids_and_results_through_the_api(
    dataset, uploaded, admin_client, django_capture_on_commit_callbacks
):
    body = {"format": "coco", "ids": "platform", "coco_format": "results", "stage": 1}
    export, data = export_through_the_api(
        admin_client, dataset, body, django_capture_on_commit_callbacks
    )

    assert export["filters"] == {"stage": 1, "ids": "platform", "coco_format": "results"}
    assert export["report"]["files"] == ["results.json"]
    results = json.loads(data)
    masks = {m.pk: m for m in Mask.objects.filter(image__dataset=dataset)}
    assert {r["image_id"] for r in results} == {m.image_id for m in masks.values()}
    assert {r["category_id"] for r in results} == {m.label_id for m in masks.values()}
    assert len(results) == 15 and {r["score"] for r in results} == {1.0}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"format": "coco", "ids": "mine"}, "ids"),
        ({"format": "coco", "coco_format": "panoptic"}, "coco_format"),
        ({"format": "coco", "ids": 3}, "ids"),
        ({"format": "sa1b", "ids": "platform"}, "ids"),
        ({"coco_format": "results"}, "coco_format"),  # SA-1B by default
    ],
)
def test_bad_export_options_answer_400_naming_the_field(dataset, admin_client, body, field):
    response = admin_client.post(f"/api/datasets/{dataset.pk}/exports/", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not Export.objects.exists()
