"""Model registry: the official SAM configurations (whose checkpoints load with strict=True) and
``vit_tiny``, a small encoder with the same decoder interface for tests and cold starts."""

from __future__ import annotations

import hashlib
import os
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from engine.image_encoder import ImageEncoderViT
from engine.mask_decoder import MaskDecoder
from engine.prompt_encoder import PromptEncoder
from engine.sam import Sam


class CheckpointError(ValueError):
    """A checkpoint file that cannot be loaded into the requested model; the message says why."""


@dataclass(frozen=True)
class EncoderConfig:
    embed_dim: int
    depth: int
    num_heads: int
    global_attn_indexes: tuple[int, ...]
    window_size: int = 14
    patch_size: int = 16
    img_size: int = 1024


MODEL_CONFIGS: dict[str, EncoderConfig] = {
    "vit_h": EncoderConfig(1280, 32, 16, (7, 15, 23, 31)),
    "vit_l": EncoderConfig(1024, 24, 16, (5, 11, 17, 23)),
    "vit_b": EncoderConfig(768, 12, 12, (2, 5, 8, 11)),
    # Ours: ~0.3M encoder parameters, the same 256x64x64 embedding and decoder as the others.
    "vit_tiny": EncoderConfig(64, 4, 2, (1, 3)),
}
MODEL_TYPES = tuple(MODEL_CONFIGS)


def _build(model_type: str) -> Sam:
    if model_type not in MODEL_CONFIGS:
        raise ValueError(
            f"unknown model type {model_type!r}; choose one of {', '.join(MODEL_TYPES)}"
        )
    cfg = MODEL_CONFIGS[model_type]
    grid = cfg.img_size // cfg.patch_size
    encoder = ImageEncoderViT(
        img_size=cfg.img_size,
        patch_size=cfg.patch_size,
        embed_dim=cfg.embed_dim,
        depth=cfg.depth,
        num_heads=cfg.num_heads,
        window_size=cfg.window_size,
        global_attn_indexes=cfg.global_attn_indexes,
    )
    prompt = PromptEncoder(
        embed_dim=256, image_embedding_size=(grid, grid), input_image_size=(cfg.img_size,) * 2
    )
    return Sam(encoder, prompt, MaskDecoder(transformer_dim=256), model_type=model_type)


def _read_state_dict(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Returns (state_dict, metadata). Accepts Meta's files (a bare state dict) and ours
    (``{"model": state_dict, "model_type": ..., ...}``)."""
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is an empty file")
    with path.open("rb") as f:
        magic = f.read(4)
    # torch.save writes a zip archive; files from torch < 1.6 start with a pickle protocol byte.
    if magic != b"PK\x03\x04" and magic[:1] != b"\x80":
        raise CheckpointError(f"checkpoint {path} is truncated or not a PyTorch file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (zipfile.BadZipFile, EOFError, RuntimeError) as exc:
        raise CheckpointError(
            f"checkpoint {path} is truncated or not a PyTorch file ({exc.__class__.__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else 'no detail'})"
        ) from exc
    except Exception as exc:  # the unpickler refuses arbitrary objects with several types
        raise CheckpointError(
            f"checkpoint {path} holds objects other than tensors and plain data, refused for "
            f"safety ({exc.__class__.__name__})"
        ) from exc
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        meta = {k: v for k, v in obj.items() if k != "model"}
        obj = obj["model"]
    else:
        meta = {}
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"checkpoint {path} does not contain a state dict of tensors")
    return obj, meta


def _guess_model_type(state: dict[str, torch.Tensor]) -> str | None:
    pos = state.get("image_encoder.pos_embed")
    if pos is None:
        return None
    blocks = {k.split(".")[2] for k in state if k.startswith("image_encoder.blocks.")}
    for name, cfg in MODEL_CONFIGS.items():
        if pos.shape[-1] == cfg.embed_dim and len(blocks) == cfg.depth:
            return name
    return None


def _check_keys(model: Sam, state: dict[str, torch.Tensor], path: Path, model_type: str) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    if not (missing or unexpected or mismatched):
        return
    guess = _guess_model_type(state)
    hint = f" It looks like a {guess} checkpoint." if guess and guess != model_type else ""
    if not any(k.startswith(("image_encoder.", "mask_decoder.")) for k in state):
        hint = " It does not look like a SAM checkpoint at all."
    parts = []
    for label, items in (
        ("missing", missing),
        ("unexpected", unexpected),
        ("wrong shape", mismatched),
    ):
        if items:
            shown = ", ".join(items[:3]) + (f" and {len(items) - 3} more" if len(items) > 3 else "")
            parts.append(f"{len(items)} {label} ({shown})")
    raise CheckpointError(
        f"checkpoint {path} does not match model type {model_type}: {'; '.join(parts)}.{hint}"
    )


def build_sam(
    model_type: str, checkpoint: str | os.PathLike | None = None, device: str = "cpu"
) -> Sam:
    """Build a SAM model, in eval mode.

    Args:
        model_type: "vit_h", "vit_l", "vit_b" (Meta's shapes) or "vit_tiny".
        checkpoint: Meta's official .pth, or a file written by ``save_checkpoint``; None gives
            randomly initialised weights (seed torch beforehand for reproducibility).
    Raises:
        ValueError: unknown model type.
        CheckpointError: missing, empty, truncated, unsafe or mismatching checkpoint file.
    """
    model = _build(model_type)
    if checkpoint is not None:
        path = Path(checkpoint)
        state, meta = _read_state_dict(path)
        saved_type = meta.get("model_type")
        if saved_type is not None and saved_type != model_type:
            raise CheckpointError(
                f"checkpoint {path} was saved for model type {saved_type}, not {model_type}"
            )
        _check_keys(model, state, path, model_type)
        model.load_state_dict(state, strict=True)
    return model.to(device).eval()


def read_checkpoint_metadata(checkpoint: str | os.PathLike) -> dict[str, Any]:
    """The metadata stored beside the weights by ``save_checkpoint`` ({} for Meta's files)."""
    return _read_state_dict(Path(checkpoint))[1]


def save_checkpoint(model: Sam, path: str | os.PathLike, **metadata: Any) -> Path:
    """Write weights plus metadata (plain data only: numbers, strings, lists, dicts) atomically.

    The file loads with ``build_sam(model.model_type, path)`` and ``torch.load(weights_only=True)``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"model": model.state_dict(), "model_type": model.model_type, **metadata}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def encoder_key(model: Sam) -> str:
    """A short hash of the image encoder's weights: embeddings are valid for every model version
    that shares it (a decoder-only retraining round keeps the cache)."""
    digest = hashlib.sha256(model.model_type.encode())
    for name, tensor in sorted(model.image_encoder.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu").contiguous().numpy().tobytes())
    return f"{model.model_type}-{digest.hexdigest()[:16]}"


def config_dict(model_type: str) -> dict[str, Any]:
    """The encoder configuration of a registered model type, as plain data."""
    return asdict(MODEL_CONFIGS[model_type])
