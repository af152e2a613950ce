"""The annotator's pages: sign in and out, the home page with each dataset's queue per stage,
claiming the next image, and the annotation page. The annotation page is a shell: its script
does everything through the REST API, as any other client would."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import cache_control
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_POST

from annotation.models import Role, Stage
from annotation.services import access, audits, image_holds, next_images
from annotation.services.errors import ServiceError
from engine.registry import CheckpointError
from registry import visibility
from registry.predictors import model_status

FAVICON = Path(__file__).parent / "static" / "frontend" / "favicon.svg"


@cache
def _favicon() -> bytes:
    return FAVICON.read_bytes()


@require_GET
@cache_control(max_age=86400, public=True)
def favicon(request: HttpRequest) -> HttpResponse:
    """The site's icon at /favicon.ico, where browsers look on pages that link none (the admin,
    the API docs); served here rather than redirected, so it needs no static file server."""
    return HttpResponse(_favicon(), content_type="image/svg+xml")


class LoginView(auth_views.LoginView):
    template_name = "frontend/login.html"
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    next_page = "login"


def _model_or_error(request: HttpRequest) -> tuple[dict | None, str | None]:
    """The active model's description as the user may see it, or why it cannot be loaded (the
    page still opens)."""
    try:
        return visibility.shown_to(access.member_dataset_ids(request.user), model_status()), None
    except CheckpointError as exc:
        return None, f"the configured model checkpoint cannot be loaded: {exc}"


@login_required
def home(request: HttpRequest) -> HttpResponse:
    model, model_error = _model_or_error(request)
    context = {
        "queues": next_images.stage_queues(request.user),
        # Only reviewers and admins see audits; annotators never learn which images are audited.
        "open_audits": audits.visible_audits(request.user)
        .filter(status="open")
        .select_related("dataset"),
        "model": model,
        "model_error": model_error,
    }
    return render(request, "frontend/home.html", context)


@login_required
@require_POST
def next_image(request: HttpRequest, dataset_id: int, stage: int) -> HttpResponse:
    """Claim the next image of a stage (the one already held, if any) and open it."""
    dataset = get_object_or_404(access.visible_datasets(request.user), pk=dataset_id)
    try:
        image = image_holds.claim_next_image(dataset, request.user, stage)
    except ServiceError as exc:
        messages.error(request, exc.message)
        return redirect("home")
    if image is None:
        label = Stage(stage).label if stage in Stage.values else stage
        messages.info(request, f"Nothing left to annotate in {dataset.name}, stage {label}.")
        return redirect("home")
    return redirect("annotate", image_id=image.pk)


@login_required
@require_POST
def review_audit(request: HttpRequest, audit_id: int) -> HttpResponse:
    """Hold the next image of an audit's sample for this reviewer and open it."""
    audit = get_object_or_404(audits.visible_audits(request.user), pk=audit_id)
    try:
        image = audits.next_audit_image(audit, request.user)
    except ServiceError as exc:
        messages.error(request, exc.message)
        return redirect("home")
    if image is None:
        messages.info(request, f"Nothing left to review in audit {audit.pk}.")
        return redirect("home")
    return redirect(f"{reverse('annotate', args=[image.pk])}?audit={audit.pk}")


def _audit_config(request: HttpRequest, image_id: int) -> dict | None:
    """The audit the page reviews (?audit=ID), when the user may see it and it samples the
    image; None otherwise (the page is then the ordinary one)."""
    raw = request.GET.get("audit", "")
    if not raw.isdigit() or len(raw) > 18:
        return None
    audit = audits.visible_audits(request.user).filter(pk=int(raw), images__image_id=image_id)
    audit = audit.first()
    if audit is None:
        return None
    return {
        "id": audit.pk,
        "status": audit.status,
        "nextUrl": reverse("audit-next-image", args=[audit.pk]),
        "doneUrl": reverse("audit-image-done", args=[audit.pk, image_id]),
    }


@login_required
@ensure_csrf_cookie
def annotate(request: HttpRequest, image_id: int) -> HttpResponse:
    image = get_object_or_404(
        access.visible_images(request.user).select_related("dataset"), pk=image_id
    )
    role = access.role_in(request.user, image.dataset)
    config = {
        "imageId": image.pk,
        "datasetId": image.dataset_id,
        "datasetName": image.dataset.name,
        "imageName": image.original_name,
        "stage": image.stage,
        "width": image.width,
        "height": image.height,
        "user": {"id": request.user.pk, "username": request.user.get_username()},
        "role": role,
        # The largest "Everything" grid the API allows this user (None: no lower limit).
        "everythingMaxGrid": None if role == Role.ADMIN else settings.EVERYTHING_MAX_GRID,
        "homeUrl": reverse("home"),
        "annotateUrl": reverse("annotate", args=[0]).replace("/0/", "/{id}/"),
        "audit": _audit_config(request, image.pk),
    }
    return render(
        request,
        "frontend/annotate.html",
        {"image": image, "config": config, "stage_label": Stage(image.stage).label},
    )
