"""Signing in for a token, who am I, and which model answers."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import parsers
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api import serializers as s
from annotation.api.base import ServiceErrorMixin
from annotation.api.errors import ErrorSerializer
from annotation.api.parsers import BoundedJSONParser
from annotation.models import DatasetMembership
from annotation.services import access
from annotation.services.sessions import annotator_today
from registry import visibility
from registry.predictors import model_status


class TokenView(ObtainAuthToken):
    """DRF's token endpoint with this API's JSON parser (bounded nesting) and a schema that
    says it needs no credentials and how it fails. Sign-in attempts are throttled per client
    address by deploy.signin.SignInThrottleMiddleware."""

    permission_classes = [AllowAny]
    parser_classes = [parsers.FormParser, parsers.MultiPartParser, BoundedJSONParser]

    @extend_schema(
        responses={
            200: ObtainAuthToken.serializer_class,
            400: OpenApiResponse(ErrorSerializer, description="wrong username or password"),
            429: OpenApiResponse(
                ErrorSerializer,
                description="too many sign-in attempts from this address (SADE_SIGNIN_RATE); "
                "Retry-After says when to try again",
            ),
        }
    )
    def post(self, request: Request, *args, **kwargs) -> Response:
        """A token for the username and password (send it as ``Authorization: Token ...``)."""
        return super().post(request, *args, **kwargs)


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


class MeTodayView(APIView):
    @extend_schema(responses=s.TodaySerializer)
    def get(self, request: Request) -> Response:
        """Your work today (UTC), counted by the server over every tab and browser."""
        return Response(annotator_today(request.user))


class ModelStatusView(ServiceErrorMixin, APIView):
    @extend_schema(responses=s.ModelStatusSerializer)
    def get(self, request: Request) -> Response:
        """The active model version: which weights answer predictions, whether they are Meta's
        official checkpoint, and (when not) a hint on installing it."""
        return Response(
            visibility.shown_to(access.member_dataset_ids(request.user), model_status())
        )
