"""Which model version answers: registering checkpoints, the cold start, activation.

``get_active_version`` is safe to call from any process at any time: the first call registers
the configured checkpoint (or creates the cold-start one) and every later call, in this or any
other process, returns the same active row.
"""

from __future__ import annotations

import logging
import os
import uuid
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from django.conf import settings
from django.db import IntegrityError, transaction

from registry.models import ModelVersion, relative_checkpoint

logger = logging.getLogger(__name__)

COLD_START_TYPE = "vit_tiny"
COLD_START_SEED = 0
COLD_START_NAME = "cold-start-vit_tiny"
COLD_START_FILE = "cold-start-vit_tiny.pt"
COLD_START_TRAINED_ON = "nothing: random initialisation (cold start)"
OFFICIAL_TRAINED_ON = "Meta's SA-1B (official checkpoint {name})"


def get_active_version() -> ModelVersion:
    """The active model version, creating one when needed.

    A checkpoint named by settings.SAM_CHECKPOINT that is not registered yet is registered and
    activated (configuring it is the operator's decision); once registered, later promotions and
    rollbacks stick. With no checkpoint configured and nothing active, the cold-start vit_tiny
    (fixed seed, saved under CHECKPOINT_DIR so every process loads the same weights) is used.
    """
    configured = _configured_checkpoint()
    if configured is not None:
        registered = ModelVersion.objects.filter(checkpoint=relative_checkpoint(configured))
        if not registered.exists():
            return register_checkpoint(
                configured,
                model_type=settings.SAM_MODEL_TYPE,
                activate=True,
                **describe_file(configured),
            )
    active = ModelVersion.objects.filter(is_active=True).first()
    if active is not None:
        return active
    if configured is not None:
        return activate_version(
            ModelVersion.objects.get(checkpoint=relative_checkpoint(configured))
        )
    return _ensure_cold_start()


def register_checkpoint(
    path: Path,
    *,
    model_type: str,
    trained_on: str,
    is_official: bool = False,
    activate: bool = False,
    name: str | None = None,
    parent: ModelVersion | None = None,
    round: int = 0,
) -> ModelVersion:
    """Record a checkpoint file as a model version (idempotent per file: a second call returns
    the existing row). Loads the weights once to compute the encoder key; raises
    engine.registry.CheckpointError (a ValueError) for a file that is not a SAM checkpoint."""
    path = Path(path).resolve()
    stored = relative_checkpoint(path)
    existing = ModelVersion.objects.filter(checkpoint=stored).first()
    if existing is not None:
        return activate_version(existing) if activate else existing
    stat = path.stat()
    key = _file_encoder_key(model_type, str(path), stat.st_mtime_ns, stat.st_size)
    name = name or f"{model_type}-{path.stem}"
    if ModelVersion.objects.filter(name=name).exclude(checkpoint=stored).exists():
        name = f"{name}-{key[:8]}"
    try:
        with transaction.atomic():
            if activate:
                ModelVersion.objects.filter(is_active=True).update(is_active=False)
            version = ModelVersion.objects.create(
                name=name,
                model_type=model_type,
                checkpoint=stored,
                encoder_key=key,
                is_official=is_official,
                trained_on=trained_on,
                is_active=activate,
                parent=parent,
                round=round,
            )
    except IntegrityError:
        # Another process registered the same file (or activated a version) at the same time.
        version = ModelVersion.objects.filter(checkpoint=stored).first()
        if version is None:
            raise
        return version
    logger.info("registered model version %s (%s, %s)", version.name, model_type, stored)
    return version


@lru_cache(maxsize=16)
def _file_encoder_key(model_type: str, path: str, mtime_ns: int, size: int) -> str:
    """Loading a checkpoint to hash its encoder costs seconds for vit_h: once per file version."""
    from engine import build_sam
    from engine.registry import encoder_key

    return encoder_key(build_sam(model_type, path, device="cpu"))


def activate_version(version: ModelVersion) -> ModelVersion:
    """Make ``version`` the one active version (promotion or rollback)."""
    try:
        with transaction.atomic():
            ModelVersion.objects.filter(is_active=True).exclude(pk=version.pk).update(
                is_active=False
            )
            ModelVersion.objects.filter(pk=version.pk).update(is_active=True)
    except IntegrityError:
        # A concurrent activation won; whichever is active now is the answer.
        pass
    return ModelVersion.objects.filter(is_active=True).first() or version


def describe_file(path: Path) -> dict[str, Any]:
    """What a checkpoint file says about itself: Meta's releases are bare state dicts (no
    metadata), files written by engine.registry.save_checkpoint carry their own description."""
    from engine.registry import read_checkpoint_metadata

    metadata = read_checkpoint_metadata(path)
    if not metadata:
        return {"is_official": True, "trained_on": OFFICIAL_TRAINED_ON.format(name=path.name)}
    trained_on = metadata.get("trained_on") or f"unknown: saved without a description ({path.name})"
    round_ = metadata.get("round", 0)
    return {
        "is_official": False,
        "trained_on": str(trained_on),
        "round": round_ if isinstance(round_, int) and round_ >= 0 else 0,
    }


def _configured_checkpoint() -> Path | None:
    raw = str(getattr(settings, "SAM_CHECKPOINT", "") or "")
    if not raw:
        return None
    path = Path(raw).expanduser().resolve()
    if not path.is_file():
        logger.warning("SAM_CHECKPOINT=%s is not a file; using the cold-start model", raw)
        return None
    return path


def _ensure_cold_start() -> ModelVersion:
    from engine import build_sam
    from engine.registry import save_checkpoint

    path = Path(settings.CHECKPOINT_DIR) / COLD_START_FILE
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        # A fixed seed in a forked RNG: every process that gets here writes the same weights,
        # and the rename is atomic, so a race leaves one complete file.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(COLD_START_SEED)
            model = build_sam(COLD_START_TYPE, device="cpu")
        tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex}.tmp.pt")
        try:
            save_checkpoint(model, tmp, round=0, trained_on=COLD_START_TRAINED_ON)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    return register_checkpoint(
        path,
        model_type=COLD_START_TYPE,
        name=COLD_START_NAME,
        trained_on=COLD_START_TRAINED_ON,
        is_official=False,
        activate=True,
    )
