"""Promoting and rolling back model versions, and what follows a promotion: when the new version's
image encoder differs, the images annotators will open next are queued for re-embedding.

Every process looks the active version up per request (registry.active.get_active_version)
and keys its loaded predictors by checkpoint and encoder (registry.predictors), so a promotion
made in one process is what the next click in any other process gets.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from annotation.models import EmbeddingStatus, Image, ImageStatus, Stage
from annotation.services.errors import Conflict
from annotation.services.queueing import queue_task
from registry.active import activate_version, get_active_version
from registry.models import ModelVersion

logger = logging.getLogger(__name__)

# Stages whose pending images a person (or the stage-2 pre-fill) opens next; stage 3's
# automatic pass computes embeddings as it goes.
REEMBED_STAGES = (Stage.ASSISTED_MANUAL, Stage.SEMI_AUTOMATIC)


def promote_version(version: ModelVersion) -> ModelVersion:
    """Make ``version`` the active one (by staff, checked by the views and the admin, or by the
    system's own automatic promotion). Queues re-embedding when the encoder changed."""
    previous = get_active_version()
    if previous.pk == version.pk:
        return version
    with transaction.atomic():
        active = activate_version(version)
        if active.pk == version.pk and previous.embedding_key != version.embedding_key:
            queue_reembedding(version)
    logger.info("model version %s promoted (was %s)", version.name, previous.name)
    return active


def rollback_version() -> ModelVersion:
    """Go back from the active version to the one it was trained from (its parent)."""
    active = get_active_version()
    if active.parent is None:
        raise Conflict(
            f"the active version {active.name!r} has no parent to roll back to; promote "
            "another version instead"
        )
    return promote_version(active.parent)


def queue_reembedding(version: ModelVersion) -> None:
    """Queue (after commit) the task that re-embeds the pending images under ``version``."""
    queue_task("modeltrain.reembed_images", version.pk)


def reembed_images(version: ModelVersion) -> int:
    """The cpu task's work: mark the pending stage-1/2 images whose embedding is not yet under
    ``version``'s encoder as queued, and queue one embedding task each. Nothing when
    ``version`` is no longer active (rolled back meanwhile). Returns the images queued."""
    if not ModelVersion.objects.filter(pk=version.pk, is_active=True).exists():
        return 0
    stale = Image.objects.filter(status=ImageStatus.PENDING, stage__in=REEMBED_STAGES).exclude(
        encoder_key=version.embedding_key, embedding_status=EmbeddingStatus.DONE
    )
    ids = list(stale.values_list("pk", flat=True))
    with transaction.atomic():
        Image.objects.filter(pk__in=ids).update(
            embedding_status=EmbeddingStatus.QUEUED, encoder_key=version.embedding_key
        )
        for image_id in ids:
            queue_task("annotation.embed_image", image_id)
    return len(ids)


def better(new: dict[str, Any], old: dict[str, Any]) -> tuple[bool, str]:
    """Whether held-out metrics ``new`` beat ``old`` (the same held-out masks): fewer clicks to
    90 % IoU, or as many and a better 1-click mIoU; and why, in words."""
    if not new.get("masks"):
        return False, "no held-out masks to compare on"
    line = (
        f"NoC@90 {new['noc90']:.2f} vs {old.get('noc90', float('nan')):.2f}, 1-click mIoU "
        f"{new['miou_1click_top']:.3f} vs {old.get('miou_1click_top', float('nan')):.3f}"
    )
    if new["noc90"] < old["noc90"]:
        return True, f"better: {line}"
    if new["noc90"] == old["noc90"] and new["miou_1click_top"] > old["miou_1click_top"]:
        return True, f"better: {line}"
    return False, f"not better: {line}"
