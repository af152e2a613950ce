"""Answering a click: the engine's decoder on the cached embedding, masks out as COCO RLE.

Each mask's low-res logits stay on the server (float16 in Django's shared cache for an hour)
under a random id; the next click of the same object sends that id back as ``mask_input_id``
so the decoder refines the previous mask instead of starting over. An unknown, expired or
foreign id is a 400: the client then sends the clicks again without it.

A stored mask (a pre-filled one being fixed, a saved one re-edited) has no logits: the request
names it as ``refine_mask`` and its pixels become the mask prompt
(engine.transforms.mask_prompt_logits), so clicks on a loaded mask edit it rather than replace it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache

from annotation.models import EmbeddingStatus, Image, Mask
from annotation.services.embeddings import get_or_compute_embedding
from annotation.services.errors import EmbeddingUnavailable, InvalidInput
from annotation.services.prompts import check_prompts
from engine import Prediction
from engine import rle as rle_codec
from engine.transforms import mask_prompt_logits
from registry.active import get_active_version
from registry.models import ModelVersion
from registry.predictors import describe_version, get_predictor

LOGITS_TTL_SECONDS = 3600
LOGITS_SHAPE = (256, 256)
_LOGITS_ID = re.compile(r"^[0-9a-f]{32}$")


def predict(
    image: Image,
    user: AbstractBaseUser,
    *,
    points: Sequence[Sequence[float]] | None = None,
    labels: Sequence[int] | None = None,
    box: Sequence[float] | None = None,
    mask_input_id: str | None = None,
    refine_mask: Mask | None = None,
    multimask: bool = True,
) -> dict[str, Any]:
    """Masks for the prompts on ``image`` from the active model.

    Args:
        points: [[x, y], ...] in image pixels, 0 <= x <= width, 0 <= y <= height.
        labels: one per point, 1 foreground, 0 background.
        box: [x0, y0, x1, y1] in image pixels.
        mask_input_id: a ``logits_id`` from an earlier answer on this image.
        refine_mask: a stored mask of this image whose pixels are the mask prompt (the caller
            has checked the user may see it); not together with ``mask_input_id``.
    Returns:
        {"image", "masks": [{"rle", "bbox" (XYWH), "area", "predicted_iou", "logits_id"}],
         "model": which model answered and whether it is official, "embedding_computed"}.
    Raises:
        InvalidInput: empty or out-of-range prompts, unknown/expired/foreign mask_input_id,
            a refine_mask of another image, both mask inputs at once.
        EmbeddingUnavailable: the image's embedding failed or cannot be computed.
    """
    points, labels = list(points or []), list(labels or [])
    check_prompts(image, points, labels, box)
    version = get_active_version()
    if mask_input_id and refine_mask is not None:
        raise InvalidInput(
            "give mask_input_id (the logits of an earlier answer) or refine_mask (a stored "
            "mask), not both"
        )
    mask_logits = load_logits(mask_input_id, image, version, user) if mask_input_id else None
    if refine_mask is not None:
        mask_logits = stored_mask_logits(refine_mask, image)
    if image.embedding_status == EmbeddingStatus.FAILED and (
        image.encoder_key == version.embedding_key
    ):
        raise EmbeddingUnavailable(
            f"the embedding of image {image.pk} failed ({image.embedding_error}); a dataset "
            f"admin can queue it again with POST /api/images/{image.pk}/embed/"
        )
    embedding, computed = get_or_compute_embedding(image, version)
    try:
        prediction = get_predictor(version.pk).decode(
            embedding,
            points=points or None,
            labels=labels or None,
            box=box,
            mask_logits=mask_logits,
            multimask=multimask,
        )
    except ValueError as exc:
        raise InvalidInput(f"the engine rejected the prompts: {exc}") from exc
    return describe_prediction(prediction, image, version, user, embedding_computed=computed)


def describe_prediction(
    prediction: Prediction,
    image: Image,
    version: ModelVersion,
    user: AbstractBaseUser,
    *,
    embedding_computed: bool,
) -> dict[str, Any]:
    """The predict answer: masks as compressed RLE with box, area and predicted IoU; the logits
    stay on the server under ``logits_id`` (a 256x256 array would be ~90 KB of JSON each)."""
    masks = []
    areas, boxes = rle_codec.mask_stats(prediction.masks)
    for i, rle in enumerate(rle_codec.encode_batch(prediction.masks)):
        masks.append(
            {
                "rle": rle,
                "bbox": boxes[i],
                "area": areas[i],
                # The IoU head is not bounded; an IoU is, and clients send it back with the mask.
                "predicted_iou": round(min(max(float(prediction.iou[i]), 0.0), 1.0), 4),
                "logits_id": save_logits(prediction.low_res_logits[i], image, version, user),
            }
        )
    return {
        "image": image.pk,
        "masks": masks,
        "model": describe_version(version),
        "embedding_computed": embedding_computed,
    }


def save_logits(
    logits: np.ndarray, image: Image, version: ModelVersion, user: AbstractBaseUser
) -> str:
    logits_id = uuid.uuid4().hex
    entry = {
        "image": image.pk,
        "encoder_key": version.embedding_key,
        "user": user.pk,
        "data": np.asarray(logits, dtype=np.float16).tobytes(),
    }
    cache.set(_cache_key(logits_id), entry, LOGITS_TTL_SECONDS)
    return logits_id


def load_logits(
    logits_id: str, image: Image, version: ModelVersion, user: AbstractBaseUser
) -> np.ndarray:
    """The (1, 256, 256) float32 logits ``user`` saved under ``logits_id`` for this image and
    model. Another user's logits are refused like unknown ones: an id is no capability."""
    entry = cache.get(_cache_key(logits_id)) if _LOGITS_ID.match(logits_id) else None
    if entry is None:
        raise InvalidInput(
            f"mask_input_id {logits_id!r} is unknown or expired (logits are kept "
            f"{LOGITS_TTL_SECONDS // 60} minutes): send the clicks again without it"
        )
    if entry.get("user") != user.pk:
        raise InvalidInput(
            f"mask_input_id {logits_id!r} belongs to another user's prediction: send your own "
            "clicks again without it"
        )
    if entry["image"] != image.pk:
        raise InvalidInput(f"mask_input_id {logits_id!r} belongs to another image")
    if entry["encoder_key"] != version.embedding_key:
        raise InvalidInput(
            f"mask_input_id {logits_id!r} came from a model version that is no longer active: "
            "send the clicks again without it"
        )
    logits = np.frombuffer(entry["data"], dtype=np.float16).astype(np.float32)
    return logits.reshape(1, *LOGITS_SHAPE)


def stored_mask_logits(mask: Mask, image: Image) -> np.ndarray:
    """The (1, 256, 256) mask prompt of a stored mask of ``image``."""
    if mask.image_id != image.pk:
        raise InvalidInput(
            f"refine_mask {mask.pk} is a mask of image {mask.image_id}, not of image {image.pk}"
        )
    try:
        pixels = rle_codec.decode(mask.rle, (image.height, image.width))
    except ValueError as exc:
        raise InvalidInput(f"refine_mask {mask.pk} cannot be read: {exc}") from exc
    return mask_prompt_logits(pixels)


def _cache_key(logits_id: str) -> str:
    return f"sade:predict-logits:{logits_id}"
