"""The export, annotation-import and statistics endpoints: answers, downloads and who may
call them (anonymous / annotator / annotator of another dataset / dataset admin / staff)."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from annotation.models import Export, Mask
from annotation.services.exports import queue_export, run_export
from engine import rle as rle_codec
from tests import factories
from tests.exports.conftest import add_mask, blob

pytestmark = pytest.mark.django_db

ANON = (401, 403)


@pytest.fixture
def done_export(dataset, dataset_admin):
    for seed in (1, 2, 3):
        image = factories.add_image(dataset, seed=seed)
        add_mask(image, blob(image, 20, 20, 6))
    export = queue_export(dataset, dataset_admin, shard_size=2)
    run_export(export)
    export.refresh_from_db()
    assert export.status == "done", export.error
    return export


def coco_upload(image) -> SimpleUploadedFile:
    doc = {
        "images": [{"id": 1, "file_name": image.original_name, "width": 64, "height": 48}],
        "annotations": [
            {"id": 9, "image_id": 1, "segmentation": rle_codec.encode(blob(image, 9, 9, 4))}
        ],
    }
    return SimpleUploadedFile("coco.json", json.dumps(doc).encode())


def test_start_export_answers_202_and_queues_it(
    dataset, client_for, dataset_admin, django_capture_on_commit_callbacks
):
    image = factories.add_image(dataset, seed=1)
    add_mask(image, blob(image, 20, 20, 6), "automatic", predicted_iou=0.7)
    client = client_for(dataset_admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/api/datasets/{dataset.pk}/exports/",
            {"shard_size": 10, "min_predicted_iou": 0.5, "source": "automatic"},
            format="json",
        )
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "queued" and body["download_url"] is None
    assert body["filters"] == {"source": "automatic", "min_predicted_iou": 0.5}
    status = client.get(f"/api/exports/{body['id']}/").json()
    assert status["status"] == "done"
    assert (status["progress_done"], status["progress_total"]) == (1, 1)
    assert status["download_url"] == f"/api/exports/{body['id']}/download/"
    assert [e["id"] for e in client.get(f"/api/datasets/{dataset.pk}/exports/").json()] == [
        body["id"]
    ]


@pytest.mark.parametrize(
    "body", [{"format": "zip"}, {"shard_size": 0}, {"stage": 9}, {"min_stability_score": 2}]
)
def test_bad_export_requests_answer_400(dataset, client_for, dataset_admin, body):
    response = client_for(dataset_admin).post(
        f"/api/datasets/{dataset.pk}/exports/", body, format="json"
    )
    assert response.status_code == 400, response.content
    assert not Export.objects.exists()


def test_download_manifest_and_each_shard(done_export, client_for, dataset_admin):
    client = client_for(dataset_admin)
    url = f"/api/exports/{done_export.pk}/download/"
    manifest = json.loads(b"".join(client.get(url).streaming_content))
    assert [s["file"] for s in manifest["shards"]] == ["sa_000000.tar", "sa_000001.tar"]
    response = client.get(url, {"shard": 1})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-tar"
    assert 'filename="sa_000001.tar"' in response["Content-Disposition"]
    with tarfile.open(fileobj=io.BytesIO(b"".join(response.streaming_content))) as archive:
        assert len(archive.getnames()) == 2  # the last image, jpg + json
    first = client.get(url, {"shard": 0})
    assert first.status_code == 200 and 'filename="sa_000000.tar"' in first["Content-Disposition"]
    assert client.get(url, {"shard": 2}).status_code == 400
    assert client.get(url, {"shard": "x"}).status_code == 400
    assert client.get(url, {"shard": -1}).status_code == 400


def test_an_export_made_before_the_meta_folder_still_downloads(
    done_export, client_for, dataset_admin
):
    out = Path(done_export.output)
    (out / "meta" / "manifest.json").rename(out / "manifest.json")  # the earlier layout
    (out / "meta" / "sa_images_ids.txt").rename(out / "sa_images_ids.txt")
    (out / "meta").rmdir()
    response = client_for(dataset_admin).get(f"/api/exports/{done_export.pk}/download/")
    assert response.status_code == 200
    assert 'filename="manifest.json"' in response["Content-Disposition"]
    manifest = json.loads(b"".join(response.streaming_content))
    assert [s["file"] for s in manifest["shards"]] == ["sa_000000.tar", "sa_000001.tar"]


def test_download_of_an_unfinished_export_is_a_conflict(dataset, client_for, dataset_admin):
    export = Export.objects.create(dataset=dataset)
    response = client_for(dataset_admin).get(f"/api/exports/{export.pk}/download/")
    assert response.status_code == 409
    assert response.json()["detail"] == f"export {export.pk} is queued, not done"


def test_upload_coco_imports_masks(dataset, client_for, dataset_admin):
    image = factories.add_image(dataset, seed=1)
    response = client_for(dataset_admin).post(
        f"/api/datasets/{dataset.pk}/annotation-imports/",
        {"file": coco_upload(image)},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    assert response.json()["masks_imported"] == 1
    assert Mask.objects.get().source == "imported"


def test_upload_of_garbage_answers_400_with_the_reason(dataset, client_for, dataset_admin):
    url = f"/api/datasets/{dataset.pk}/annotation-imports/"
    client = client_for(dataset_admin)
    response = client.post(
        url, {"file": SimpleUploadedFile("x.json", b'{"images": [')}, format="multipart"
    )
    assert response.status_code == 400
    assert response.json()["detail"].startswith("not a readable JSON file")
    response = client.post(url, {}, format="multipart")
    assert response.status_code == 400 and "file" in response.json()


def test_upload_with_only_unknown_images_answers_400(dataset, client_for, dataset_admin):
    other = factories.make_dataset("birds")
    image = factories.add_image(other, seed=5)  # not in "cats"
    response = client_for(dataset_admin).post(
        f"/api/datasets/{dataset.pk}/annotation-imports/",
        {"file": coco_upload(image)},
        format="multipart",
    )
    assert response.status_code == 400
    assert response.json()["skipped"] == [
        {"name": "img-5.png", "reason": "no image named 'img-5.png' in dataset 'cats'"}
    ]


@dataclass
class Case:
    name: str
    method: str
    url: Callable[[Any], str]
    expected: tuple  # (annotator, outsider, dataset admin, staff)
    data: Callable[[Any], Any] | None = None
    multipart: bool = False


CASES = [
    Case(
        "start export",
        "post",
        lambda e: f"/api/datasets/{e.dataset_id}/exports/",
        (403, 404, 202, 202),
        lambda e: {"format": "coco"},
    ),
    Case(
        "list dataset exports",
        "get",
        lambda e: f"/api/datasets/{e.dataset_id}/exports/",
        (403, 404, 200, 200),
    ),
    Case("list exports", "get", lambda e: "/api/exports/", (200, 200, 200, 200)),
    Case("read export", "get", lambda e: f"/api/exports/{e.pk}/", (404, 404, 200, 200)),
    Case("download", "get", lambda e: f"/api/exports/{e.pk}/download/", (404, 404, 200, 200)),
    Case(
        "import annotations",
        "post",
        lambda e: f"/api/datasets/{e.dataset_id}/annotation-imports/",
        (403, 404, 201, 201),
        lambda e: {"file": coco_upload(e.dataset.images.first())},
        True,
    ),
    Case("stats", "get", lambda e: f"/api/datasets/{e.dataset_id}/stats/", (200, 404, 200, 200)),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
@pytest.mark.parametrize("who", ["anonymous", "annotator", "outsider", "dataset_admin", "staff"])
def test_endpoint_permissions(
    case,
    who,
    done_export,
    client_for,
    annotator,
    outsider,
    dataset_admin,
    admin_user,
    other_dataset,
):
    users = {
        "anonymous": None,
        "annotator": annotator,
        "outsider": outsider,
        "dataset_admin": dataset_admin,
        "staff": admin_user,
    }
    kwargs: dict[str, Any] = {}
    if case.data is not None:
        kwargs = {
            "data": case.data(done_export),
            "format": "multipart" if case.multipart else "json",
        }
    response = getattr(client_for(users[who]), case.method)(case.url(done_export), **kwargs)

    if who == "anonymous":
        assert response.status_code in ANON
        return
    expected = dict(
        zip(["annotator", "outsider", "dataset_admin", "staff"], case.expected, strict=True)
    )[who]
    assert response.status_code == expected, getattr(response, "content", b"")[:300]
    if case.name == "list exports":
        listed = [e["id"] for e in response.json()["results"]]
        assert listed == ([done_export.pk] if who in ("dataset_admin", "staff") else [])
