"""From the database to a round's files: which images are held out, which masks train, and the
folder (modeltrain.data) that training and evaluation then read instead of the ORM."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from annotation.models import Dataset, Image, Mask, MaskSource
from annotation.services.heldout import heldout_by_hash
from annotation.services.storage import image_path
from engine import Embedding
from engine import rle as rle_codec
from engine.store import EmbeddingStore
from modeltrain.data import ImageRecord, MaskRecord, RoundData, place_embedding, read_round
from modeltrain.data import write_manifest as write_round_manifest
from modeltrain.models import ImageSplit
from registry.models import ModelVersion

logger = logging.getLogger(__name__)

# What people drew or vouched for. Masks the model made alone (automatic, pre-filled) would
# teach the model its own mistakes.
TRAINING_SOURCES = (MaskSource.MANUAL, MaskSource.MODEL_ASSISTED, MaskSource.IMPORTED)
# Masks smaller than this many pixels vanish at the decoder's 256x256 resolution.
MIN_MASK_AREA = 16


def assign_splits(dataset: Dataset) -> int:
    """Decide held-out or training for every image of ``dataset`` that has no split yet, and
    persist it; returns the number of new held-out images. Once the dataset holds
    TRAINING_HELDOUT_MAX_IMAGES held-out images, new images all go to training."""
    fraction = float(settings.TRAINING_HELDOUT_FRACTION)
    limit = int(settings.TRAINING_HELDOUT_MAX_IMAGES)
    held = ImageSplit.objects.filter(dataset=dataset, heldout=True).count()
    fresh = (
        Image.objects.filter(dataset=dataset, training_split__isnull=True)
        .order_by("pk")
        .values_list("pk", "content_sha256")
    )
    rows, added = [], 0
    for image_id, sha in fresh.iterator():
        heldout = held + added < limit and heldout_by_hash(sha, fraction)
        added += heldout
        rows.append(ImageSplit(image_id=image_id, dataset=dataset, heldout=heldout))
    try:
        with transaction.atomic():
            ImageSplit.objects.bulk_create(rows, batch_size=1000)
    except IntegrityError:
        # Another round assigned some of these at the same time: its decisions stand, and the
        # rule is deterministic, so they are the same ones.
        for row in rows:
            ImageSplit.objects.get_or_create(
                image_id=row.image_id, defaults={"dataset": dataset, "heldout": row.heldout}
            )
    return added


def training_masks(dataset: Dataset) -> QuerySet[Mask]:
    """The masks a round learns from or evaluates on (before the held-out split)."""
    return Mask.objects.filter(
        image__dataset=dataset, source__in=TRAINING_SOURCES, area__gte=MIN_MASK_AREA
    )


def new_training_masks(dataset: Dataset, since: datetime | None) -> int:
    """Training masks (held-out images left out) created or changed after ``since``."""
    masks = training_masks(dataset).exclude(image__training_split__heldout=True)
    if since is not None:
        masks = masks.filter(updated_at__gt=since)
    return masks.count()


def _records(images: dict[int, Image], masks: dict[int, list[MaskRecord]]) -> list[ImageRecord]:
    return [
        ImageRecord(
            image_id=image.pk,
            path=str(image_path(image)),
            sha256=image.content_sha256,
            height=image.height,
            width=image.width,
            masks=masks[image.pk],
        )
        for image in images.values()
    ]


def export_round(
    dataset: Dataset,
    folder: Path,
    version: ModelVersion,
    *,
    with_embeddings: bool,
    store: EmbeddingStore | None = None,
    embed: Callable[[ImageRecord], Embedding] | None = None,
) -> tuple[RoundData, datetime]:
    """Write the dataset's training and held-out masks to ``folder`` and return them read back
    with the time the export looked at the database (masks changed later are for the next
    round). With ``with_embeddings``, each training image's embedding under ``version``'s
    encoder is placed beside them: taken from ``store`` or computed by ``embed(record)``.
    A stored mask whose RLE does not fit its image is left out, logged and listed in the
    manifest's ``left_out`` ({"mask_id", "image_id", "reason"})."""
    until = timezone.now()
    assign_splits(dataset)  # after ``until``: every image of an exported mask has its split
    by_image: dict[int, list[MaskRecord]] = defaultdict(list)
    left_out: list[dict[str, Any]] = []
    rows = training_masks(dataset).filter(updated_at__lte=until).order_by("image_id", "pk")
    columns = ("pk", "image_id", "rle", "image__height", "image__width")
    for mask_id, image_id, rle, height, width in rows.values_list(*columns).iterator():
        try:  # a stored row is not trusted: one that does not fit its image is left out
            rle = rle_codec.checked(rle, expected_size=(height, width)).rle
        except rle_codec.RLEError as exc:
            left_out.append({"mask_id": mask_id, "image_id": image_id, "reason": str(exc)})
            continue
        by_image[image_id].append(MaskRecord(id=mask_id, rle=rle))
    if left_out:
        logger.warning(
            "round on %s: %d masks left out, their RLE is invalid (run check_masks): %s",
            dataset,
            len(left_out),
            ", ".join(f"{m['mask_id']} ({m['reason']})" for m in left_out[:20]),
        )
    images = Image.objects.filter(pk__in=list(by_image), training_split__isnull=False)
    images = images.select_related("training_split")
    train = {i.pk: i for i in images if not i.training_split.heldout}
    heldout = {i.pk: i for i in images if i.training_split.heldout}
    train_records = _records(train, by_image)
    if with_embeddings:
        train_records = [
            _with_embedding(folder, record, version, store, embed) for record in train_records
        ]
    write_round_manifest(
        folder,
        model_type=version.model_type,
        encoder_key=version.embedding_key,
        train=train_records,
        heldout=_records(heldout, by_image),
        left_out=left_out,
    )
    return read_round(folder), until


def _with_embedding(
    folder: Path,
    record: ImageRecord,
    version: ModelVersion,
    store: EmbeddingStore | None,
    embed: Callable[[ImageRecord], Embedding] | None,
) -> ImageRecord:
    """The record with its embedding placed in the folder: from the cache, else computed (and
    cached for the annotators, who will need it under this encoder too)."""
    key = version.embedding_key
    embedding = store.get(record.sha256, key) if store is not None else None
    source = store.path(record.sha256, key) if embedding is not None and store else None
    if embedding is None:
        if embed is None:
            raise ValueError(f"image {record.image_id} has no cached embedding under {key}")
        embedding = embed(record)
        if store is not None:
            source = store.put(record.sha256, key, embedding)
    return replace(record, embedding=place_embedding(folder, record.sha256, source, embedding))
