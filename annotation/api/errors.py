"""Error answers of the API: one JSON shape, ``{"detail": str, ...}``, whatever went wrong.

``exception_handler`` (REST_FRAMEWORK["EXCEPTION_HANDLER"]) is DRF's with three additions:
- Django's refusals of an oversized request (too many files, fields or bytes in a form), which
  DRF leaves to Django's HTML 400 page, are a 413 naming the limit and the setting;
- Django's own ValidationError (a model's or a lookup's) is a 400 like a serializer's;
- a serializer's field errors (``{"field": ["message"]}``) also get a ``detail`` that sums them
  up, so a client can always show ``detail``.
Anything else is a server bug: DRF re-raises it and deploy.api_errors answers a JSON 500.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

MAX_SUMMARY_CHARS = 500


class ErrorSerializer(serializers.Serializer):
    """For the schema: every error answer. Field errors add one list of messages per field."""

    detail = serializers.CharField(help_text="what was wrong, for a person to read")


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, RequestDataTooBig | TooManyFilesSent | TooManyFieldsSent):
        return Response({"detail": too_large_message(exc)}, status=413)
    if isinstance(exc, DjangoValidationError):
        exc = ValidationError(serializers.as_serializer_error(exc))
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(exc, ValidationError):
        response.data = with_detail(response.data)
    return response


def too_large_message(exc: Exception) -> str:
    if isinstance(exc, TooManyFilesSent):
        return (
            f"too many files in one request: at most {settings.DATA_UPLOAD_MAX_NUMBER_FILES} "
            "(SADE_MAX_UPLOAD_FILES); send them in several requests"
        )
    if isinstance(exc, TooManyFieldsSent):
        return (
            f"too many form fields in one request: at most {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS}"
        )
    return (
        f"the request body is over the limit of {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes "
        "(SADE_MAX_REQUEST_BYTES)"
    )


def with_detail(data: Any) -> dict:
    """A validation error's body with a ``detail`` that sums up the field errors."""
    if isinstance(data, dict):
        if isinstance(data.get("detail"), str):
            return data
        return {"detail": summarize(data), **{k: v for k, v in data.items() if k != "detail"}}
    return {"detail": summarize(data)}


def summarize(errors: Any) -> str:
    """``field: message; other.0: message`` from DRF's nested error structure."""
    parts: list[str] = []
    stack: list[tuple[str, Any]] = [("", errors)]
    while stack and sum(map(len, parts)) < MAX_SUMMARY_CHARS:
        prefix, value = stack.pop(0)
        if isinstance(value, dict):
            stack[:0] = [(_join(prefix, key), v) for key, v in value.items()]
        elif isinstance(value, list):
            stack[:0] = [(prefix, v) for v in value]
        else:
            parts.append(f"{prefix}: {value}" if prefix else str(value))
    summary = "; ".join(parts) or "invalid input"
    if len(summary) > MAX_SUMMARY_CHARS:
        summary = summary[: MAX_SUMMARY_CHARS - 1] + "…"
    return summary


def _join(prefix: str, key: Any) -> str:
    if key == api_settings.NON_FIELD_ERRORS_KEY:
        return prefix
    return f"{prefix}.{key}" if prefix else str(key)
