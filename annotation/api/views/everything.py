"""POST /api/images/{id}/everything/: the automatic generator on one image, now, as proposals."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api.annotator_serializers import EverythingAnswerSerializer, EverythingSerializer
from annotation.api.base import ServiceErrorMixin, get_visible
from annotation.services import access, everything


class EverythingView(ServiceErrorMixin, APIView):
    @extend_schema(request=EverythingSerializer, responses=EverythingAnswerSerializer)
    def post(self, request: Request, image_id: int) -> Response:
        """Every mask the model finds on the image with a points_per_side grid (whole image, no
        crops), computed now and not stored: the annotation tool's "Everything". Members of the
        image's dataset; a 16x16 grid takes seconds with a vit_b on a CPU."""
        image = get_visible(access.visible_images(request.user), image_id)
        body = EverythingSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return Response(everything.segment_everything(image, **body.validated_data))
