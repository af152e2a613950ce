"""Masks: create (accept), list, read, correct, delete. RLE in and out."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from annotation.api import serializers as s
from annotation.api.base import (
    MAX_ID,
    ServiceErrorMixin,
    choice_param,
    get_visible,
    id_param,
    number_param,
)
from annotation.api.schema import error_responses
from annotation.models import AnnotatorSession, MaskSource
from annotation.services import access, attempt_masks, masks, quality_claims
from annotation.services.errors import InvalidInput, PreconditionRequired
from registry.models import ModelVersion

# An edit names the version it started from: 409 when stale, 428 when it names none.
CHANGE_RESPONSES = {200: s.MaskSerializer, **error_responses(409, 428)}

# Mask.version is a PositiveIntegerField: anything larger cannot be a version of a stored mask.
MAX_VERSION = 2**31 - 1


@extend_schema(
    parameters=[
        OpenApiParameter("image", int),
        OpenApiParameter("dataset", int),
        OpenApiParameter("source", str, enum=MaskSource.values),
        OpenApiParameter(
            "label",
            str,
            pattern=r"^([1-9][0-9]*|none)$",
            description="a label id: only masks with that label; 'none': only unlabelled masks",
        ),
    ]
)
class MaskViewSet(
    ServiceErrorMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Masks of the user's datasets. Annotators create 'manual' and 'model_assisted' masks and
    change their own; reviewers and admins change any. A repeated client_id on the same image
    answers 200 with the mask already stored instead of creating a second one."""

    serializer_class = s.MaskSerializer

    def get_queryset(self):
        queryset = access.visible_masks(self.request.user).select_related("prompt")
        if self.action != "list":
            return queryset
        params = self.request.query_params
        image, dataset = id_param(params, "image"), id_param(params, "dataset")
        source = choice_param(params, "source", MaskSource.values)
        label = label_param(params)
        if image is not None:
            queryset = queryset.filter(image_id=image)
        if dataset is not None:
            queryset = queryset.filter(image__dataset_id=dataset)
        if source is not None:
            queryset = queryset.filter(source=source)
        if label == "none":
            queryset = queryset.filter(label__isnull=True)
        elif label is not None:
            queryset = queryset.filter(label_id=label)
        return queryset.order_by("pk")

    def list(self, request: Request, *args, **kwargs) -> Response:
        image = id_param(request.query_params, "image")
        attempt = _open_attempt_on(request, image) if image is not None else None
        if attempt is None:
            return super().list(request, *args, **kwargs)
        # The annotator of a quality attempt sees the masks of their attempt, as their own.
        shown = attempt_masks.attempt_masks(attempt)
        source = choice_param(request.query_params, "source", MaskSource.values)
        dataset = id_param(request.query_params, "dataset")
        if dataset is not None and dataset != attempt.dataset_id:
            shown = []
        shown = [mask for mask in shown if source is None or mask.source == source]
        page = self.paginate_queryset(shown)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        request=s.MaskCreateSerializer,
        responses={
            201: s.MaskSerializer,
            200: OpenApiResponse(
                s.MaskSerializer, description="the mask already stored with this client_id"
            ),
            **error_responses(
                404,
                409,
                c404="no such image among those the user may see",
                c409="the image is no longer yours to add masks to",
            ),
        },
    )
    def create(self, request: Request) -> Response:
        body = s.MaskCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        image = get_visible(access.visible_images(request.user), data.pop("image"))
        version_id, session_id = data.pop("model_version", None), data.pop("session", None)
        if version_id is not None:
            data["model_version"] = ModelVersion.objects.filter(pk=version_id).first()
            if data["model_version"] is None:
                raise InvalidInput(f"model version {version_id} does not exist")
        if session_id is not None:
            data["session"] = AnnotatorSession.objects.filter(pk=session_id).first()
            if data["session"] is None:
                raise InvalidInput(f"session {session_id} does not exist")
        in_attempt = _save_in_attempt(request, image, data)
        if in_attempt is not None:
            return in_attempt
        if masks.mask_with_client_id(image, data.get("client_id")) is None:
            # A repeated submission is answered with the stored mask, like any replay.
            access.require_mask_source(request.user, image.dataset, data["source"])
        mask, created = masks.accept_mask(image, request.user, **data)
        response = _with_etag(mask)
        response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return response

    def retrieve(self, request: Request, pk=None) -> Response:
        row = _attempt_mask(request, pk)
        if row is not None:
            return _with_etag(attempt_masks.as_mask(row))
        return _with_etag(self.get_object())

    @extend_schema(request=s.MaskUpdateSerializer, responses=CHANGE_RESPONSES)
    def partial_update(self, request: Request, pk=None) -> Response:
        """Change a mask. The edit names the version it started from (``version`` in the body
        or an ``If-Match`` header with the ETag); a stale version is refused with 409."""
        row = _attempt_mask(request, pk)
        mask = self.get_object() if row is None else None
        body = s.MaskUpdateSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        version = _expected_version(request, data.pop("version", None))
        if row is not None:
            return _with_etag(
                attempt_masks.update_attempt_mask(row, expected_version=version, **data)
            )
        access.require_mask_editor(request.user, mask, "change")
        return _with_etag(masks.update_mask(mask, request.user, expected_version=version, **data))

    @extend_schema(request=s.MaskKeepSerializer, responses=CHANGE_RESPONSES)
    @action(detail=True, methods=["post"])
    def keep(self, request: Request, pk=None) -> Response:
        """Keep a pre-filled mask as the model made it (stage 2)."""
        if _attempt_mask(request, pk) is not None:
            raise InvalidInput("only pre-filled masks are kept; this one is your own")
        mask = self.get_object()
        body = s.MaskKeepSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        version = _expected_version(request, body.validated_data.get("version"))
        masks.check_keepable(mask)
        access.require_mask_editor(
            request.user, mask, "keep", who="annotators, reviewers and admins of the dataset"
        )
        return _with_etag(masks.keep_prefilled_mask(mask, request.user, expected_version=version))

    @extend_schema(request=s.MaskUpdateSerializer, responses=CHANGE_RESPONSES)
    def update(self, request: Request, pk=None) -> Response:
        return self.partial_update(request, pk)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "version",
                int,
                description="the mask version the delete started from (or an If-Match header "
                "with the mask's ETag); required",
            )
        ],
        responses={204: None, 409: None, 428: None},
    )
    def destroy(self, request: Request, pk=None) -> Response:
        """Delete a mask. Like an edit, the delete names the version it started from (``version``
        in the query or an ``If-Match`` header with the ETag); a stale version is refused with
        409, so nobody deletes an edit they never saw."""
        row = _attempt_mask(request, pk)
        mask = self.get_object() if row is None else None
        version = _expected_version(request, _query_version(request))
        if row is not None:
            attempt_masks.delete_attempt_mask(row, expected_version=version)
            return Response(status=status.HTTP_204_NO_CONTENT)
        access.require_mask_editor(request.user, mask, "delete")
        masks.delete_mask(mask, expected_version=version)
        return Response(status=status.HTTP_204_NO_CONTENT)


