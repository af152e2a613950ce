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
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from annotation.models import Dataset, Image, Mask, MaskSource
from annotation.services.heldout import heldout_by_hash
from engine import Embedding, rle_batch
from engine import rle as rle_codec
from engine.store import EmbeddingStore
from modeltrain.data import (
    ImageRecord,
    ManifestWriter,
    MaskRecord,
    RoundData,
    place_embedding,
    read_round,
)
from modeltrain.models import ImageSplit
from registry.models import ModelVersion

logger = logging.getLogger(__name__)

# What people drew or vouched for. Masks the model made alone (automatic, pre-filled) would
# teach the model its own mistakes.
TRAINING_SOURCES = (MaskSource.MANUAL, MaskSource.MODEL_ASSISTED, MaskSource.IMPORTED)
# Masks smaller than this many pixels vanish at the decoder's 256x256 resolution.
MIN_MASK_AREA = 16
# Images read (and split) per query: the export's memory is one page of images and their
# masks, whatever the dataset's size.
PAGE = 64
# Refused masks named in the log line (all of them are in the manifest).
LOGGED_LEFT_OUT = 20


def assign_splits(dataset: Dataset) -> int:
    """Decide held-out or training for every image of ``dataset`` that has no split yet, and
    persist it; returns the number of new held-out images. Once the dataset holds
    TRAINING_HELDOUT_MAX_IMAGES held-out images, new images all go to training."""
    fraction = float(settings.TRAINING_HELDOUT_FRACTION)
    limit = int(settings.TRAINING_HELDOUT_MAX_IMAGES)
    held = ImageSplit.objects.filter(dataset=dataset, heldout=True).count()
    fresh = Image.objects.filter(dataset=dataset, training_split__isnull=True).order_by("pk")
    added, after = 0, 0
    while True:  # keyset pages, so that memory does not grow with the dataset
        page = list(fresh.filter(pk__gt=after).values_list("pk", "content_sha256")[: PAGE * 16])
        if not page:
            return added
        rows = []
        for image_id, sha in page:
            heldout = held + added < limit and heldout_by_hash(sha, fraction)
            added += heldout
            rows.append(ImageSplit(image_id=image_id, dataset=dataset, heldout=heldout))
        _save_splits(dataset, rows)
        after = page[-1][0]


def _save_splits(dataset: Dataset, rows: list[ImageSplit]) -> None:
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
    manifest ({"mask_id", "image_id", "reason"}).

    Streamed: images are read ``PAGE`` at a time (keyset pages by id), their masks with one
    query per page, and each image's record is written to the manifest before the next page
    is read, so memory stays flat whatever the number of masks."""
    until = timezone.now()
    assign_splits(dataset)  # after ``until``: every image of an exported mask has its split
    masks = training_masks(dataset).filter(updated_at__lte=until)
    images = (
        Image.objects.filter(dataset=dataset, training_split__isnull=False)
        .filter(Exists(masks.filter(image=OuterRef("pk"))))
        .order_by("pk")
    )
    media = Path(settings.MEDIA_ROOT)
    logged: list[dict[str, Any]] = []
    with ManifestWriter(
        folder, model_type=version.model_type, encoder_key=version.embedding_key
    ) as writer:
        after = 0
        while True:
            page = list(
                images.filter(pk__gt=after).values_list(
                    "pk", "file", "content_sha256", "height", "width", "training_split__heldout"
                )[:PAGE]
            )
            if not page:
                break
            sizes = {image_id: (h, w) for image_id, _, _, h, w, _ in page}
            by_image, left_out = _checked_masks(masks, sizes)
            for entry in left_out:
                writer.left_out(entry)
            logged.extend(left_out[: LOGGED_LEFT_OUT - len(logged)])
            for image_id, file, sha, height, width, heldout in page:
                if not by_image[image_id]:
                    continue
                path = str(media / file)
                record = ImageRecord(image_id, path, sha, height, width, by_image[image_id])
                if heldout:
                    writer.add("heldout", record)
                    continue
                if with_embeddings:
                    record = _with_embedding(folder, record, version, store, embed)
                writer.add("train", record)
            after = page[-1][0]
    if writer.counts["left_out"]:
        logger.warning(
            "round on %s: %d masks left out, their RLE is invalid (run check_masks): %s",
            dataset,
            writer.counts["left_out"],
            ", ".join(f"{m['mask_id']} ({m['reason']})" for m in logged),
        )
    return read_round(folder), until


def _checked_masks(
    masks: QuerySet[Mask], sizes: dict[int, tuple[int, int]]
) -> tuple[dict[int, list[MaskRecord]], list[dict[str, Any]]]:
    """The page's masks by image, in id order, each checked against its image (a stored row is
    not trusted), and the ones refused. Canonical RLEs of the right size are checked all at
    once (``engine.rle_batch``); the others one by one, which says what is wrong."""
    rows = list(
        masks.filter(image_id__in=list(sizes))
        .order_by("image_id", "pk")
        .values_list("pk", "image_id", "rle")
    )
    plain = [rle_batch.plain_counts(rle, sizes[image_id]) for _, image_id, rle in rows]
    batch = rle_batch.check_counts([c or "" for c in plain], [sizes[i] for _, i, _ in rows])
    by_image: dict[int, list[MaskRecord]] = defaultdict(list)
    left_out = []
    for (mask_id, image_id, rle), counts, ok in zip(rows, plain, batch.ok, strict=True):
        if counts is None or not ok:
            try:
                rle = rle_codec.checked(rle, expected_size=sizes[image_id]).rle
            except rle_codec.RLEError as exc:
                left_out.append({"mask_id": mask_id, "image_id": image_id, "reason": str(exc)})
                continue
        by_image[image_id].append(MaskRecord(id=mask_id, rle=rle))
    return by_image, left_out


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
