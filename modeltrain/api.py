"""REST API of retraining: model versions (list, read; promote and roll back: staff) and
training rounds (launch and cancel: staff; read: staff and the dataset's admins).

    GET  /api/model-versions/               signed-in users: the versions whose training data they
                                            may see (registry.visibility); staff: all
    POST /api/model-versions/{id}/promote/  staff
    POST /api/model-versions/rollback/      staff: back to the active version's parent
    GET  /api/training-rounds/[?dataset=]   staff, dataset admins (their datasets' rounds)
    POST /api/training-rounds/              staff: {"dataset", "mode", "promotion", "options"}
    POST /api/training-rounds/{id}/cancel/  staff
    GET  /api/datasets/{id}/jobs/           the dataset's admins: passes, rounds, imports and
                                            exports in one list (the dashboard's jobs panel)
"""

from __future__ import annotations

from django.urls import include, path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter
from rest_framework.views import APIView

from annotation.api.base import ServiceErrorMixin, get_visible, id_param
from annotation.api.schema import error_responses
from annotation.api.serializers import id_field
from annotation.services import access, jobs
from modeltrain import jobs_panel, rounds, versions
from modeltrain.models import TrainingRound
from registry import visibility
from registry.models import ModelVersion


class ModelVersionSerializer(serializers.ModelSerializer):
    training_round = serializers.SerializerMethodField()

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "name",
            "model_type",
            "round",
            "parent",
            "is_active",
            "is_official",
            "trained_on",
            "metrics",
            "config",
            "encoder_key",
            "training_round",
            "created_at",
        ]
        read_only_fields = fields

    def get_training_round(self, version: ModelVersion) -> int | None:
        made_by = getattr(version, "training_round", None)
        return made_by.pk if made_by is not None else None


