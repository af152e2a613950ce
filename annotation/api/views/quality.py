"""Quality control of a dataset's annotators, for its reviewers and admins: the settings, the
ground-truth images, each annotator's accuracy and the agreement of two annotators. Outsiders
get 404; annotators 403 (they never learn which images are checks)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api import quality_serializers as s
from annotation.api.base import ServiceErrorMixin, choice_param, get_visible
from annotation.models import Dataset
from annotation.services import access, ground_truth, quality_reports


def _dataset(request: Request, dataset_id: int) -> Dataset:
    dataset = get_visible(access.visible_datasets(request.user), dataset_id)
    access.require_reviewer(request.user, dataset, "see its quality control")
    return dataset  # type: ignore[return-value]


class QualitySettingsView(ServiceErrorMixin, APIView):
    @extend_schema(responses=s.QualitySettingsSerializer)
    def get(self, request: Request, dataset_id: int) -> Response:
        """The shares of ground-truth and doubled images in annotators' queues."""
        dataset = _dataset(request, dataset_id)
        return Response(s.QualitySettingsSerializer(ground_truth.quality_settings(dataset)).data)

    @extend_schema(request=s.QualitySettingsWriteSerializer, responses=s.QualitySettingsSerializer)
    def patch(self, request: Request, dataset_id: int) -> Response:
        """Change either share (admins)."""
        dataset = _dataset(request, dataset_id)
        access.require_admin(request.user, dataset, "change its quality settings")
        body = s.QualitySettingsWriteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        answer = ground_truth.update_quality_settings(dataset, request.user, **body.validated_data)
        return Response(s.QualitySettingsSerializer(answer).data)


class GroundTruthView(ServiceErrorMixin, APIView):
    @extend_schema(responses=s.GroundTruthImageSerializer(many=True))
    def get(self, request: Request, dataset_id: int) -> Response:
        """The ground-truth images, with their truth's masks and completed attempts."""
        dataset = _dataset(request, dataset_id)
        rows = ground_truth.ground_truth_images(dataset)
        return Response(s.GroundTruthImageSerializer(rows, many=True).data)

    @extend_schema(
        request=s.GroundTruthMarkSerializer,
        responses={201: s.GroundTruthImageSerializer(many=True)},
    )
    def post(self, request: Request, dataset_id: int) -> Response:
        """Mark images as ground truth (admins): their current masks are frozen as the truth
        and the images set done. All or nothing."""
        dataset = _dataset(request, dataset_id)
        access.require_admin(request.user, dataset, "mark ground truth")
        body = s.GroundTruthMarkSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        marked = {
            truth.image_id
            for truth in ground_truth.mark_ground_truth(
                dataset, request.user, body.validated_data["image_ids"]
            )
        }
        rows = [r for r in ground_truth.ground_truth_images(dataset) if r["image"] in marked]
        return Response(
            s.GroundTruthImageSerializer(rows, many=True).data, status=status.HTTP_201_CREATED
        )


class GroundTruthUnmarkView(ServiceErrorMixin, APIView):
    @extend_schema(
        request=s.GroundTruthMarkSerializer,
        responses={200: s.GroundTruthUnmarkedSerializer(many=True)},
    )
    def post(self, request: Request, dataset_id: int) -> Response:
        """Withdraw the ground truth of images (admins): the frozen truth goes, the images and
        their masks stay; annotators' attempts on them are kept but leave every figure, and
        open ones are released. All or nothing."""
        dataset = _dataset(request, dataset_id)
        access.require_admin(request.user, dataset, "un-mark ground truth")
        body = s.GroundTruthMarkSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        rows = ground_truth.unmark_ground_truth(
            dataset, request.user, body.validated_data["image_ids"]
        )
        return Response(s.GroundTruthUnmarkedSerializer(rows, many=True).data)


class AnnotatorAccuracyView(ServiceErrorMixin, APIView):
    @extend_schema(
        parameters=[OpenApiParameter("period", str, enum=list(quality_reports.PERIODS))],
        responses=s.AnnotatorsReportSerializer,
    )
    def get(self, request: Request, dataset_id: int) -> Response:
        """Each annotator's accuracy on ground-truth images: matched IoU, missed and extra
        objects per image, seconds per mask, in all and per day or week (default week)."""
        dataset = _dataset(request, dataset_id)
        period = choice_param(request.query_params, "period", list(quality_reports.PERIODS))
        report = quality_reports.annotator_accuracy(dataset, period or "week")
        return Response(s.AnnotatorsReportSerializer(report).data)


class AgreementView(ServiceErrorMixin, APIView):
    @extend_schema(responses=s.AgreementReportSerializer)
    def get(self, request: Request, dataset_id: int) -> Response:
        """Agreement of two annotators on doubled images, per stage: matched pairs, the share
        at IoU > 0.90 (the paper's consistency figure) and their mean IoU."""
        dataset = _dataset(request, dataset_id)
        return Response(s.AgreementReportSerializer(quality_reports.agreement(dataset)).data)
