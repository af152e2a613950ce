"""Every endpoint for anonymous, an annotator of the dataset, an annotator of another dataset
(who gets 404: other datasets' existence does not leak) and a site admin.

``test_every_api_route_and_method_has_a_case`` walks the URL resolver: an endpoint added under
/api/ without a case here fails it, so the matrix stays complete. The few routes anonymous users
may call (logging in, the API's documentation) are listed in PUBLIC with the reason."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import URLResolver, get_resolver, resolve

from annotation.models import (
    AutomaticPass,
    AutomaticPassImage,
    Export,
    ImportJob,
    Label,
    Mask,
    Stage,
)
from annotation.services.audits import start_audit
from annotation.services.automatic_config import resolve_config
from annotation.services.exports import run_export
from annotation.services.ground_truth import mark_ground_truth
from annotation.services.image_holds import claim_next_image
from annotation.services.masks import accept_mask
from annotation.services.sessions import start_session
from modeltrain.models import TrainingRound
from registry.active import get_active_version
from tests import factories

pytestmark = pytest.mark.django_db

# Without credentials: 401 with the scheme to use (WWW-Authenticate: Token), never a bare 403.
ANON = (401,)


SMALL_PASS = {"points_per_side": 2, "crop_n_layers": 0}


@dataclass
class Ctx:
    dataset: Any
    image: Any
    mask: Any
    session: Any
    job: Any
    member: Any
    folder: str
    export: Any
    automatic_pass: Any
    prefilled: Any
    training_round: Any
    audit: Any = None


@pytest.fixture
def ctx(dataset, annotator, dataset_admin, admin_user, tiny_model, tmp_path) -> Ctx:
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
    export = Export.objects.create(dataset=dataset, format=Export.Format.COCO)
    run_export(export)  # done, so that it can be downloaded
    # A pass still queued (its task is not run: on_commit does not fire in these tests).
    automatic_pass = AutomaticPass.objects.create(
        dataset=dataset,
        kind=AutomaticPass.Kind.AUTOMATIC,
        stage=Stage.FULLY_AUTOMATIC,
        config=resolve_config("automatic", SMALL_PASS),
        model_version=get_active_version(),
        total_images=1,
        created_by=admin_user,
    )
    AutomaticPassImage.objects.create(automatic_pass=automatic_pass, image=image)
    prefilled = Mask.objects.create(
        image=image,
        rle=factories.rect_rle(image, 10, 10, 20, 20),
        bbox=[10, 10, 10, 10],
        area=100,
        source="prefilled",
        stage=Stage.SEMI_AUTOMATIC,
        model_version=get_active_version(),
    )
    # A round still queued: launching another on the dataset is then a 409 for staff.
    training_round = TrainingRound.objects.create(
        dataset=dataset, parent=get_active_version(), config={"steps": 1}, total_steps=1
    )
    # An open audit of the pre-filled mask's image (audits: reviewers and admins only).
    audit = start_audit(dataset, dataset_admin, sample_size=1)
    return Ctx(
        dataset,
        image,
        mask,
        session,
        job,
        dataset_admin,
        str(folder),
        export,
        automatic_pass,
        prefilled,
        training_round,
        audit,
    )


def upload(c: Ctx) -> dict:
    return {"files": [SimpleUploadedFile("new.png", factories.image_bytes(seed=31))]}


def coco_upload(c: Ctx) -> dict:
    empty = b'{"images": [], "annotations": [], "categories": []}'
    return {"file": SimpleUploadedFile("instances.json", empty)}


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


def label_url(c: Ctx) -> str:
    label, _ = Label.objects.get_or_create(dataset=c.dataset, name="bench")
    return f"{d(c)}/labels/{label.pk}/"


def i(c: Ctx) -> str:
    return f"/api/images/{c.image.pk}"


def marked_truth(c: Ctx) -> int:
    """A ground-truth image of the dataset (another image with a mask, marked)."""
    image = factories.add_image(c.dataset, seed=91)
    factories.add_mask(image)
    mark_ground_truth(c.dataset, None, [image.pk])
    return image.pk


CASES = [
    Case("api root", "get", lambda c: "/api/", (200, 200, 200)),
    Case("me", "get", lambda c: "/api/me/", (200, 200, 200)),
    Case("me today", "get", lambda c: "/api/me/today/", (200, 200, 200)),
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
    Case("replace dataset", "put", lambda c: f"{d(c)}/", (403, 404, 200), lambda c: {"name": "y"}),
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
    Case(
        "everything",
        "post",
        lambda c: f"{i(c)}/everything/",
        (200, 404, 200),
        # Thresholds 0: the seeded random model is confident about nothing.
        lambda c: {"points_per_side": 2, "pred_iou_thresh": 0, "stability_score_thresh": 0},
    ),
    Case("prepare embedding", "post", lambda c: f"{i(c)}/prepare/", (200, 404, 200)),
    Case(
        "upcoming images",
        "get",
        lambda c: f"{d(c)}/upcoming-images/?stage=1",
        (200, 404, 200),
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
    Case("delete mask", "delete", lambda c: f"/api/masks/{c.mask.pk}/?version=1", (204, 404, 204)),
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
    Case(
        "keep prefilled mask",
        "post",
        lambda c: f"/api/masks/{c.prefilled.pk}/keep/",
        (200, 404, 200),
        lambda c: {"version": c.prefilled.version},
    ),
    # Exports, annotation imports, statistics.
    Case("dataset exports", "get", lambda c: f"{d(c)}/exports/", (403, 404, 200)),
    Case(
        "start export",
        "post",
        lambda c: f"{d(c)}/exports/",
        (403, 404, 202),
        lambda c: {"format": "coco"},
    ),
    Case("list exports", "get", lambda c: "/api/exports/", (200, 200, 200)),
    Case("read export", "get", lambda c: f"/api/exports/{c.export.pk}/", (404, 404, 200)),
    Case(
        "download export",
        "get",
        lambda c: f"/api/exports/{c.export.pk}/download/",
        (404, 404, 200),
    ),
    Case(
        "import annotations",
        "post",
        lambda c: f"{d(c)}/annotation-imports/",
        (403, 404, 200),  # 200: the file holds nothing new
        coco_upload,
        True,
    ),
    Case("dataset audits", "get", lambda c: f"{d(c)}/audits/", (403, 404, 200)),
    Case(
        "start audit",
        "post",
        lambda c: f"{d(c)}/audits/",
        (403, 404, 409),  # the one image with model masks is in the open audit already
        lambda c: {"sample_size": 1},
    ),
    Case("list audits", "get", lambda c: "/api/audits/", (200, 200, 200)),
    Case("read audit", "get", lambda c: f"/api/audits/{c.audit.pk}/", (404, 404, 200)),
    Case("audit report", "get", lambda c: f"/api/audits/{c.audit.pk}/report/", (404, 404, 200)),
    Case(
        "audit report csv",
        "get",
        lambda c: f"/api/audits/{c.audit.pk}/report-csv/",
        (404, 404, 200),
    ),
    Case("cancel audit", "post", lambda c: f"/api/audits/{c.audit.pk}/cancel/", (404, 404, 200)),
    Case(
        "audit next image",
        "post",
        lambda c: f"/api/audits/{c.audit.pk}/next-image/",
        (404, 404, 200),
    ),
    Case(
        "audit image done",
        "post",
        lambda c: f"/api/audits/{c.audit.pk}/images/{c.image.pk}/done/",
        (404, 404, 200),
    ),
    Case("dataset stats", "get", lambda c: f"{d(c)}/stats/", (200, 404, 200)),
    # Labels: members read, the dataset's admins change.
    Case("list labels", "get", lambda c: f"{d(c)}/labels/", (200, 404, 200)),
    Case("read label", "get", lambda c: label_url(c), (200, 404, 200)),
    Case(
        "add label",
        "post",
        lambda c: f"{d(c)}/labels/",
        (403, 404, 201),
        lambda c: {"name": "tree", "color": "#00aa00"},
    ),
    Case("change label", "patch", lambda c: label_url(c), (403, 404, 200), lambda c: {"name": "b"}),
    Case("delete label", "delete", lambda c: label_url(c), (403, 404, 200)),
    # Automatic passes.
    Case("dataset passes", "get", lambda c: f"{d(c)}/automatic-passes/", (403, 404, 200)),
    Case(
        "launch pass",
        "post",
        lambda c: f"{d(c)}/automatic-passes/",
        (403, 404, 202),
        lambda c: {"kind": "automatic", "image_ids": [c.image.pk], "config": SMALL_PASS},
    ),
    Case(
        "preview pass",
        "post",
        lambda c: f"{d(c)}/automatic-passes/preview/",
        (403, 404, 200),
        lambda c: {"kind": "automatic", "image_ids": [c.image.pk], "config": SMALL_PASS},
    ),
    Case("dataset jobs", "get", lambda c: f"{d(c)}/jobs/", (403, 404, 200)),
    Case("list passes", "get", lambda c: "/api/automatic-passes/", (200, 200, 200)),
    Case(
        "read pass",
        "get",
        lambda c: f"/api/automatic-passes/{c.automatic_pass.pk}/",
        (404, 404, 200),
    ),
    Case(
        "cancel pass",
        "post",
        lambda c: f"/api/automatic-passes/{c.automatic_pass.pk}/cancel/",
        (404, 404, 200),
        lambda c: {},
    ),
    Case(
        "cancel export",
        "post",
        lambda c: f"/api/exports/{c.export.pk}/cancel/",
        (404, 404, 409),  # the case's export is done already
        lambda c: {},
    ),
    Case(
        "cancel import job",
        "post",
        lambda c: f"/api/import-jobs/{c.job.pk}/cancel/",
        (404, 404, 200),
        lambda c: {},
    ),
    Case(
        "resume pass",
        "post",
        lambda c: f"/api/automatic-passes/{c.automatic_pass.pk}/resume/",
        (404, 404, 202),
        lambda c: {},
    ),
]

CASES += [
    # Model versions and training rounds (modeltrain.api): staff act, dataset admins read rounds.
    Case("list model versions", "get", lambda c: "/api/model-versions/", (200, 200, 200)),
    Case(
        "read model version",
        "get",
        lambda c: f"/api/model-versions/{get_active_version().pk}/",
        (200, 200, 200),
    ),
    Case(
        "promote model version",
        "post",
        lambda c: f"/api/model-versions/{get_active_version().pk}/promote/",
        (403, 403, 200),
        lambda c: {},
    ),
    Case(
        "roll back model version",
        "post",
        lambda c: "/api/model-versions/rollback/",
        (403, 403, 409),  # 409: the cold-start version has no parent to go back to
        lambda c: {},
    ),
    Case("list training rounds", "get", lambda c: "/api/training-rounds/", (200, 200, 200)),
    Case(
        "read training round",
        "get",
        lambda c: f"/api/training-rounds/{c.training_round.pk}/",
        (404, 404, 200),
    ),
    Case(
        "launch training round",
        "post",
        lambda c: "/api/training-rounds/",
        (403, 403, 409),  # 409: the context's round is still queued on this dataset
        lambda c: {"dataset": c.dataset.pk},
    ),
    Case(
        "cancel training round",
        "post",
        lambda c: f"/api/training-rounds/{c.training_round.pk}/cancel/",
        (404, 404, 200),
        lambda c: {},
    ),
]

CASES += [
    # Quality control (issue 18): reviewers and admins read, admins change; annotators 403.
    Case("quality settings", "get", lambda c: f"{d(c)}/quality/settings/", (403, 404, 200)),
    Case(
        "change quality settings",
        "patch",
        lambda c: f"{d(c)}/quality/settings/",
        (403, 404, 200),
        lambda c: {"ground_truth_share": 0.1},
    ),
    Case("ground truth", "get", lambda c: f"{d(c)}/quality/ground-truth/", (403, 404, 200)),
    Case(
        "mark ground truth",
        "post",
        lambda c: f"{d(c)}/quality/ground-truth/",
        (403, 404, 201),
        lambda c: {"image_ids": [c.image.pk]},
    ),
    Case(
        "unmark ground truth",
        "post",
        lambda c: f"{d(c)}/quality/ground-truth/unmark/",
        (403, 404, 200),
        lambda c: {"image_ids": [marked_truth(c)]},
    ),
    Case("annotator accuracy", "get", lambda c: f"{d(c)}/quality/annotators/", (403, 404, 200)),
    Case("agreement", "get", lambda c: f"{d(c)}/quality/agreement/", (403, 404, 200)),
]

# Routes anonymous users may call, and why; everything else under /api/ needs a case above.
PUBLIC = {
    ("api/auth/token/", "post"): "exchanges a username and password for a token",
    ("api/auth/login/", "get"): "the login form of the browsable API",
    ("api/auth/login/", "post"): "logging in",
    ("api/auth/login/", "put"): "Django's LoginView treats PUT as POST",
    ("api/auth/logout/", "post"): "logging out",
    ("api/schema/", "get"): "the OpenAPI schema: documentation, no data",
    ("api/docs/", "get"): "Swagger UI: documentation, no data",
}


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
        assert response["WWW-Authenticate"] == "Token"
        return
    expected = dict(zip(["annotator", "outsider", "admin"], case.expected, strict=True))[who]
    assert response.status_code == expected, response.content[:500]


def api_routes() -> dict[tuple[Any, str], str]:
    """Every (view callback, method) under /api/ from the URL resolver, with its route for the
    messages; format-suffix duplicates, OPTIONS and HEAD (answered like GET) left out."""

    def walk(patterns, prefix=""):
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, route)
            else:
                yield route, pattern.callback

    routes = {}
    for route, callback in walk(get_resolver().url_patterns):
        if not route.startswith("api/") or "format" in route:
            continue
        actions = getattr(callback, "actions", None)
        if actions is not None:
            methods = set(actions)
        else:
            view = getattr(callback, "cls", None) or callback.view_class
            methods = {m for m in view.http_method_names if hasattr(view, m)}
        routes |= {(callback, m): f"{m.upper()} {route}" for m in methods - {"options", "head"}}
    return routes


def test_every_api_route_and_method_has_a_case(ctx):
    routes = api_routes()
    covered = {(resolve(case.url(ctx).split("?")[0]).func, case.method) for case in CASES}
    public = {(resolve("/" + route).func, method) for route, method in PUBLIC}

    missing = sorted(routes[key] for key in set(routes) - covered - public)
    assert not missing, f"add a Case to CASES (or a reason to PUBLIC) for: {missing}"
    assert not (covered - set(routes)), "a case calls a route the resolver does not list"
    assert not (public - set(routes)), "PUBLIC names a route or method that does not exist"


@pytest.mark.parametrize("route, method", sorted(PUBLIC))
def test_public_routes_answer_anonymous_users(route, method, anon_client):
    response = getattr(anon_client, method)("/" + route)

    assert response.status_code < 500 and response.status_code not in (401, 403)
