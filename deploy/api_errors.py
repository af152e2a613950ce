"""JSON error answers for everything under /api/, including what never reaches a DRF view.

DRF answers its views' errors in JSON (annotation.api.errors), but some answers under /api/ come
from Django itself, as HTML pages: a path that matches no route (404), a request Django refuses
before any view (a bad Host, an unreadable form: 400), a method a plain Django view does not
take (405), a CSRF failure on the sign-in form (403), and any unhandled exception (500, also
the DEBUG traceback page). This middleware, outside all the others, replaces such an answer
under /api/ with ``{"detail": ...}`` and the same status and headers (Allow, Retry-After, ...).
Answers that already are JSON, and DRF's own (the browsable API's HTML pages), pass unchanged.

``bad_request`` (deploy.urls' handler400) tells an oversized form that Django refused outside a
DRF view (too many files or fields) from other bad requests: a 413 naming the limit.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework.response import Response as DrfResponse

from annotation.api.errors import too_large_message

API_PREFIX = "/api/"


class ApiJsonErrorsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code < 400
            or not request.path.startswith(API_PREFIX)
            or isinstance(response, DrfResponse)
            or response.get("Content-Type", "").startswith("application/json")
            or response.streaming
        ):
            return response
        return as_json(request, response)


def as_json(request: HttpRequest, response: HttpResponse) -> JsonResponse:
    answer = JsonResponse({"detail": describe(request, response)}, status=response.status_code)
    for header, value in response.items():
        if header.lower() not in ("content-type", "content-length"):
            answer[header] = value
    answer.cookies = response.cookies
    return answer


def describe(request: HttpRequest, response: HttpResponse) -> str:
    status = response.status_code
    path = request.path if len(request.path) <= 200 else request.path[:200] + "…"
    if status == 404:
        return f"no API endpoint or object at {path}"
    if status == 405:
        allowed = response.get("Allow", "")
        return f"method {request.method} is not allowed on {path}" + (
            f"; allowed: {allowed}" if allowed else ""
        )
    if status == 400:
        return "bad request: the server could not read it (a malformed body, form or header)"
    if status == 403:
        return "forbidden: the request was refused (for a form: CSRF verification failed)"
    if status >= 500:
        return "server error: the failure is logged on the server"
    try:
        return HTTPStatus(status).phrase.lower()
    except ValueError:
        return f"error {status}"


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if isinstance(exception, RequestDataTooBig | TooManyFilesSent | TooManyFieldsSent):
        if request.path.startswith(API_PREFIX):
            return JsonResponse({"detail": too_large_message(exception)}, status=413)
        return HttpResponse(too_large_message(exception), status=413, content_type="text/plain")
    return defaults.bad_request(request, exception)
