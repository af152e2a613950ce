"""Annotator sessions: start, heartbeat, finish."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from annotation.api import serializers as s
from annotation.api.base import ServiceErrorMixin, get_visible
from annotation.api.schema import error_responses
from annotation.services import access, sessions

SESSION_CHANGE = {
    200: s.SessionSerializer,
    **error_responses(409, c409="the session is finished; start a new one"),
}


class SessionViewSet(
    ServiceErrorMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Your sessions (dataset admins see every session in their datasets). Starting a session
    on an image where yours is still open returns that one (200)."""

    serializer_class = s.SessionSerializer

    def get_queryset(self):
        return access.visible_sessions(self.request.user)

    @extend_schema(
        request=s.SessionStartSerializer,
        responses={
            201: s.SessionSerializer,
            200: OpenApiResponse(s.SessionSerializer, description="your open session there"),
            **error_responses(404, c404="no such image among those the user may see"),
        },
    )
    def create(self, request: Request) -> Response:
        body = s.SessionStartSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        image = get_visible(access.visible_images(request.user), body.validated_data["image"])
        session, created = sessions.start_session(image, request.user)
        return Response(
            s.SessionSerializer(session).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @extend_schema(request=s.HeartbeatSerializer, responses=SESSION_CHANGE)
    @action(detail=True, methods=["post"])
    def heartbeat(self, request: Request, pk=None) -> Response:
        """Count active time (bounded by the time since the last heartbeat) and renew the hold."""
        body = s.HeartbeatSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        session = self.get_object()
        access.require_session_owner(request.user, session)
        session = sessions.heartbeat_session(
            session, request.user, body.validated_data.get("active_seconds")
        )
        return Response(s.SessionSerializer(session).data)

    @extend_schema(request=s.HeartbeatSerializer, responses=SESSION_CHANGE)
    @action(detail=True, methods=["post"])
    def finish(self, request: Request, pk=None) -> Response:
        body = s.HeartbeatSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        session = self.get_object()
        access.require_session_owner(request.user, session)
        session = sessions.finish_session(session, body.validated_data.get("active_seconds"))
        return Response(s.SessionSerializer(session).data)
