"""The hostile requests of issue 15, one or more of each class, sent over HTTP to a real server
process (gunicorn, tests/hostile/conftest.py), which must answer each with a 4xx and a JSON body
saying what was wrong, keep the same worker process throughout, and then complete an SA-1B
export of the dataset the requests tried to poison."""

from __future__ import annotations

import io
import json
import tarfile

import pytest
import requests
from rest_framework.authtoken.models import Token

from annotation.models import Export, Mask, Role
from engine import rle as rle_codec
from modeltrain.models import TrainingRound
from registry.models import ModelVersion
from tests import factories
from tests.exports.conftest import add_mask, blob

pytestmark = pytest.mark.django_db(transaction=True)

WRAPPED_RUNS = [0, 2**63, 2**63, 48 * 64]  # sums to 2**64 + h*w


def wrapped(compressed: bool) -> dict:
    counts = rle_codec._runs_to_string(WRAPPED_RUNS) if compressed else WRAPPED_RUNS
    return {"size": [48, 64], "counts": counts}


@pytest.fixture
def world(server_process, tiny_model):
    annotator, admin, outsider = (factories.make_user(n) for n in ("annie", "dana", "otto"))
    dataset = factories.make_dataset("cats", [(annotator, Role.ANNOTATOR), (admin, Role.ADMIN)])
    factories.make_dataset("dogs", [(outsider, Role.ANNOTATOR)])
    image = factories.add_image(dataset)
    mask = add_mask(image, blob(image, 20, 20, 7))
    secret = ModelVersion.objects.create(
        name="round-1-cats", model_type="vit_tiny", checkpoint=tiny_model.checkpoint,
        encoder_key=tiny_model.encoder_key, parent=tiny_model, round=1,
        trained_on="round 1 on dataset 'cats'",
    )  # fmt: skip
    TrainingRound.objects.create(dataset=dataset, parent=tiny_model, result=secret)

    def client(user) -> requests.Session:
        session = requests.Session()
        session.headers["Authorization"] = f"Token {Token.objects.create(user=user).key}"
        return session

    return {
        "url": server_process.url,
        "server": server_process,
        "annotator": client(annotator),
        "admin": client(admin),
        "outsider": client(outsider),
        "dataset": dataset,
        "image": image,
        "mask": mask,
        "secret": secret,
    }


