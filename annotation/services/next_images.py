"""What the annotation tool needs around the image being annotated: each dataset's queue per
stage, the images next in line (fetched while the annotator works, so the next one opens at
once), and making sure an image's embedding is ready before anyone clicks on it."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Q
from django.utils import timezone

from annotation.models import Dataset, EmbeddingStatus, Image, ImageStatus, Stage
from annotation.services.access import role_in, visible_datasets
from annotation.services.audits import audit_held_images
from annotation.services.embeddings import (
    embedding_store,
    get_or_compute_embedding,
    queue_embedding,
)
from annotation.services.heldout import queue_order
from annotation.services.image_holds import check_stage
from registry.active import get_active_version

# Stages where people annotate; stage 3 is the model's alone.
ANNOTATED_STAGES = (Stage.ASSISTED_MANUAL, Stage.SEMI_AUTOMATIC)
MAX_UPCOMING = 5


def stage_queues(user: AbstractBaseUser) -> list[dict[str, Any]]:
    """Per dataset the user sees, their role and per annotated stage: images ``available`` (pending,
    held by nobody), held by the user (``mine``), held by others, done, skipped and in all."""
    now = timezone.now()
    held = Q(held_by__isnull=False, held_until__gt=now)
    pending = Q(status=ImageStatus.PENDING)
    audited = Q(pk__in=audit_held_images())  # not for annotators while an audit holds them
    rows = (
        Image.objects.filter(dataset__in=visible_datasets(user), stage__in=ANNOTATED_STAGES)
        .values("dataset", "stage")
        .annotate(
            total=Count("id"),
            available=Count("id", filter=pending & ~held & ~audited),
            mine=Count("id", filter=pending & held & Q(held_by=user)),
            others=Count("id", filter=pending & held & ~Q(held_by=user)),
            done=Count("id", filter=Q(status=ImageStatus.DONE)),
            skipped=Count("id", filter=Q(status=ImageStatus.SKIPPED)),
        )
        .order_by()
    )
    counts = {(row["dataset"], row["stage"]): row for row in rows}
    empty = {"total": 0, "available": 0, "mine": 0, "others": 0, "done": 0, "skipped": 0}
    queues = []
    for dataset in visible_datasets(user).order_by("name"):
        stages = []
        for stage in ANNOTATED_STAGES:
            row = counts.get((dataset.pk, stage), empty)
            stages.append({"stage": int(stage), "label": stage.label, **{k: row[k] for k in empty}})
        queues.append({"dataset": dataset, "role": role_in(user, dataset), "stages": stages})
    return queues


def upcoming_images(dataset: Dataset, stage: object, count: int = 1) -> list[Image]:
    """The images ``POST /api/datasets/{id}/next-image/`` would hand out next (pending, held by
    nobody, in the claim's order), without claiming them: the tool prefetches their files
    meanwhile."""
    stage = check_stage(stage)
    count = max(1, min(int(count), MAX_UPCOMING))
    free = Image.objects.filter(dataset=dataset, stage=stage, status=ImageStatus.PENDING).filter(
        Q(held_by__isnull=True) | Q(held_until__lte=timezone.now())
    )
    free = free.exclude(pk__in=audit_held_images())
    return list(queue_order(dataset, free)[:count])


def prepare_embedding(image: Image) -> Image:
    """Make sure the active model's embedding of ``image`` is ready or on its way, so the first
    click on it does not wait for the encoder.

    Stored already: loaded into this process's recent embeddings (and the image marked done).
    Queued or running for the active encoder: left alone. Failed for it: left alone too (a
    dataset admin re-queues it once the cause is fixed; the status says why). Otherwise (never
    computed, or computed for an older model): queued for a gpu worker.
    """
    version = get_active_version()
    key = version.embedding_key
    if embedding_store().contains(image.content_sha256, key):
        get_or_compute_embedding(image, version)
        return image
    busy = (EmbeddingStatus.QUEUED, EmbeddingStatus.RUNNING, EmbeddingStatus.FAILED)
    if image.encoder_key == key and image.embedding_status in busy:
        return image
    image.encoder_key = key
    queue_embedding(image)
    image.refresh_from_db()
    return image
