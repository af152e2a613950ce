"""One throttle for every way to sign in (annotation.api.throttles.SignInRateThrottle).

Password guessing works through any form that checks a password: the token endpoint, the sign-in
page, the browsable API's log-in form and the admin site's. This middleware counts POSTs to all
of them together per client address and answers 429 with ``Retry-After`` over the limit, as JSON
under /api/ and as plain text elsewhere, before the password is checked.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import NoReverseMatch, reverse

from annotation.api.throttles import SignInRateThrottle

SIGNIN_URL_NAMES = ("api-token", "login", "rest_framework:login", "admin:login")


@lru_cache(maxsize=1)
def signin_paths() -> frozenset[str]:
    paths = set()
    for name in SIGNIN_URL_NAMES:
        try:
            paths.add(reverse(name))
        except NoReverseMatch:
            continue
    return frozenset(paths)


class SignInThrottleMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method == "POST" and request.path in signin_paths():
            throttle = SignInRateThrottle()
            if not throttle.allow_request(request, None):
                return _too_many(request, throttle)
        return self.get_response(request)


def _too_many(request: HttpRequest, throttle: SignInRateThrottle) -> HttpResponse:
    wait = max(1, math.ceil(throttle.wait() or 1))
    message = (
        f"too many sign-in attempts from this address (at most {throttle.rate}, "
        f"SADE_SIGNIN_RATE); try again in {wait} s"
    )
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse({"detail": message}, status=429)
    else:
        response = HttpResponse(message, status=429, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(wait)
    return response
