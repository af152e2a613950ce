"""Who am I, and which model answers."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api import serializers as s
from annotation.api.base import ServiceErrorMixin
from annotation.models import DatasetMembership
from annotation.services import access
from modeltrain import visibility
from modeltrain.runtime import model_status


class MeView(APIView):
    @extend_schema(responses=s.UserSerializer)
    def get(self, request: Request) -> Response:
        user = request.user
        if user.is_staff:
            datasets = [
                {"id": d.pk, "name": d.name, "role": "admin"} for d in access.visible_datasets(user)
            ]
        else:
            memberships = DatasetMembership.objects.filter(user=user).select_related("dataset")
            datasets = [
                {"id": m.dataset_id, "name": m.dataset.name, "role": m.role} for m in memberships
            ]
        return Response(
            {
                "id": user.pk,
                "username": user.username,
                "is_staff": user.is_staff,
                "datasets": datasets,
            }
        )


class ModelStatusView(ServiceErrorMixin, APIView):
    @extend_schema(responses=s.ModelStatusSerializer)
    def get(self, request: Request) -> Response:
        """The active model version: which weights answer predictions, whether they are Meta's
        official checkpoint, and (when not) a hint on installing it."""
        return Response(visibility.shown_to(request.user, model_status()))