def refused(response: requests.Response, status: int, *words: str) -> dict:
    """The answer is ``status`` with a JSON body naming the problem."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    for word in words:
        assert word in json.dumps(body), (word, body)
    return body


def coco_upload(image, segmentation) -> dict:
    doc = {
        "images": [{"id": 1, "file_name": image.original_name, "width": 64, "height": 48}],
        "annotations": [{"id": 1, "image_id": 1, "segmentation": segmentation}],
    }
    return {"file": ("in.json", json.dumps(doc).encode(), "application/json")}


def sa1b_upload(segmentation) -> dict:
    record = {
        "image": {"image_id": 9, "width": 64, "height": 48, "file_name": "sa_9.jpg"},
        "annotations": [{"id": 1, "segmentation": segmentation}],
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in (
            ("sa_9.jpg", factories.image_bytes(64, 48, 3, "JPEG")),
            ("sa_9.json", json.dumps(record).encode()),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return {"file": ("sa.tar", buffer.getvalue(), "application/x-tar")}


def test_hostile_requests_get_4xx_and_the_server_lives_to_export(world):
    url, annotator, admin = world["url"], world["annotator"], world["admin"]
    image, dataset = world["image"], world["dataset"]

    # 1. A wrapped RLE, through the API and both annotation imports.
    for compressed in (False, True):
        body = {"image": image.pk, "rle": wrapped(compressed)}
        refused(annotator.post(f"{url}/api/masks/", json=body), 400, "invalid rle")
    imports = f"{url}/api/datasets/{dataset.pk}/annotation-imports/"
    refused(admin.post(imports, files=coco_upload(image, wrapped(True))), 400, "impossibly long")
    refused(admin.post(imports, files=coco_upload(image, wrapped(False))), 400, "pixels long")
    refused(admin.post(imports, files=sa1b_upload(wrapped(True))), 400, "impossibly long")
    refused(admin.post(imports, files=sa1b_upload(wrapped(False))), 400, "pixels long")
    # 2. The polygon bomb, and numbers no float holds (an OverflowError once).
    bomb = [[0, 0, 1e9, 0, 1e9, 1e9, 0, 1e9]]
    refused(admin.post(imports, files=coco_upload(image, bomb)), 400, "too far outside")
    for number in (10**400, float("inf"), float("nan")):
        polygon = [[0, 0, 10, 0, 10, number]]
        refused(admin.post(imports, files=coco_upload(image, polygon)), 400, "finite numbers")
    # 3. Input that used to be a 500: deep JSON, ids and limits past 64 bits.
    deep = "[" * 50_000 + "]" * 50_000
    headers = {"Content-Type": "application/json"}
    predict = f"{url}/api/images/{image.pk}/predict/"
    assert annotator.post(predict, data=deep, headers=headers).status_code == 400
    for query in (f"image={2**63}", f"dataset={2**64}"):
        assert annotator.get(f"{url}/api/masks/?{query}").status_code in (400, 404), query
    for query in (f"limit={2**63}", "offset=-1", f"offset={2**64}"):  # refused or clamped
        answer = annotator.get(f"{url}/api/masks/?{query}")
        assert answer.status_code < 500 and answer.json() is not None, query
    assert annotator.get(f"{url}/api/masks/{2**63}/").status_code in (400, 404)
    # 4. A delete from a stale version.
    mask = world["mask"]
    Mask.objects.filter(pk=mask.pk).update(version=2)
    refused(admin.delete(f"{url}/api/masks/{mask.pk}/?version=1"), 409, "version 2")
    # 5. No other dataset's model version.
    listed = world["outsider"].get(f"{url}/api/model-versions/").json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    assert world["secret"].pk not in {row["id"] for row in rows} and "cats" not in str(listed)
    # 6. Password guessing.
    guesses = [
        requests.post(f"{url}/api/auth/token/", json={"username": "annie", "password": "x"})
        for _ in range(7)
    ]
    assert guesses[-1].status_code == 429 and int(guesses[-1].headers["Retry-After"]) >= 1
    # 7. Unbounded "Everything" for an annotator.
    everything = f"{url}/api/images/{image.pk}/everything/"
    refused(annotator.post(everything, json={"points_per_side": 32}), 400, "at most 16x16")
    # 8. The contract: 401 with a challenge, JSON for too many files.
    anonymous = requests.get(f"{url}/api/masks/")
    assert anonymous.status_code == 401 and "Token" in anonymous.headers["WWW-Authenticate"]
    files = [("files", (f"{i}.png", factories.image_bytes(8, 8, i), "image/png")) for i in range(5)]
    too_many = admin.post(f"{url}/api/datasets/{dataset.pk}/images/", files=files)
    assert 400 <= too_many.status_code < 500
    assert too_many.headers["Content-Type"].startswith("application/json")
    # 9. Garbage model outputs.
    garbage = {
        "image": image.pk,
        "rle": rle_codec.encode(blob(image, 9, 9, 4)),
        "predicted_iou": -5,
    }
    refused(annotator.post(f"{url}/api/masks/", json=garbage), 400, "predicted_iou")

    world["server"].still_healthy()
    assert Mask.objects.count() == 1  # nothing the requests sent was stored

    started = admin.post(f"{url}/api/datasets/{dataset.pk}/exports/", json={"format": "sa1b"})
    assert started.status_code == 202, started.text
    export = Export.objects.get(pk=started.json()["id"])
    assert export.status == Export.Status.DONE, export.error
    assert export.report["masks"] == 1 and export.report["failed_masks"] == []
    world["server"].still_healthy()


def test_a_bad_row_stored_before_the_fix_does_not_stop_an_export(world):
    bad = add_mask(world["image"], blob(world["image"], 40, 20, 5))
    Mask.objects.filter(pk=bad.pk).update(rle=wrapped(True), area=48 * 64)
    url, dataset = world["url"], world["dataset"]

    started = world["admin"].post(f"{url}/api/datasets/{dataset.pk}/exports/", json={})

    assert started.status_code == 202, started.text
    export = Export.objects.get(pk=started.json()["id"])
    assert export.status == Export.Status.DONE, export.error
    assert [f["mask_id"] for f in export.report["failed_masks"]] == [bad.pk]
    assert export.report["masks"] == 1, export.report
    world["server"].still_healthy()
