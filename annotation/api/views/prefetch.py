"""What the annotation tool fetches ahead: the images next in line, and an image's embedding."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api import serializers as s
from annotation.api.annotator_serializers import UpcomingQuerySerializer
from annotation.api.base import ServiceErrorMixin, get_visible
from annotation.services import access, next_images, quality_claims


class UpcomingImagesView(ServiceErrorMixin, APIView):
    @extend_schema(parameters=[UpcomingQuerySerializer], responses=s.ImageSerializer(many=True))
    def get(self, request: Request, dataset_id: int) -> Response:
        """The images next-image would hand out next in a stage (pending, held by nobody),
        without claiming them, so the tool can fetch their files ahead."""
        dataset = get_visible(access.visible_datasets(request.user), dataset_id)
        query = UpcomingQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        images = next_images.upcoming_images(dataset, **query.validated_data)
        return Response(s.ImageSerializer(images, many=True).data)


class PrepareImageView(ServiceErrorMixin, APIView):
    @extend_schema(request=None, responses=s.ImageSerializer)
    def post(self, request: Request, image_id: int) -> Response:
        """Make sure the active model's embedding of the image is ready or queued (members).
        Unlike /embed/ it never re-queues a failed or already queued embedding."""
        image = get_visible(access.visible_images(request.user), image_id)
        image = quality_claims.present(next_images.prepare_embedding(image), request.user)
        return Response(s.ImageSerializer(image).data)
