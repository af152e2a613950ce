from django.urls import include, path
from rest_framework.routers import DefaultRouter

from annotation.api.views.account import MeTodayView, MeView, ModelStatusView, TokenView
from annotation.api.views.audits import AuditViewSet, DatasetAuditsView
from annotation.api.views.automatic import (
    AutomaticPassPreviewView,
    AutomaticPassViewSet,
    DatasetAutomaticPassesView,
)
from annotation.api.views.datasets import DatasetViewSet, ImportJobViewSet
from annotation.api.views.everything import EverythingView
from annotation.api.views.exports import (
    DatasetAnnotationImportView,
    DatasetExportsView,
    DatasetStatsView,
    ExportViewSet,
)
from annotation.api.views.images import ImageViewSet
from annotation.api.views.labels import DatasetLabelsView, DatasetLabelView
from annotation.api.views.masks import MaskViewSet
from annotation.api.views.prefetch import PrepareImageView, UpcomingImagesView
from annotation.api.views.quality import (
    AgreementView,
    AnnotatorAccuracyView,
    GroundTruthUnmarkView,
    GroundTruthView,
    QualitySettingsView,
)
from annotation.api.views.sessions import SessionViewSet

router = DefaultRouter()
router.register("datasets", DatasetViewSet, basename="dataset")
router.register("images", ImageViewSet, basename="image")
router.register("masks", MaskViewSet, basename="mask")
router.register("sessions", SessionViewSet, basename="session")
router.register("import-jobs", ImportJobViewSet, basename="importjob")
router.register("exports", ExportViewSet, basename="export")
router.register("automatic-passes", AutomaticPassViewSet, basename="automaticpass")
router.register("audits", AuditViewSet, basename="audit")

urlpatterns = [
    path("auth/token/", TokenView.as_view(), name="api-token"),
    path("me/", MeView.as_view(), name="api-me"),
    path("me/today/", MeTodayView.as_view(), name="api-me-today"),
    path("model/", ModelStatusView.as_view(), name="api-model"),
    path(
        "datasets/<int:dataset_id>/automatic-passes/",
        DatasetAutomaticPassesView.as_view(),
        name="dataset-automatic-passes",
    ),
    path(
        "datasets/<int:dataset_id>/automatic-passes/preview/",
        AutomaticPassPreviewView.as_view(),
        name="dataset-automatic-pass-preview",
    ),
    path("datasets/<int:dataset_id>/audits/", DatasetAuditsView.as_view(), name="dataset-audits"),
    path(
        "datasets/<int:dataset_id>/exports/", DatasetExportsView.as_view(), name="dataset-exports"
    ),
    path(
        "datasets/<int:dataset_id>/annotation-imports/",
        DatasetAnnotationImportView.as_view(),
        name="dataset-annotation-imports",
    ),
    path("datasets/<int:dataset_id>/labels/", DatasetLabelsView.as_view(), name="dataset-labels"),
    path(
        "datasets/<int:dataset_id>/labels/<int:label_id>/",
        DatasetLabelView.as_view(),
        name="dataset-label",
    ),
    path("datasets/<int:dataset_id>/stats/", DatasetStatsView.as_view(), name="dataset-stats"),
    path(
        "datasets/<int:dataset_id>/quality/settings/",
        QualitySettingsView.as_view(),
        name="dataset-quality-settings",
    ),
    path(
        "datasets/<int:dataset_id>/quality/ground-truth/",
        GroundTruthView.as_view(),
        name="dataset-quality-ground-truth",
    ),
    path(
        "datasets/<int:dataset_id>/quality/ground-truth/unmark/",
        GroundTruthUnmarkView.as_view(),
        name="dataset-quality-ground-truth-unmark",
    ),
    path(
        "datasets/<int:dataset_id>/quality/annotators/",
        AnnotatorAccuracyView.as_view(),
        name="dataset-quality-annotators",
    ),
    path(
        "datasets/<int:dataset_id>/quality/agreement/",
        AgreementView.as_view(),
        name="dataset-quality-agreement",
    ),
    path(
        "datasets/<int:dataset_id>/upcoming-images/",
        UpcomingImagesView.as_view(),
        name="dataset-upcoming-images",
    ),
    path("images/<int:image_id>/everything/", EverythingView.as_view(), name="image-everything"),
    path("images/<int:image_id>/prepare/", PrepareImageView.as_view(), name="image-prepare"),
    path("", include(router.urls)),
]
