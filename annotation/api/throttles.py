"""Rate limits: predict and "Everything" per user, sign-in attempts per client address (settings
PREDICT_RATE, EVERYTHING_RATE, SIGNIN_RATE, from SADE_PREDICT_RATE etc.).

Read at each request, not at import like DRF's DEFAULT_THROTTLE_RATES, so a deployment's setting
and a test's override both apply. Counted in Django's cache, which every web process shares
(Redis in production), so the limit holds across processes and machines. Over it: 429 with
Retry-After and a message naming the limit."""

from __future__ import annotations

from django.conf import settings
from rest_framework.exceptions import Throttled
from rest_framework.throttling import SimpleRateThrottle, UserRateThrottle


class PredictRateThrottle(UserRateThrottle):
    scope = "predict"

    def get_rate(self) -> str | None:
        return settings.PREDICT_RATE or None

    def throttle_failure(self) -> bool:
        wait = self.wait()
        raise Throttled(
            wait=wait,
            detail=f"at most {self.rate} predictions per user (SADE_PREDICT_RATE); "
            f"try again in {int(wait or 0) + 1} s",
        )


class SignInRateThrottle(SimpleRateThrottle):
    """Sign-in attempts per client address (settings.SIGNIN_RATE), every way in counted together:
    the token endpoint, the sign-in page, the browsable API's and the admin site's log-in forms
    (deploy.signin.SignInThrottleMiddleware). The address is the peer's, or the proxy's
    X-Forwarded-For entry when REST_FRAMEWORK["NUM_PROXIES"] says a proxy is in front."""

    scope = "signin"

    def get_rate(self) -> str | None:
        return settings.SIGNIN_RATE or None

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class EverythingRateThrottle(UserRateThrottle):
    """ "Everything" requests per user (settings.EVERYTHING_RATE): each holds a web thread for
    seconds, so far fewer than predictions."""

    scope = "everything"

    def get_rate(self) -> str | None:
        return settings.EVERYTHING_RATE or None

    def throttle_failure(self) -> bool:
        wait = self.wait()
        raise Throttled(
            wait=wait,
            detail=f"at most {self.rate} Everything requests per user (SADE_EVERYTHING_RATE); "
            f"try again in {int(wait or 0) + 1} s",
        )
