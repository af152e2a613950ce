"""``GET /healthz``: is this web process able to serve? It checks that the database answers a
``SELECT 1`` and that the Celery broker accepts a connection, and says only "ok" or
"unavailable" (503): no versions, hosts or error texts, since anyone may call it. What failed
goes to the log.

It is a middleware placed first, not a view, so that it answers before host validation and the
HTTPS redirect: Docker and load balancers probe it over plain HTTP on the container's own
address, which is neither HTTPS nor one of DJANGO_ALLOWED_HOSTS.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse

logger = logging.getLogger(__name__)

PATH = "/healthz"
BROKER_TIMEOUT_SECONDS = 2.0


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_broker() -> None:
    from deploy.celery import app

    with app.connection_for_write() as conn:
        # One try, bounded: a health check must answer quickly, not wait out retries.
        conn.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_SECONDS)


CHECKS: dict[str, Callable[[], None]] = {"database": check_database, "broker": check_broker}


def failed_checks() -> list[str]:
    """Names of the checks that failed (logged with their error)."""
    failed = []
    for name, check in CHECKS.items():
        try:
            check()
        except Exception as exc:  # any failure is "unavailable"; the reason is for the log
            logger.warning("health check %s failed: %s: %s", name, exc.__class__.__name__, exc)
            failed.append(name)
    return failed


class HealthCheckMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.rstrip("/") != PATH:
            return self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            return JsonResponse({"detail": "use GET"}, status=405, headers={"Allow": "GET, HEAD"})
        if failed_checks():
            response = JsonResponse({"status": "unavailable"}, status=503)
        else:
            response = JsonResponse({"status": "ok"})
        response["Cache-Control"] = "no-store"
        return response
