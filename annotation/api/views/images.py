"""Images: listing with filters, the file itself (members only, never public media), predict,
release / complete, stage changes and re-queueing the embedding."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from annotation.api import serializers as s
from annotation.api.base import ServiceErrorMixin, choice_param, id_param, number_param
from annotation.api.files import file_response
from annotation.api.pagination import ImagePagination
from annotation.api.schema import error_responses
from annotation.api.throttles import PredictRateThrottle
from annotation.models import EmbeddingStatus, ImageStatus, Stage
from annotation.services import (
    access,
    attempt_masks,
    embeddings,
    image_holds,
    predict,
    quality_claims,
    storage,
)
from annotation.services.errors import Conflict
from registry import visibility

NOT_HELD = "you do not hold the image"
FILTERS = [
    OpenApiParameter("dataset", int, description="dataset id"),
    OpenApiParameter(
        "after",
        int,
        description="keyset page: the images after this image id in the list's order (0: from "
        "the start), as many as limit; the answer has results and next only (no count, no "
        "offset), and costs the same however deep the page",
    ),
    OpenApiParameter("stage", int, enum=Stage.values),
    OpenApiParameter("status", str, enum=ImageStatus.values),
    OpenApiParameter("embedding_status", str, enum=EmbeddingStatus.values),
]


def filter_images(images: QuerySet, params) -> QuerySet:
    """Apply the stage / status / embedding_status query filters (400 for unknown values)."""
    stage = choice_param(params, "stage", Stage.values, int)
    image_status = choice_param(params, "status", ImageStatus.values)
    embedding_status = choice_param(params, "embedding_status", EmbeddingStatus.values)
    if stage is not None:
        images = images.filter(stage=stage)
    if image_status is not None:
        images = images.filter(status=image_status)
    if embedding_status is not None:
        images = images.filter(embedding_status=embedding_status)
    return images.order_by("created_at", "pk")


@extend_schema(parameters=FILTERS)
class ImageViewSet(
    ServiceErrorMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Images of the user's datasets. Deleting (admins) also deletes the image's masks."""

    serializer_class = s.ImageSerializer
    pagination_class = ImagePagination

    def get_queryset(self):
        images = access.visible_images(self.request.user)
        if self.action != "list":
            return images
        dataset = id_param(self.request.query_params, "dataset")
        if dataset is not None:
            images = images.filter(dataset_id=dataset)
        return filter_images(images, self.request.query_params)

    def list(self, request: Request, *args, **kwargs) -> Response:
        after = number_param(request.query_params, "after", what="an image id, or 0 for the start")
        if after is None:
            return super().list(request, *args, **kwargs)
        images = self.get_queryset()
        if after:
            anchor = access.visible_images(request.user).filter(pk=after).first()
            if anchor is None:
                raise ValidationError({"after": f"no image {after} among the images you may see"})
            # A range on the (dataset, stage, status, created_at) index, then the ties.
            images = images.filter(created_at__gte=anchor.created_at).exclude(
                created_at=anchor.created_at, pk__lte=after
            )
        limit = self.paginator.get_limit(request) or self.paginator.default_limit
        page = list(images[: limit + 1])
        more = len(page) > limit
        page = quality_claims.present_all(page[:limit], request.user)
        url = request.build_absolute_uri()
        return Response(
            {
                "next": replace_query_param(url, "after", page[-1].pk) if more else None,
                "results": self.get_serializer(page, many=True).data,
            }
        )

    def paginate_queryset(self, queryset):
        page = super().paginate_queryset(queryset)
        return None if page is None else quality_claims.present_all(list(page), self.request.user)

    def retrieve(self, request: Request, *args, **kwargs) -> Response:
        image = quality_claims.present(self.get_object(), request.user)
        return Response(self.get_serializer(image).data)

    def perform_destroy(self, instance):
        access.require_admin(self.request.user, instance.dataset, "delete images")
        storage.delete_images([instance])

    @extend_schema(
        responses={
            (200, "image/*"): OpenApiTypes.BINARY,
            **error_responses(409, c409="the image's file is missing from the server's storage"),
        }
    )
    @action(detail=True, methods=["get"])
    def file(self, request: Request, pk=None):
        """The stored image file (EXIF orientation applied: its pixels are the masks' frame)."""
        image = self.get_object()
        path = storage.image_path(image)
        if not path.is_file():
            raise Conflict(f"the file of image {image.pk} is missing from the server's storage")
        response = file_response(path, content_type=storage.content_type(image))
        response["Cache-Control"] = "private, max-age=86400"
        return response

    @extend_schema(
        request=s.PredictSerializer,
        responses={
            200: s.PredictAnswerSerializer,
            **error_responses(
                404,
                409,
                c404="no such image, or no such refine_mask, among those the user may see",
                c409="the image's embedding cannot be computed",
            ),
        },
    )
    @action(detail=True, methods=["post"], throttle_classes=[PredictRateThrottle])
    def predict(self, request: Request, pk=None) -> Response:
        """Up to three masks (COCO RLE) with predicted IoU for point (+/-) and box prompts,
        computed on the cached embedding; pass a mask's logits_id back as mask_input_id to
        refine it with the next click, or a stored mask's id as refine_mask to refine that
        mask."""
        image = self.get_object()
        body = s.PredictSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        refine = data.pop("refine_mask", None)
        if refine is not None and attempt_masks.is_attempt_mask_id(refine):
            row = attempt_masks.find_attempt_mask(refine, request.user)
            data["refine_mask"] = attempt_masks.as_mask(row) if row is not None else None
            if data["refine_mask"] is None:
                raise NotFound(f"refine_mask {refine}: no such mask among those you may see")
        elif refine is not None:
            data["refine_mask"] = access.visible_masks(request.user).filter(pk=refine).first()
            if data["refine_mask"] is None:
                raise NotFound(f"refine_mask {refine}: no such mask among those you may see")
        answer = predict.predict(image, request.user, **data)
        return Response(
            {
                **answer,
                "model": visibility.shown_to(
                    access.member_dataset_ids(request.user), answer["model"]
                ),
            }
        )

    @extend_schema(
        request=s.ReleaseSerializer,
        responses={200: s.ImageSerializer, **error_responses(409, c409=NOT_HELD)},
    )
    @action(detail=True, methods=["post"])
    def release(self, request: Request, pk=None) -> Response:
        """Give back an image you hold (skip=true sets it aside)."""
        image = self.get_object()
        body = s.ReleaseSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        image = image_holds.release_image(image, request.user, skip=body.validated_data["skip"])
        return Response(s.ImageSerializer(image).data)

    @extend_schema(
        request=None, responses={200: s.ImageSerializer, **error_responses(409, c409=NOT_HELD)}
    )
    @action(detail=True, methods=["post"])
    def complete(self, request: Request, pk=None) -> Response:
        """Mark an image you hold as done in its stage."""
        image = image_holds.complete_image(self.get_object(), request.user)
        return Response(s.ImageSerializer(image).data)

    @extend_schema(request=s.StageSerializer, responses=s.ImageSerializer)
    @action(detail=True, methods=["post"])
    def stage(self, request: Request, pk=None) -> Response:
        """Move the image to a stage (admins)."""
        image = self.get_object()
        access.require_admin(request.user, image.dataset, "change stages")
        body = s.StageSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        image_holds.change_stage(image.dataset, [image.pk], data["stage"], data["status"])
        image.refresh_from_db()
        return Response(s.ImageSerializer(image).data)

    @extend_schema(request=None, responses={202: OpenApiResponse(s.ImageSerializer)})
    @action(detail=True, methods=["post"])
    def embed(self, request: Request, pk=None) -> Response:
        """Queue the image's embedding again (admins), e.g. after it failed."""
        image = self.get_object()
        access.require_admin(request.user, image.dataset, "queue embeddings")
        embeddings.queue_embedding(image)
        return Response(s.ImageSerializer(image).data, status=status.HTTP_202_ACCEPTED)
