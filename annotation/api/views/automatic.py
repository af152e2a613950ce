"""Automatic passes: launch one on a dataset (its admins), follow its progress, cancel or
resume it."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api.automatic_serializers import (
    AutomaticPassLaunchAnswerSerializer,
    AutomaticPassLaunchSerializer,
    AutomaticPassPreviewSerializer,
    AutomaticPassSerializer,
)
from annotation.api.base import ServiceErrorMixin, get_visible, id_param
from annotation.api.schema import error_responses
from annotation.models import AutomaticPass
from annotation.services import access, automatic, automatic_plan

NOT_RUNNING = "the pass is not queued or running"


class DatasetAutomaticPassesView(ServiceErrorMixin, APIView):
    """POST launches an automatic pass of the active model over images of the dataset (its
    admins; 202, the pass runs in gpu workers; the answer says what it leaves alone because
    people reviewed it); GET lists the dataset's passes."""

    @extend_schema(responses=AutomaticPassSerializer(many=True))
    def get(self, request: Request, dataset_id: int) -> Response:
        dataset = get_visible(access.visible_datasets(request.user), dataset_id)
        access.require_admin(request.user, dataset, "see automatic passes")
        passes = automatic.visible_passes(request.user).filter(dataset=dataset)
        return Response(AutomaticPassSerializer(passes, many=True).data)

    @extend_schema(
        request=AutomaticPassLaunchSerializer, responses={202: AutomaticPassLaunchAnswerSerializer}
    )
    def post(self, request: Request, dataset_id: int) -> Response:
        dataset = get_visible(access.visible_datasets(request.user), dataset_id)
        access.require_admin(request.user, dataset, "launch automatic passes")
        body = AutomaticPassLaunchSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        run = automatic.launch_automatic_pass(
            dataset, request.user, body.validated_data["kind"], **body.selection()
        )
        left_alone = run.left_alone
        run = automatic.with_progress(AutomaticPass.objects.filter(pk=run.pk)).get()
        run.left_alone = left_alone
        return Response(
            AutomaticPassLaunchAnswerSerializer(run).data, status=status.HTTP_202_ACCEPTED
        )


class AutomaticPassPreviewView(ServiceErrorMixin, APIView):
    """POST, with the body of a launch, answers what that launch would touch, recording and
    queueing nothing (the dataset's admins): images selected and to segment, what is left as
    people reviewed it, masks replaced, the model, and warnings (e.g. a cold-start model whose
    masks will not pass the preset's thresholds)."""

    @extend_schema(
        request=AutomaticPassLaunchSerializer,
        responses={200: AutomaticPassPreviewSerializer},
        summary="Preview an automatic pass or pre-fill (admins)",
    )
    def post(self, request: Request, dataset_id: int) -> Response:
        dataset = get_visible(access.visible_datasets(request.user), dataset_id)
        access.require_admin(request.user, dataset, "preview automatic passes")
        body = AutomaticPassLaunchSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        preview = automatic_plan.preview_automatic_pass(
            dataset, body.validated_data["kind"], **body.selection()
        )
        return Response(AutomaticPassPreviewSerializer(preview).data)


@extend_schema(parameters=[OpenApiParameter("dataset", int)])
class AutomaticPassViewSet(ServiceErrorMixin, viewsets.ReadOnlyModelViewSet):
    """Automatic passes of the datasets the user administers, with their progress (images
    done of the total, masks written so far)."""

    serializer_class = AutomaticPassSerializer

    def get_queryset(self):
        passes = automatic.visible_passes(self.request.user)
        dataset = id_param(self.request.query_params, "dataset")
        if self.action == "list" and dataset is not None:
            passes = passes.filter(dataset_id=dataset)
        return passes

    @extend_schema(
        request=None,
        responses={200: AutomaticPassSerializer, **error_responses(409, c409=NOT_RUNNING)},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk=None) -> Response:
        """Stop a queued or running pass; masks already written stay."""
        run = self.get_object()
        access.require_admin(request.user, run.dataset, "cancel automatic passes")
        run = automatic.cancel_automatic_pass(run)
        return Response(AutomaticPassSerializer(run).data)

    @extend_schema(
        request=None,
        responses={
            202: AutomaticPassSerializer,
            **error_responses(409, c409="every image of the pass is done"),
        },
    )
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk=None) -> Response:
        """Queue again the images not done (failed ones included)."""
        run = self.get_object()
        access.require_admin(request.user, run.dataset, "resume automatic passes")
        run = automatic.resume_automatic_pass(run)
        return Response(AutomaticPassSerializer(run).data, status=status.HTTP_202_ACCEPTED)
