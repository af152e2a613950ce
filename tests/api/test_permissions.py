"""Every endpoint for anonymous, an annotator of the dataset, an annotator of another dataset
(who gets 404: other datasets' existence does not leak) and a site admin."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from annotation.models import ImportJob
from annotation.services.masks import accept_mask
from annotation.services.sessions import start_session
from annotation.services.work import claim_next_image
from tests import factories

pytestmark = pytest.mark.django_db

ANON = (401, 403)


@dataclass
class Ctx:
    dataset: Any
    image: Any
    mask: Any
    session: Any
    job: Any
    member: Any
    folder: str


@pytest.fixture
def ctx(dataset, annotator, dataset_admin, tiny_model, tmp_path) -> Ctx:
    image = factories.add_image(dataset)
    claim_next_image(dataset, annotator, 1)
    mask, _ = accept_mask(
        image, annotator, rle=factories.rect_rle(image, 0, 0, 8, 8), source="manual"
    )
    session, _ = start_session(image, annotator)
    folder = tmp_path / "incoming"
    folder.mkdir()
    (folder / "a.png").write_bytes(factories.image_bytes(seed=77))
    job = ImportJob.objects.create(dataset=dataset, path=str(folder))
    return Ctx(dataset, image, mask, session, job, dataset_admin, str(folder))


def upload(c: Ctx) -> dict:
    return {"files": [SimpleUploadedFile("new.png", factories.image_bytes(seed=31))]}


@dataclass
class Case:
    name: str
    method: str
    url: Callable[[Ctx], str]
    expected: tuple  # (annotator, outsider, admin); anonymous is always 401/403
    data: Callable[[Ctx], Any] | None = None
    multipart: bool = False


def d(c: Ctx) -> str:
    return f"/api/datasets/{c.dataset.pk}"


def i(c: Ctx) -> str:
    return f"/api/images/{c.image.pk}"


CASES = [
    Case("me", "get", lambda c: "/api/me/", (200, 200, 200)),
    Case("model status", "get", lambda c: "/api/model/", (200, 200, 200)),
    Case("list datasets", "get", lambda c: "/api/datasets/", (200, 200, 200)),
    Case(
        "create dataset",
        "post",
        lambda c: "/api/datasets/",
        (403, 403, 201),
        lambda c: {"name": "n"},
    ),
    Case("read dataset", "get", lambda c: f"{d(c)}/", (200, 404, 200)),
    Case("rename dataset", "patch", lambda c: f"{d(c)}/", (403, 404, 200), lambda c: {"name": "x"}),
    Case("delete dataset", "delete", lambda c: f"{d(c)}/", (403, 404, 204)),
    Case("list dataset images", "get", lambda c: f"{d(c)}/images/", (200, 404, 200)),
    Case("upload images", "post", lambda c: f"{d(c)}/images/", (403, 404, 201), upload, True),
    Case(
        "bulk stage change",
        "post",
        lambda c: f"{d(c)}/images/stage/",
        (403, 404, 200),
        lambda c: {"image_ids": [c.image.pk], "stage": 2},
    ),
    Case(
        "next image",
        "post",
        lambda c: f"{d(c)}/next-image/",
        (200, 404, 204),  # the one image is held by the annotator: nothing left for others
        lambda c: {"stage": 1},
    ),
    Case("list members", "get", lambda c: f"{d(c)}/members/", (403, 404, 200)),
    Case(
        "add member",
        "post",
        lambda c: f"{d(c)}/members/",
        (403, 404, 201),
        lambda c: {"username": "otto", "role": "reviewer"},
    ),
    Case("remove member", "delete", lambda c: f"{d(c)}/members/{c.member.pk}/", (403, 404, 204)),
    Case(
        "import server path",
        "post",
        lambda c: f"{d(c)}/import-path/",
        (403, 404, 202),
        lambda c: {"path": c.folder},
    ),
    Case("list import jobs", "get", lambda c: "/api/import-jobs/", (200, 200, 200)),
    Case("read import job", "get", lambda c: f"/api/import-jobs/{c.job.pk}/", (404, 404, 200)),
    Case("list images", "get", lambda c: "/api/images/", (200, 200, 200)),
    Case("read image", "get", lambda c: f"{i(c)}/", (200, 404, 200)),
    Case("delete image", "delete", lambda c: f"{i(c)}/", (403, 404, 204)),
    Case("image file", "get", lambda c: f"{i(c)}/file/", (200, 404, 200)),
    Case(
        "predict",
        "post",
        lambda c: f"{i(c)}/predict/",
        (200, 404, 200),
        lambda c: {"points": [[3, 4]], "labels": [1]},
    ),
    Case("release image", "post", lambda c: f"{i(c)}/release/", (200, 404, 200), lambda c: {}),
    Case("complete image", "post", lambda c: f"{i(c)}/complete/", (200, 404, 200), lambda c: {}),
    Case(
        "image stage", "post", lambda c: f"{i(c)}/stage/", (403, 404, 200), lambda c: {"stage": 3}
    ),
    Case("queue embedding", "post", lambda c: f"{i(c)}/embed/", (403, 404, 202), lambda c: {}),
    Case("list masks", "get", lambda c: "/api/masks/", (200, 200, 200)),
    Case(
        "create mask",
        "post",
        lambda c: "/api/masks/",
        (201, 404, 201),
        lambda c: {"image": c.image.pk, "rle": factories.rect_rle(c.image, 1, 1, 9, 9)},
    ),
    Case("read mask", "get", lambda c: f"/api/masks/{c.mask.pk}/", (200, 404, 200)),
    Case(
        "patch mask",
        "patch",
        lambda c: f"/api/masks/{c.mask.pk}/",
        (200, 404, 200),
        lambda c: {"seconds_spent": 4, "version": c.mask.version},
    ),
    Case(
        "put mask",
        "put",
        lambda c: f"/api/masks/{c.mask.pk}/",
        (200, 404, 200),
        lambda c: {"rle": factories.rect_rle(c.image, 2, 2, 9, 9), "version": c.mask.version},
    ),
    Case("delete mask", "delete", lambda c: f"/api/masks/{c.mask.pk}/", (204, 404, 204)),
    Case("list sessions", "get", lambda c: "/api/sessions/", (200, 200, 200)),
    Case(
        "start session",
        "post",
        lambda c: "/api/sessions/",
        (200, 404, 201),
        lambda c: {"image": c.image.pk},
    ),
    Case("read session", "get", lambda c: f"/api/sessions/{c.session.pk}/", (200, 404, 200)),
    Case(
        "heartbeat",
        "post",
        lambda c: f"/api/sessions/{c.session.pk}/heartbeat/",
        (200, 404, 403),
        lambda c: {},
    ),
    Case(
        "finish session",
        "post",
        lambda c: f"/api/sessions/{c.session.pk}/finish/",
        (200, 404, 403),
        lambda c: {},
    ),
]


def call(client, case: Case, c: Ctx):
    kwargs: dict[str, Any] = {}
    if case.data is not None:
        kwargs["data"] = case.data(c)
        kwargs["format"] = "multipart" if case.multipart else "json"
    return getattr(client, case.method)(case.url(c), **kwargs)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
@pytest.mark.parametrize("who", ["anonymous", "annotator", "outsider", "admin"])
def test_endpoint_permissions(
    case, who, ctx, anon_client, client_for, annotator, outsider, admin_user, other_dataset
):
    user = {"anonymous": None, "annotator": annotator, "outsider": outsider, "admin": admin_user}
    response = call(client_for(user[who]), case, ctx)

    if who == "anonymous":
        assert response.status_code in ANON, response.content
        assert "credentials were not provided" in response.json()["detail"]
        return
    expected = dict(zip(["annotator", "outsider", "admin"], case.expected, strict=True))[who]
    assert response.status_code == expected, response.content[:500]
