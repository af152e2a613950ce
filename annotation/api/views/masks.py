"""Masks: create (accept), list, read, correct, delete. RLE in and out."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from annotation.api import serializers as s
from annotation.api.base import ServiceErrorMixin, choice_param, get_visible, id_param
from annotation.models import AnnotatorSession, MaskSource
from annotation.services import access, masks
from annotation.services.errors import InvalidInput
from modeltrain.models import ModelVersion


@extend_schema(
    parameters=[
        OpenApiParameter("image", int),
        OpenApiParameter("dataset", int),
        OpenApiParameter("source", str, enum=MaskSource.values),
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
        if image is not None:
            queryset = queryset.filter(image_id=image)
        if dataset is not None:
            queryset = queryset.filter(image__dataset_id=dataset)
        if source is not None:
            queryset = queryset.filter(source=source)
        return queryset.order_by("pk")

    @extend_schema(request=s.MaskCreateSerializer, responses={201: s.MaskSerializer})
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
        mask, created = masks.accept_mask(image, request.user, **data)
        return Response(
            s.MaskSerializer(mask).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @extend_schema(request=s.MaskUpdateSerializer, responses=s.MaskSerializer)
    def partial_update(self, request: Request, pk=None) -> Response:
        mask = self.get_object()
        body = s.MaskUpdateSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        mask = masks.update_mask(mask, request.user, **body.validated_data)
        return Response(s.MaskSerializer(mask).data)

    @extend_schema(request=s.MaskUpdateSerializer, responses=s.MaskSerializer)
    def update(self, request: Request, pk=None) -> Response:
        return self.partial_update(request, pk)

    def perform_destroy(self, instance):
        masks.delete_mask(instance, self.request.user)
