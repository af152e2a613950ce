"""POST /api/images/{id}/everything/: the automatic generator on one image, now, as proposals."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api.annotator_serializers import EverythingAnswerSerializer, EverythingSerializer
from annotation.api.base import ServiceErrorMixin, get_visible
from annotation.api.schema import error_responses
from annotation.api.throttles import EverythingRateThrottle
from annotation.models import Role
from annotation.services import access, everything
from annotation.services.errors import InvalidInput
from registry import visibility


class EverythingView(ServiceErrorMixin, APIView):
    throttle_classes = [EverythingRateThrottle]

    @extend_schema(
        request=EverythingSerializer,
        responses={
            200: EverythingAnswerSerializer,
            **error_responses(409, c409="the image's file cannot be read or embedded"),
        },
    )
    def post(self, request: Request, image_id: int) -> Response:
        """Every mask the model finds on the image with a points_per_side grid (whole image, no
        crops), computed now and not stored: the annotation tool's "Everything". Members of the
        image's dataset; a 16x16 grid takes seconds with a vit_b on a CPU. Annotators and
        reviewers may ask for at most SADE_EVERYTHING_MAX_GRID points per side (default 16), or
        SADE_EVERYTHING_MAX_GRID_UNFILTERED (default 8) with a threshold below 0.5; dataset
        admins up to 32. Rate-limited per user (SADE_EVERYTHING_RATE)."""
        image = get_visible(access.visible_images(request.user), image_id)
        body = EverythingSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        if access.role_in(request.user, image.dataset) != Role.ADMIN:
            check_annotator_bounds(body.validated_data)
        answer = everything.segment_everything(image, **body.validated_data)
        return Response(
            {
                **answer,
                "model": visibility.shown_to(
                    access.member_dataset_ids(request.user), answer["model"]
                ),
            }
        )


def check_annotator_bounds(data: dict) -> None:
    """The grid and filters an annotator may ask for (the site's settings), else 400."""
    grid = data.get("points_per_side", everything.DEFAULT_POINTS_PER_SIDE)
    thresholds = [data.get("pred_iou_thresh"), data.get("stability_score_thresh")]
    unfiltered = any(t is not None and t < settings.EVERYTHING_UNFILTERED_BELOW for t in thresholds)
    if unfiltered and grid > settings.EVERYTHING_MAX_GRID_UNFILTERED:
        raise InvalidInput(
            f"with a threshold below {settings.EVERYTHING_UNFILTERED_BELOW} annotators may ask "
            f"for at most {settings.EVERYTHING_MAX_GRID_UNFILTERED}x"
            f"{settings.EVERYTHING_MAX_GRID_UNFILTERED} points "
            f"(SADE_EVERYTHING_MAX_GRID_UNFILTERED), got {grid}x{grid}"
        )
    if grid > settings.EVERYTHING_MAX_GRID:
        raise InvalidInput(
            f"annotators may ask for at most {settings.EVERYTHING_MAX_GRID}x"
            f"{settings.EVERYTHING_MAX_GRID} points (SADE_EVERYTHING_MAX_GRID), got {grid}x{grid}; "
            "dataset admins may use up to 32x32"
        )
