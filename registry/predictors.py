"""The model inside a running process: one predictor per model version, loaded on first use
(never at import time) and shared by every request or task the process serves."""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from django.conf import settings

from engine.registry import CheckpointError
from registry.active import get_active_version
from registry.models import ModelVersion

if TYPE_CHECKING:
    from engine import SamPredictor

_load_lock = threading.Lock()


class CheckpointChanged(CheckpointError):
    """The file of a registered version no longer holds the weights it was registered with."""


COLD_START_HINT = (
    "Predictions come from an untrained model (random initialisation, cold start): its masks "
    "are not meaningful until retraining rounds have taught it. For real assistance install "
    "Meta's checkpoint: `python -m engine.checkpoints download vit_b`, then restart the web "
    "server and workers with SAM_MODEL_TYPE=vit_b SAM_CHECKPOINT=<path of the downloaded file>."
)
RETRAINED_HINT = (
    "Predictions come from a model trained here from a cold start (round {round}), not from "
    "Meta's checkpoint. For stronger assistance install it: `python -m engine.checkpoints "
    "download vit_b`, then SAM_MODEL_TYPE=vit_b SAM_CHECKPOINT=<path of the downloaded file>."
)


def get_predictor(version_id: int) -> SamPredictor:
    """The predictor for a model version, loaded once per process."""
    version = ModelVersion.objects.get(pk=version_id)
    return _load_predictor(
        version.model_type,
        str(version.checkpoint_path),
        settings.SAM_DEVICE,
        version.encoder_key,
        settings.SAM_PRECISION,
        settings.SAM_COMPILE,
    )


@lru_cache(maxsize=2)
def _load_predictor(
    model_type: str, checkpoint: str, device: str, key: str, precision: str, compile: bool
) -> SamPredictor:
    from engine import SamPredictor, build_sam
    from engine.registry import encoder_key

    with _load_lock:
        model = build_sam(model_type, checkpoint, device=device)
        loaded_key = encoder_key(model)
        if loaded_key != key:
            # Embeddings are keyed by the registered encoder: weights that differ would answer
            # clicks on features computed by another encoder.
            raise CheckpointChanged(
                f"checkpoint {checkpoint} changed on disk since it was registered "
                f"(encoder key {loaded_key[:12]} != {key[:12]}); register it as a new version"
            )
        return SamPredictor(model, precision, compile=compile)


def clear_predictor_cache() -> None:
    _load_predictor.cache_clear()


def describe_version(version: ModelVersion) -> dict[str, Any]:
    """Which model answers and whether its masks can be trusted, for API answers."""
    hint = None
    if not version.is_official:
        untrained = version.round == 0 and version.parent_id is None
        hint = COLD_START_HINT if untrained else RETRAINED_HINT.format(round=version.round)
    return {
        "id": version.id,
        "name": version.name,
        "model_type": version.model_type,
        "round": version.round,
        "trained_on": version.trained_on,
        "is_official": version.is_official,
        "precision": settings.SAM_PRECISION,
        "hint": hint,
    }


def model_status() -> dict[str, Any]:
    """The active model version, described for GET /api/model/."""
    return describe_version(get_active_version())
