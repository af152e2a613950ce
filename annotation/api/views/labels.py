"""A dataset's label set: every member reads it (the annotation page's picker), its admins add,
rename, recolour, reorder and delete labels. Deleting a label keeps its masks, unlabelled."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api.base import ServiceErrorMixin, get_visible
from annotation.api.label_serializers import (
    LabelDeletedSerializer,
    LabelSerializer,
    LabelWriteSerializer,
)
from annotation.api.schema import error_responses
from annotation.models import Label
from annotation.services import access, labels

NAME_TAKEN = "the dataset already has a label with this name"


class DatasetLabelsView(ServiceErrorMixin, APIView):
    """GET lists the dataset's labels in picker order (position, then id), for its members;
    POST adds one (its admins)."""

    @extend_schema(responses=LabelSerializer(many=True), summary="List a dataset's labels")
    def get(self, request: Request, dataset_id: int) -> Response:
        dataset = get_visible(access.visible_datasets(request.user), dataset_id)
        return Response(LabelSerializer(labels.dataset_labels(dataset), many=True).data)

    @extend_schema(
        request=LabelWriteSerializer,
        responses={201: LabelSerializer, **error_responses(409, c409=NAME_TAKEN)},
        summary="Add a label (admins)",
    )
    def post(self, request: Request, dataset_id: int) -> Response:
        dataset = get_visible(access.visible_datasets(request.user), dataset_id)
        access.require_admin(request.user, dataset, "change its labels")
        body = LabelWriteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        label = labels.create_label(dataset, **body.validated_data)
        return Response(LabelSerializer(label).data, status=status.HTTP_201_CREATED)


class DatasetLabelView(ServiceErrorMixin, APIView):
    """One label: GET for members; PATCH (rename, recolour, reorder) and DELETE for the dataset's
    admins. DELETE keeps the label's masks, without a label (each at a new version)."""

    def label(self, request: Request, dataset_id: int, label_id: int) -> Label:
        dataset = get_visible(access.visible_datasets(request.user), dataset_id)
        return get_visible(labels.dataset_labels(dataset), label_id)

    @extend_schema(responses=LabelSerializer)
    def get(self, request: Request, dataset_id: int, label_id: int) -> Response:
        return Response(LabelSerializer(self.label(request, dataset_id, label_id)).data)

    @extend_schema(
        request=LabelWriteSerializer(partial=True),
        responses={200: LabelSerializer, **error_responses(409, c409=NAME_TAKEN)},
        summary="Change a label (admins)",
    )
    def patch(self, request: Request, dataset_id: int, label_id: int) -> Response:
        label = self.label(request, dataset_id, label_id)
        access.require_admin(request.user, label.dataset, "change its labels")
        body = LabelWriteSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        return Response(LabelSerializer(labels.update_label(label, **body.validated_data)).data)

    @extend_schema(
        request=None,
        responses={200: LabelDeletedSerializer},
        summary="Delete a label; its masks stay, unlabelled (admins)",
    )
    def delete(self, request: Request, dataset_id: int, label_id: int) -> Response:
        label = self.label(request, dataset_id, label_id)
        access.require_admin(request.user, label.dataset, "change its labels")
        return Response({"unlabelled_masks": labels.delete_label(label)})
