"""Image embeddings: computed once per image and encoder (in a gpu worker ahead of the annotator,
or on demand by the first click) and kept in the content-addressed embedding store."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from functools import lru_cache

from django.conf import settings
from django.db import transaction

from annotation.models import EmbeddingStatus, Image
from annotation.services.errors import EmbeddingUnavailable
from annotation.services.queueing import queue_task
from annotation.services.storage import image_path
from engine.embedding import Embedding
from engine.images import load_image
from engine.store import EmbeddingStore
from registry.active import get_active_version
from registry.models import ModelVersion
from registry.predictors import get_predictor

logger = logging.getLogger(__name__)


def embedding_store() -> EmbeddingStore:
    return _store(str(settings.EMBEDDING_DIR), settings.EMBEDDING_CACHE_MAX_BYTES)


@lru_cache(maxsize=4)
def _store(root: str, max_bytes: int) -> EmbeddingStore:
    # One store object per process and directory: it keeps a running size total between puts.
    return EmbeddingStore(root, max_bytes)


# The last few embeddings this process used, as the same objects: an annotator's clicks on one
# image skip the disk read and hit the decoder's per-embedding cache (engine.SamPredictor).
RECENT_EMBEDDINGS = 8
_recent: OrderedDict[tuple[str, str, str], Embedding] = OrderedDict()
_recent_lock = threading.Lock()


def _remember(key: tuple[str, str, str], embedding: Embedding) -> None:
    with _recent_lock:
        _recent[key] = embedding
        _recent.move_to_end(key)
        while len(_recent) > RECENT_EMBEDDINGS:
            _recent.popitem(last=False)


def _recall(key: tuple[str, str, str]) -> Embedding | None:
    with _recent_lock:
        embedding = _recent.get(key)
        if embedding is not None:
            _recent.move_to_end(key)
        return embedding


def get_or_compute_embedding(image: Image, version: ModelVersion) -> tuple[Embedding, bool]:
    """The image's embedding under ``version``'s encoder, and whether it was computed now.

    Computes it when the store does not have it; if two requests race, both compute and the
    store's atomic rename keeps one. Records the outcome on the image (embedding status, error,
    key) and raises EmbeddingUnavailable when the file cannot be read or the encoder fails.
    """
    store = embedding_store()
    key = version.embedding_key
    recent_key = (str(store.root), image.content_sha256, key)
    embedding = _recall(recent_key) or store.get(image.content_sha256, key)
    if embedding is not None:
        _remember(recent_key, embedding)
        if image.embedding_status != EmbeddingStatus.DONE or image.encoder_key != key:
            _set_status(image, EmbeddingStatus.DONE, key)
        return embedding, False
    # Loaded first: a model that cannot load is the server's problem, not the image's.
    predictor = get_predictor(version.pk)
    _set_status(image, EmbeddingStatus.RUNNING, key)
    try:
        pixels = load_image(
            image_path(image),
            max_pixels=max(settings.IMPORT_MAX_PIXELS, image.width * image.height),
        ).array
        if pixels.shape[:2] != (image.height, image.width):
            raise ValueError(
                f"stored file is {pixels.shape[1]}x{pixels.shape[0]}, the image row says "
                f"{image.width}x{image.height}"
            )
        embedding = predictor.embed(pixels)
        store.put(image.content_sha256, key, embedding)
        _remember(recent_key, embedding)
    except Exception as exc:  # any failure must be visible on the image, not lost in a log
        message = f"{exc.__class__.__name__}: {exc}"
        logger.warning("embedding image %s failed: %s", image.pk, message)
        _set_status(image, EmbeddingStatus.FAILED, key, message)
        raise EmbeddingUnavailable(
            f"the embedding of image {image.pk} could not be computed: {message}"
        ) from exc
    _set_status(image, EmbeddingStatus.DONE, key)
    return embedding, True


def embed_image(image: Image) -> bool:
    """The gpu task's work: make sure the active model's embedding of ``image`` exists. Returns
    False when it failed (recorded on the image); re-running after success costs one lookup."""
    try:
        get_or_compute_embedding(image, get_active_version())
    except EmbeddingUnavailable:
        return False
    return True


def queue_embedding(image: Image) -> None:
    """Queue (again) the embedding of an image, e.g. after a failure was fixed or a worker died
    while it was running (the task is idempotent: an existing embedding is only looked up)."""
    with transaction.atomic():
        _set_status(image, EmbeddingStatus.QUEUED, image.encoder_key)
        queue_task("annotation.embed_image", image.pk)


def _set_status(image: Image, status: str, key: str, error: str = "") -> None:
    # A targeted UPDATE, so an embedding finishing does not overwrite a hold or a stage change
    # made meanwhile by a request holding an older copy of the row.
    Image.objects.filter(pk=image.pk).update(
        embedding_status=status, encoder_key=key, embedding_error=error[:2000]
    )
    image.embedding_status, image.encoder_key, image.embedding_error = status, key, error[:2000]
