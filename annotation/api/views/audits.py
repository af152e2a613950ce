"""Audits of model-made masks, for a dataset's reviewers and admins (annotators and outsiders
see none: 403 on the dataset's list, 404 on an audit). Reviewers work the sample in the
annotation page: ``next-image`` holds the next image for them, ``images/{id}/done`` compares
its masks with the originals."""

from __future__ import annotations

import json

from django.http import HttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api import audit_serializers as s
from annotation.api.base import ServiceErrorMixin, get_visible
from annotation.api.schema import error_responses
from annotation.services import access, audits
from annotation.services.audit_report import report_csv
from annotation.services.errors import InvalidInput
from registry.models import ModelVersion

NOT_OPEN = "the audit is not open (done or cancelled)"


class DatasetAuditsView(ServiceErrorMixin, APIView):
    """GET lists the dataset's audits; POST draws a sample and starts one (201)."""

    @extend_schema(responses=s.AuditSerializer(many=True))
    def get(self, request: Request, dataset_id: int) -> Response:
        dataset = get_visible(access.visible_datasets(request.user), dataset_id)
        audits.require_auditor(request.user, dataset, "see audits")
        return Response(s.AuditSerializer(dataset.audits.all(), many=True).data)

    @extend_schema(
        request=s.AuditRequestSerializer,
        responses={
            201: s.AuditSerializer,
            **error_responses(409, c409="no image has such model-made masks to audit"),
        },
    )
    def post(self, request: Request, dataset_id: int) -> Response:
        dataset = get_visible(access.visible_datasets(request.user), dataset_id)
        audits.require_auditor(request.user, dataset, "start audits")
        body = s.AuditRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        version = None
        if "model_version" in data:
            version = ModelVersion.objects.filter(pk=data["model_version"]).first()
            if version is None:
                raise InvalidInput(
                    f"no model version with id {data['model_version']}", field="model_version"
                )
        audit = audits.start_audit(
            dataset,
            request.user,
            source=data["source"],
            model_version=version,
            sample_size=data["sample_size"],
            seed=data["seed"],
        )
        return Response(s.AuditSerializer(audit).data, status=status.HTTP_201_CREATED)


class AuditViewSet(ServiceErrorMixin, viewsets.ReadOnlyModelViewSet):
    """Audits of the datasets the user reviews or administers, each with its report."""

    serializer_class = s.AuditSerializer

    def get_queryset(self):
        return audits.visible_audits(self.request.user)

    @extend_schema(
        request=None,
        responses={200: s.AuditSerializer, **error_responses(409, c409=NOT_OPEN)},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk=None) -> Response:
        """Stop an open audit; its images go back to the annotators' queues."""
        audit = audits.cancel_audit(self.get_object())
        return Response(s.AuditSerializer(audit).data)

    @extend_schema(
        request=None,
        responses={200: s.AuditNextImageSerializer, **error_responses(409, c409=NOT_OPEN)},
    )
    @action(detail=True, methods=["post"], url_path="next-image", url_name="next-image")
    def next_image(self, request: Request, pk=None) -> Response:
        """The sample image to review next, held for you (the one you hold, if any)."""
        audit = self.get_object()
        image = audits.next_audit_image(audit, request.user)
        url = None
        if image is not None:
            url = f"{reverse('annotate', args=[image.pk])}?audit={audit.pk}"
        return Response({"image": image.pk if image else None, "annotate_url": url})

    @extend_schema(
        request=None,
        responses={200: s.AuditImageDoneSerializer, **error_responses(409, c409=NOT_OPEN)},
    )
    @action(
        detail=True,
        methods=["post"],
        url_path=r"images/(?P<image_id>[0-9]+)/done",
        url_name="image-done",
    )
    def image_done(self, request: Request, pk=None, image_id=None) -> Response:
        """Mark a sample image reviewed: its masks now are compared with the originals."""
        audit = self.get_object()
        image = get_visible(access.visible_images(request.user), image_id)
        entry = audits.finish_audit_image(audit, image, request.user)
        return Response(s.AuditImageDoneSerializer(entry).data)

    @extend_schema(
        responses={
            (200, "application/json"): OpenApiResponse(
                OpenApiTypes.OBJECT, description="the report (annotation.services.audit_report)"
            )
        }
    )
    @action(detail=True, methods=["get"], url_name="report")
    def report(self, request: Request, pk=None) -> HttpResponse:
        """The report as a JSON file."""
        audit = self.get_object()
        body = json.dumps({"audit": s.AuditSerializer(audit).data}, indent=2, default=str)
        response = HttpResponse(body, content_type="application/json")
        response["Content-Disposition"] = f'attachment; filename="audit-{audit.pk}.json"'
        return response

    @extend_schema(
        responses={
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR, description="one row for the audit, then one per group"
            )
        }
    )
    @action(detail=True, methods=["get"], url_path="report-csv", url_name="report-csv")
    def report_csv(self, request: Request, pk=None) -> HttpResponse:
        """The report as CSV."""
        audit = self.get_object()
        response = HttpResponse(report_csv(audit), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="audit-{audit.pk}.csv"'
        return response