class TrainingRoundSerializer(serializers.ModelSerializer):
    dataset_name = serializers.CharField(source="dataset.name", read_only=True)

    class Meta:
        model = TrainingRound
        fields = [
            "id",
            "dataset",
            "dataset_name",
            "status",
            "trigger",
            "promotion",
            "phase",
            "step",
            "total_steps",
            "loss",
            "eta_seconds",
            "config",
            "parent",
            "result",
            "train_images",
            "train_masks",
            "heldout_images",
            "heldout_masks",
            "baseline_metrics",
            "promoted",
            "decision",
            "error",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class TrainingRoundLaunchSerializer(serializers.Serializer):
    dataset = id_field()
    mode = serializers.ChoiceField(choices=["auto", "decoder", "full"], required=False)
    promotion = serializers.ChoiceField(choices=TrainingRound.Promotion.values, required=False)
    options = serializers.DictField(
        required=False, help_text='TrainConfig fields to override, e.g. {"steps": 500}'
    )


class ModelVersionViewSet(ServiceErrorMixin, viewsets.ReadOnlyModelViewSet):
    """Model versions, newest first; the active one answers predictions."""

    serializer_class = ModelVersionSerializer

    def get_queryset(self):
        # Only versions whose training data the user may see (registry.visibility): an
        # outsider learns no other dataset's name, counts or metrics. Staff see all.
        if getattr(self, "swagger_fake_view", False):  # the schema: only the model is needed
            return ModelVersion.objects.none()
        return visibility.visible_versions(
            access.member_dataset_ids(self.request.user)
        ).select_related("training_round")

    @extend_schema(
        request=None,
        responses={200: ModelVersionSerializer, **error_responses(409, c409="cannot promote")},
    )
    @action(detail=True, methods=["post"])
    def promote(self, request: Request, pk=None) -> Response:
        """Make this version the active one (staff); re-embeds images if its encoder differs."""
        version = self.get_object()
        access.require_staff(request.user, "promote model versions")
        version = versions.promote_version(version)
        return Response(ModelVersionSerializer(version).data)

    @extend_schema(
        request=None,
        responses={
            200: ModelVersionSerializer,
            **error_responses(409, c409="the active version has no parent"),
        },
    )
    @action(detail=False, methods=["post"])
    def rollback(self, request: Request) -> Response:
        """Activate the parent of the active version (staff); 409 when it has none."""
        access.require_staff(request.user, "roll back model versions")
        version = versions.rollback_version()
        return Response(ModelVersionSerializer(version).data)


@extend_schema(parameters=[OpenApiParameter("dataset", int)])
class TrainingRoundViewSet(
    ServiceErrorMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Training rounds with their progress (step, loss, eta) and outcome."""

    serializer_class = TrainingRoundSerializer

    def get_queryset(self):
        if self.action in ("list", "retrieve") and not getattr(self, "swagger_fake_view", False):
            jobs.fail_lost(TrainingRound)  # a round whose worker is gone reads as failed
        queryset = rounds.visible_rounds(self.request.user)
        dataset = id_param(self.request.query_params, "dataset")
        if self.action == "list" and dataset is not None:
            queryset = queryset.filter(dataset_id=dataset)
        return queryset

    @extend_schema(
        request=TrainingRoundLaunchSerializer,
        responses={
            202: TrainingRoundSerializer,
            **error_responses(
                404, 409, c404="no such dataset", c409="a round is already queued or running"
            ),
        },
    )
    def create(self, request: Request) -> Response:
        """Launch a round on a dataset from the active version (staff); 202, a gpu worker
        runs it."""
        access.require_staff(request.user, "launch training rounds")
        body = TrainingRoundLaunchSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        dataset = get_visible(access.visible_datasets(request.user), data["dataset"])
        run = rounds.launch_training_round(
            dataset,
            request.user,
            mode=data.get("mode"),
            promotion=data.get("promotion"),
            options=data.get("options"),
        )
        run.refresh_from_db()
        return Response(TrainingRoundSerializer(run).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        request=None,
        responses={
            200: TrainingRoundSerializer,
            **error_responses(409, c409="the round is not queued or running"),
        },
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk=None) -> Response:
        """Stop a queued or running round (staff); no version is made."""
        run = self.get_object()
        access.require_staff(request.user, "cancel training rounds")
        run = rounds.cancel_training_round(run)
        return Response(TrainingRoundSerializer(run).data)


class RoundProgressSerializer(serializers.Serializer):
    phase = serializers.CharField(help_text="export, train, evaluate, save ('' when ended)")
    step = serializers.IntegerField()
    total_steps = serializers.IntegerField()
    loss = serializers.FloatField(allow_null=True, help_text="mean loss of the last steps")
    eta_seconds = serializers.FloatField(allow_null=True)
    train_masks = serializers.IntegerField()
    heldout_masks = serializers.IntegerField()


class JobSerializer(serializers.Serializer):
    """One background job of a dataset (modeltrain.jobs_panel)."""

    # A string, not an enum: "kind" already names the pass kinds' enum in the schema.
    kind = serializers.CharField(help_text="automatic_pass, training_round, import or export")
    id = serializers.IntegerField()
    title = serializers.CharField()
    status = serializers.ChoiceField(choices=TrainingRound.Status.values)
    active = serializers.BooleanField(help_text="queued or running: it can be cancelled")
    error = serializers.CharField(allow_blank=True)
    done = serializers.IntegerField(allow_null=True, help_text="images or steps done")
    total = serializers.IntegerField(allow_null=True, help_text="of how many (null: not known)")
    unit = serializers.CharField(allow_blank=True, help_text="images or steps")
    detail = serializers.CharField(allow_blank=True)
    round = RoundProgressSerializer(allow_null=True, help_text="training rounds only")
    download_url = serializers.CharField(allow_null=True, help_text="a finished export's files")
    cancel_url = serializers.CharField(help_text="POST here to cancel it while it is active")
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class DatasetJobsView(ServiceErrorMixin, APIView):
    """GET: the dataset's automatic passes, training rounds, imports and exports in one list
    (its admins), active ones first, with progress and the URL that cancels each."""

    @extend_schema(responses={200: JobSerializer(many=True)}, summary="The dataset's jobs")
    def get(self, request: Request, dataset_id: int) -> Response:
        dataset = get_visible(access.visible_datasets(request.user), dataset_id)
        access.require_admin(request.user, dataset, "see its jobs")
        return Response(
            JobSerializer(jobs_panel.dataset_jobs(dataset, request.user), many=True).data
        )


router = SimpleRouter()
router.register("model-versions", ModelVersionViewSet, basename="modelversion")
router.register("training-rounds", TrainingRoundViewSet, basename="traininground")
urlpatterns = [
    path("datasets/<int:dataset_id>/jobs/", DatasetJobsView.as_view(), name="dataset-jobs"),
    path("", include(router.urls)),
]
