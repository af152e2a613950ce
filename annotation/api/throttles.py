"""The per-user rate limit of predict (settings.PREDICT_RATE, from SADE_PREDICT_RATE).

Read at each request, not at import like DRF's DEFAULT_THROTTLE_RATES, so a deployment's setting
and a test's override both apply. Counted in Django's cache, which every web process shares
(Redis in production), so the limit holds across processes and machines. Over it: 429 with
Retry-After and a message naming the limit."""

from __future__ import annotations

from django.conf import settings
from rest_framework.exceptions import Throttled
from rest_framework.throttling import UserRateThrottle


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
