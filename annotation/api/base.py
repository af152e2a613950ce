"""What every view shares: service errors become 4xx answers with the service's message, and
lookups are confined to what the user may see."""

from __future__ import annotations

from typing import Any

from django.db.models import Model, QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404
from rest_framework import serializers
from rest_framework.response import Response

from annotation.services.errors import ServiceError
from engine.registry import CheckpointError


class ServiceErrorMixin:
    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, ServiceError):
            return Response({"detail": exc.message, **exc.details}, status=exc.status_code)
        if isinstance(exc, CheckpointError):
            return Response(
                {"detail": f"the configured model checkpoint cannot be loaded: {exc}"},
                status=503,
            )
        return super().handle_exception(exc)  # type: ignore[misc]


# Ids are the database's signed 64-bit integers: a larger number is no object's id, and
# SQLite cannot even bind it in a query (OverflowError).
MAX_ID = 2**63 - 1


def get_visible(queryset: QuerySet, pk: Any) -> Model:
    """The object with this id among those the user may see, else 404."""
    try:
        pk = int(pk)
    except (TypeError, ValueError):
        raise serializers.ValidationError({"id": f"{str(pk)[:40]!r} is not an id"}) from None
    if not 0 < pk <= MAX_ID:
        raise Http404(f"no object with id {pk}")
    return get_object_or_404(queryset, pk=pk)


def choice_param(params: Any, name: str, choices: list[Any], cast: type = str) -> Any:
    """A validated optional query parameter (400 naming the allowed values)."""
    raw = params.get(name)
    if raw in (None, ""):
        return None
    try:
        value = cast(raw)
    except (TypeError, ValueError):
        value = None
    if value not in choices:
        allowed = ", ".join(str(c) for c in choices)
        raise serializers.ValidationError({name: f"{raw[:40]!r} is not one of {allowed}"})
    return value


def id_param(params: Any, name: str) -> int | None:
    """An optional id in the query: a whole number from 1 to MAX_ID, else 400."""
    return number_param(params, name, minimum=1, what="an id")


def number_param(
    params: Any, name: str, *, minimum: int = 0, what: str = "a whole number from 0"
) -> int | None:
    """An optional whole number in the query, from ``minimum`` to MAX_ID, else 400."""
    raw = params.get(name)
    if raw in (None, ""):
        return None
    try:
        value = int(raw)
    except (TypeError, ValueError):
        value = minimum - 1
    if not minimum <= value <= MAX_ID:
        raise serializers.ValidationError({name: f"{raw[:40]!r} is not {what}"})
    return value
