"""Refusing oversized request bodies before anything reads them.

Django limits bodies that are not file uploads (DATA_UPLOAD_MAX_MEMORY_SIZE) but only once a
view reads them, and file uploads not at all: a multi-gigabyte upload would be streamed to a
temporary file first. This middleware answers 413 from the declared Content-Length alone,
naming the limit and the variable that sets it. The reverse proxy applies the same upload
limit (deploy/Caddyfile), so an oversized body is not even forwarded.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse


def body_limit(request: HttpRequest) -> tuple[int | None, str]:
    """The largest body this request may have, and the variable that sets it."""
    if request.content_type == "multipart/form-data":
        return settings.MAX_UPLOAD_BYTES, "SADE_MAX_UPLOAD_BYTES"
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE, "SADE_MAX_REQUEST_BYTES"


class RequestSizeLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return JsonResponse({"detail": "Content-Length is not a number"}, status=400)
        limit, variable = body_limit(request)
        if limit is not None and length > limit:  # Django's None: no limit
            return JsonResponse(
                {
                    "detail": f"the request body is {length} bytes, over the limit of {limit} "
                    f"bytes ({variable})",
                    "limit_bytes": limit,
                },
                status=413,
            )
        return self.get_response(request)
