"""Datasets and what hangs off them: members, the images list and upload, bulk stage changes,
the next image for an annotator, server-side imports."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import Count
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from annotation.api import serializers as s
from annotation.api.base import ServiceErrorMixin, get_visible
from annotation.api.pagination import ImagePagination
from annotation.api.schema import error_responses
from annotation.api.views.images import filter_images
from annotation.models import DatasetMembership, ImportJob
from annotation.services import access, image_holds, imports, jobs, quality_claims, storage
from annotation.services.errors import InvalidInput


class DatasetViewSet(ServiceErrorMixin, viewsets.ModelViewSet):
    """Datasets the user belongs to (all of them for staff). Staff create and delete datasets;
    dataset admins rename them, manage members, import images and change stages."""

    serializer_class = s.DatasetSerializer
    # The actions that answer with the dataset itself, image_count included. The others (the
    # next image above all, once per image an annotator opens) must not count the dataset's
    # images on every request: 100,000 images made a claim take four times as long.
    COUNTED = ("list", "retrieve", "update", "partial_update")

    def get_queryset(self):
        datasets = access.visible_datasets(self.request.user)
        if self.action in self.COUNTED:
            datasets = datasets.annotate(image_count=Count("images"))
        return datasets

    def perform_create(self, serializer):
        access.require_staff(self.request.user, "create datasets")
        # The answer has the same fields as a read: a new dataset has no images yet.
        serializer.save().image_count = 0

    def perform_update(self, serializer):
        access.require_admin(self.request.user, serializer.instance, "change it")
        serializer.save()

    def perform_destroy(self, instance):
        access.require_staff(self.request.user, "delete datasets")
        storage.delete_dataset(instance)

    @extend_schema(
        methods=["GET"], responses=s.ImageSerializer(many=True), summary="List the images"
    )
    @extend_schema(
        methods=["POST"],
        request={"multipart/form-data": s.UploadSerializer},
        responses={201: s.ImportReportSerializer, 207: s.ImportReportSerializer},
        summary="Upload images and zips (admins)",
        description="201: all imported. 207: some files rejected or duplicates, the rest "
        "imported. 200: only duplicates. 400: nothing imported. Each rejected file is listed "
        "with its reason; duplicates with the id of the image already there.",
    )
    # The image lists share one paginated answer (and so one schema component).
    @action(
        detail=True, methods=["get", "post"], url_path="images", pagination_class=ImagePagination
    )
    def images(self, request: Request, pk=None) -> Response:
        dataset = self.get_object()
        if request.method == "GET":
            images = filter_images(dataset.images.all(), request.query_params)
            page = quality_claims.present_all(self.paginate_queryset(images), request.user)
            return self.get_paginated_response(s.ImageSerializer(page, many=True).data)
        access.require_admin(request.user, dataset, "import images")
        files = request.FILES.getlist("files")
        if not files:
            raise InvalidInput("send the images as multipart form data in the field 'files'")
        options = s.UploadOptionsSerializer(data=_fields(request.data, "short_side"))
        options.is_valid(raise_exception=True)
        report = imports.import_images(
            dataset,
            imports.upload_candidates(files),
            short_side=options.validated_data.get("short_side"),
        )
        return Response(report.as_dict(), status=_report_status(report))

    @extend_schema(request=s.BulkStageSerializer, responses={200: s.BulkStageAnswerSerializer})
    @action(detail=True, methods=["post"], url_path="images/stage")
    def change_stage(self, request: Request, pk=None) -> Response:
        """Move many images of the dataset to a stage (admins): the images listed (all or
        nothing), or every image in from_stage (with from_status, only those)."""
        dataset = self.get_object()
        access.require_admin(request.user, dataset, "change stages")
        body = s.BulkStageSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        if "image_ids" in data:
            ids = data["image_ids"]
        else:
            ids = image_holds.images_in_stage(dataset, data["from_stage"], data.get("from_status"))
        count = image_holds.change_stage(dataset, ids, data["stage"], data["status"])
        return Response({"updated": count, "stage": data["stage"], "status": data["status"]})

    @extend_schema(
        request=s.NextImageSerializer,
        responses={
            200: s.ImageSerializer,
            204: OpenApiResponse(description="nothing left"),
            **error_responses(409, c409="too many annotators claiming at once; try again"),
        },
    )
    @action(detail=True, methods=["post"], url_path="next-image")
    def next_image(self, request: Request, pk=None) -> Response:
        """The image to annotate next in a stage, held for you (the one you hold, if any)."""
        dataset = self.get_object()
        body = s.NextImageSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        image = image_holds.claim_next_image(dataset, request.user, body.validated_data["stage"])
        if image is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(s.ImageSerializer(image).data)

    @extend_schema(methods=["GET"], responses=s.MembershipSerializer(many=True))
    @extend_schema(
        methods=["POST"],
        request=s.MembershipWriteSerializer,
        responses={201: s.MembershipSerializer},
    )
    # One page: a dataset has few members, and the answer is a plain list.
    @action(detail=True, methods=["get", "post"], url_path="members", pagination_class=None)
    def members(self, request: Request, pk=None) -> Response:
        """Members and their roles (admins); POST adds a member or changes their role."""
        dataset = self.get_object()
        access.require_admin(request.user, dataset, "manage members")
        if request.method == "GET":
            memberships = DatasetMembership.objects.filter(dataset=dataset).select_related("user")
            return Response(s.MembershipSerializer(memberships, many=True).data)
        body = s.MembershipWriteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        membership = access.set_membership(
            dataset, body.validated_data["username"], body.validated_data["role"]
        )
        return Response(s.MembershipSerializer(membership).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={204: OpenApiResponse()})
    @action(detail=True, methods=["delete"], url_path=r"members/(?P<user_id>\d+)")
    def remove_member(self, request: Request, pk=None, user_id=None) -> Response:
        dataset = self.get_object()
        access.require_admin(request.user, dataset, "manage members")
        user = get_visible(get_user_model().objects.all(), user_id)
        if not access.remove_membership(dataset, user):
            raise InvalidInput(f"{user.username!r} is not a member of {dataset.name!r}")
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=s.ImportPathSerializer, responses={202: s.ImportJobSerializer})
    @action(detail=True, methods=["post"], url_path="import-path")
    def import_path(self, request: Request, pk=None) -> Response:
        """Queue the import of a folder or zip on the server (staff: it reads server files)."""
        dataset = self.get_object()
        access.require_staff(request.user, "import files from the server's disk")
        body = s.ImportPathSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        job = imports.queue_import_job(
            dataset,
            body.validated_data["path"],
            short_side=body.validated_data.get("short_side"),
            user=request.user,
        )
        return Response(s.ImportJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


def _fields(data, *names: str) -> dict:
    return {name: data[name] for name in names if name in data}


def _report_status(report: imports.ImportReport) -> int:
    if report.imported and not (report.rejected or report.duplicates):
        return status.HTTP_201_CREATED
    if report.imported:
        return status.HTTP_207_MULTI_STATUS
    if report.rejected:
        return status.HTTP_400_BAD_REQUEST
    return status.HTTP_200_OK


class ImportJobViewSet(ServiceErrorMixin, viewsets.ReadOnlyModelViewSet):
    """Server-side imports and their reports, for the admins of their datasets. One whose
    worker is gone reads as failed, not running forever."""

    serializer_class = s.ImportJobSerializer

    def get_queryset(self):
        if self.action in ("list", "retrieve") and not getattr(self, "swagger_fake_view", False):
            jobs.fail_lost(ImportJob)
        return access.visible_import_jobs(self.request.user)

    @extend_schema(
        request=None,
        responses={
            200: s.ImportJobSerializer,
            **error_responses(409, c409="the import is not queued or running: it has ended"),
        },
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk=None) -> Response:
        """Stop a queued or running import; the images imported until then stay."""
        job = self.get_object()
        access.require_admin(request.user, job.dataset, "cancel imports")
        job = imports.cancel_import_job(job)
        return Response(s.ImportJobSerializer(job).data)
