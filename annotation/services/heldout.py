"""Which images a training round will hold out for evaluation, known before any round runs, so
that the annotation queue does not hand them out first.

The rule is the content hash's (``heldout_by_hash``; modeltrain.round_export applies it, capped
at settings.TRAINING_HELDOUT_MAX_IMAGES, and records each image's side once). A first round
trains only on images that are not held out: when the first images annotated are held-out ones,
it is refused with nothing to train on. So held-out candidates wait in the queue until
``HELDOUT_AFTER_DONE`` other images of the dataset are done; after that the queue is plain
oldest-first again, and the held-out set fills as the stage goes on (handing them out only at
the very end would leave every round until then with nothing to evaluate on).
"""

from __future__ import annotations

import math

from django.conf import settings
from django.db.models import Case, IntegerField, Q, QuerySet, Value, When

from annotation.models import Dataset, Image, ImageStatus

HASH_DIGITS = 12
# Done images (not held out) a dataset needs before held-out candidates are handed out.
HELDOUT_AFTER_DONE = 5


def heldout_by_hash(sha256: str, fraction: float) -> bool:
    """The split rule: an image's content hash, read as a number in [0, 1), below the fraction.
    Deterministic, so the same image lands on the same side in every installation."""
    return int(sha256[:HASH_DIGITS], 16) / float(16**HASH_DIGITS) < fraction


def likely_heldout(fraction: float | None = None) -> Q:
    """``heldout_by_hash`` as a filter on Image: for a lower-case hex hash, its first 12 digits
    read as a number are below ``fraction`` * 16^12 exactly when the hash sorts before that
    bound written as 12 hex digits (digits past the 12th cannot reverse the order)."""
    fraction = float(settings.TRAINING_HELDOUT_FRACTION if fraction is None else fraction)
    if fraction <= 0:
        return Q(pk__in=[])
    bound = math.ceil(fraction * 16**HASH_DIGITS)
    if bound >= 16**HASH_DIGITS:
        return ~Q(pk__in=[])
    return Q(content_sha256__lt=format(bound, f"0{HASH_DIGITS}x"))


def queue_order(dataset: Dataset, images: QuerySet[Image]) -> QuerySet[Image]:
    """``images`` (of ``dataset``) in the order the queue hands them out: oldest first, with the
    held-out candidates last while the dataset has fewer than HELDOUT_AFTER_DONE done images
    that are not held-out candidates."""
    heldout = likely_heldout()
    done = Image.objects.filter(dataset=dataset, status=ImageStatus.DONE).exclude(heldout)
    if done[:HELDOUT_AFTER_DONE].count() >= HELDOUT_AFTER_DONE:
        return images.order_by("created_at", "pk")
    later = Case(When(heldout, then=Value(1)), default=Value(0), output_field=IntegerField())
    return images.alias(heldout_later=later).order_by("heldout_later", "created_at", "pk")
