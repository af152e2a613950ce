"""Exports (SA-1B shards or COCO JSON) and annotation imports, for dataset admins; dataset
statistics, for its members.

Downloads: ``GET /api/exports/{id}/download/`` gives an SA-1B export's ``manifest.json`` (its
shards and counts) and ``?shard=N`` the tar ``sa_00000N.tar``; a COCO export's one JSON file.
Shards are served one by one, as the released SA-1B is: no second copy bundles them."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api import export_serializers as s
from annotation.api.base import ServiceErrorMixin, get_visible, number_param
from annotation.api.files import file_response
from annotation.api.schema import error_responses
from annotation.models import Export
from annotation.services import access, exports, jobs
from annotation.services.annotation_imports import import_annotation_file
from annotation.services.stats import dataset_stats

CONTENT_TYPES = {".tar": "application/x-tar", ".json": "application/json"}
NOT_ACTIVE = "the job is not queued or running: it has already ended"


class DatasetExportsView(ServiceErrorMixin, APIView):
    """POST starts an export of the dataset (its admins; 202, a cpu worker writes it); GET
    lists the dataset's exports."""

    @extend_schema(responses=s.ExportSerializer(many=True))
    def get(self, request: Request, dataset_id: int) -> Response:
        dataset = get_visible(access.visible_datasets(request.user), dataset_id)
        access.require_admin(request.user, dataset, "see exports")
        jobs.fail_lost(Export)
        return Response(s.ExportSerializer(dataset.exports.all(), many=True).data)

    @extend_schema(
        request=s.ExportRequestSerializer,
        responses={
            202: s.ExportSerializer,
            **error_responses(409, c409="the release gate is not met; gaps lists each"),
        },
    )
    def post(self, request: Request, dataset_id: int) -> Response:
        dataset = get_visible(access.visible_datasets(request.user), dataset_id)
        access.require_admin(request.user, dataset, "export it")
        body = s.ExportRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        export = exports.queue_export(
            dataset,
            request.user,
            format=body.validated_data["format"],
            filters=body.filters(),
            shard_size=body.validated_data["shard_size"],
            options=body.options(),
            gate=body.validated_data.get("gate"),
        )
        return Response(s.ExportSerializer(export).data, status=status.HTTP_202_ACCEPTED)


class ExportViewSet(ServiceErrorMixin, viewsets.ReadOnlyModelViewSet):
    """Exports of the datasets the user administers, with their progress (images written of
    the total). One whose worker is gone reads as failed, not running forever."""

    serializer_class = s.ExportSerializer

    def get_queryset(self):
        if self.action in ("list", "retrieve") and not getattr(self, "swagger_fake_view", False):
            jobs.fail_lost(Export)
        return exports.visible_exports(self.request.user)

    @extend_schema(
        request=None,
        responses={200: s.ExportSerializer, **error_responses(409, c409=NOT_ACTIVE)},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk=None) -> Response:
        """Stop a queued or running export; its partial files are removed."""
        export = self.get_object()
        access.require_admin(request.user, export.dataset, "cancel exports")
        export = exports.cancel_export(export)
        return Response(s.ExportSerializer(export).data)

    @extend_schema(
        parameters=[OpenApiParameter("shard", int, description="SA-1B shard number, from 0")],
        responses={
            (200, "application/json"): OpenApiResponse(
                OpenApiTypes.OBJECT, description="the SA-1B manifest or the COCO JSON"
            ),
            (200, "application/x-tar"): OpenApiResponse(
                OpenApiTypes.BINARY, description="one SA-1B shard (?shard=N)"
            ),
        },
    )
    @action(detail=True, methods=["get"])
    def download(self, request: Request, pk=None):
        """A finished export's file: SA-1B manifest, SA-1B shard ?shard=N, or the COCO JSON."""
        export = self.get_object()
        path = exports.export_file(export, number_param(request.query_params, "shard"))
        content_type = CONTENT_TYPES.get(path.suffix, "application/octet-stream")
        return file_response(
            path, as_attachment=True, filename=path.name, content_type=content_type
        )


class DatasetAnnotationImportView(ServiceErrorMixin, APIView):
    """Import masks from an uploaded COCO instances JSON or SA-1B tar (admins). 201: all
    imported; 207: some images skipped; 400: nothing imported and some skipped; 200: nothing
    new. Each skipped image is listed with its reason."""

    parser_classes = [MultiPartParser]

    @extend_schema(
        request={"multipart/form-data": s.AnnotationUploadSerializer},
        responses={201: s.AnnotationImportReportSerializer},
    )
    def post(self, request: Request, dataset_id: int) -> Response:
        dataset = get_visible(access.visible_datasets(request.user), dataset_id)
        access.require_admin(request.user, dataset, "import annotations")
        body = s.AnnotationUploadSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        report = import_annotation_file(dataset, body.validated_data["file"], request.user)
        if report.imported and not report.skipped:
            code = status.HTTP_201_CREATED
        elif report.imported:
            code = status.HTTP_207_MULTI_STATUS
        elif report.skipped:
            code = status.HTTP_400_BAD_REQUEST
        else:
            code = status.HTTP_200_OK
        return Response(report.as_dict(), status=code)


class DatasetStatsView(ServiceErrorMixin, APIView):
    """Statistics of the dataset (its members): images per stage, masks per image, time per
    mask, annotators' throughput, model versions, automatic passes."""

    @extend_schema(responses=s.DatasetStatsSerializer)
    def get(self, request: Request, dataset_id: int) -> Response:
        dataset = get_visible(access.visible_datasets(request.user), dataset_id)
        return Response(dataset_stats(dataset, viewer=request.user))