def label_param(params) -> int | str | None:
    """``?label=``: a label id, or "none" for unlabelled masks (400 for anything else)."""
    if params.get("label") == "none":
        return "none"
    return number_param(params, "label", minimum=1, what="a label id or 'none'")


def _save_in_attempt(request: Request, image, data: dict) -> Response | None:
    """A mask for an image the user has (or had) as a quality attempt is the attempt's, never
    the dataset's; None when the user has no attempt on the image."""
    attempt = quality_claims.open_attempt(image, request.user)
    closed = quality_claims.closed_attempt(image, request.user) if attempt is None else None
    if attempt is None and closed is None:
        return None
    access.require_mask_source(request.user, image.dataset, data["source"])
    if attempt is not None:
        mask, created = attempt_masks.add_attempt_mask(attempt, image, request.user, **data)
    else:
        mask, created = attempt_masks.replay_closed_attempt_mask(closed, data.get("client_id"))
    response = _with_etag(mask)
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return response


def _open_attempt_on(request: Request, image_id: int):
    image = access.visible_images(request.user).filter(pk=image_id).first()
    return quality_claims.open_attempt(image, request.user) if image is not None else None


def _attempt_mask(request: Request, pk: object):
    """The attempt mask the path names, when it names one of the user's open attempts."""
    try:
        value = int(str(pk))
    except ValueError:
        return None
    if not attempt_masks.is_attempt_mask_id(value) or value > MAX_ID:
        return None
    return attempt_masks.find_attempt_mask(value, request.user)


def _query_version(request: Request) -> int | None:
    raw = request.query_params.get("version")
    if raw in (None, ""):
        return None
    if not raw.isdigit() or not 0 < int(raw) <= MAX_VERSION:
        raise InvalidInput(f"version {raw[:40]!r} is not a mask version")
    return int(raw)


def _expected_version(request: Request, body_version: int | None) -> int:
    """The version a change started from: the body's (or query's) ``version`` or the If-Match
    ETag. Required, so that no client overwrites or deletes a mask blindly."""
    header = request.headers.get("If-Match", "").strip()
    if header.startswith("W/"):
        header = header[2:]
    header = header.strip('"')
    if body_version is not None:
        return body_version
    if header.isdigit() and 0 < int(header) <= MAX_VERSION:
        return int(header)
    if header:
        raise PreconditionRequired(f"If-Match {header!r} is not a mask version ETag")
    raise PreconditionRequired(
        "say which version of the mask this edit started from: 'version' in the body or an "
        "If-Match header with the mask's ETag"
    )


def _with_etag(mask) -> Response:
    response = Response(s.MaskSerializer(mask).data)
    response["ETag"] = f'"{mask.version}"'
    return response
