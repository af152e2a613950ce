"""The training loop on a small synthetic set: its loss goes down (decoder-only, on exported
embeddings), full fine-tuning runs on the CPU and changes the encoder, held-out records are
never read, and bad options are refused by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from engine import SamPredictor, build_sam, encoder_key
from engine import rle as rle_codec
from modeltrain.data import ImageRecord, MaskRecord, place_embedding, read_round, write_manifest
from modeltrain.training import TrainConfig, train


def square_image(seed: int, size: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """A dark image with one bright square: pixels and the square's mask."""
    rng = np.random.default_rng(seed)
    pixels = np.full((size, size, 3), rng.integers(0, 60), np.uint8)
    x0, y0 = (int(v) for v in rng.integers(4, size // 2, 2))
    side = int(rng.integers(10, size // 2))
    mask = np.zeros((size, size), bool)
    mask[y0 : y0 + side, x0 : x0 + side] = True
    pixels[mask] = 220
    return pixels, mask


def seeded_tiny():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        return build_sam("vit_tiny")


def export(folder: Path, count: int, model=None, heldout_path: str | None = None):
    """A round folder of ``count`` square images (with embeddings when ``model`` is given)."""
    predictor = SamPredictor(model) if model is not None else None
    records = []
    for seed in range(count):
        pixels, mask = square_image(seed)
        path = folder / f"{seed}.png"
        PILImage.fromarray(pixels).save(path)
        sha = f"{seed:064x}"
        embedding = None
        if predictor is not None:
            embedding = place_embedding(folder, sha, None, predictor.embed(pixels))
        masks = [MaskRecord(id=seed, rle=rle_codec.encode(mask))]
        records.append(ImageRecord(seed, str(path), sha, 48, 48, masks, embedding))
    heldout = []
    if heldout_path is not None:
        heldout = [ImageRecord(99, heldout_path, "f" * 64, 48, 48, [], None)]
    write_manifest(folder, model_type="vit_tiny", encoder_key="k", train=records, heldout=heldout)
    return read_round(folder)


def test_decoder_only_loss_goes_down_and_the_encoder_stays(tmp_path):
    model = seeded_tiny()
    key = encoder_key(model)
    data = export(tmp_path, 3, model)
    config = TrainConfig(mode="decoder", steps=12, lr=1e-3, warmup_steps=2, iterations=1)
    seen = []

    result = train(model, data, config, on_progress=seen.append)

    first, last = np.mean(result.losses[:3]), np.mean(result.losses[-3:])
    assert last < 0.5 * first, (first, last)
    assert encoder_key(model) == key  # frozen: the embedding cache stays valid
    assert [p.step for p in seen] == list(range(1, 13))
    assert seen[-1].eta_seconds == 0
    assert result.train_images == 3 and result.train_masks == 3
    assert not model.training  # left in eval mode for the evaluation that follows


def test_full_training_runs_on_cpu_and_changes_the_encoder(tmp_path):
    model = seeded_tiny()
    key = encoder_key(model)
    data = export(tmp_path, 2, heldout_path=str(tmp_path / "missing-heldout.png"))
    config = TrainConfig(mode="full", steps=2, lr=1e-3, iterations=1, masks_per_image=1)

    result = train(model, data, config)

    # The held-out record's file does not exist: it was never opened.
    assert len(result.losses) == 2 and all(np.isfinite(result.losses))
    assert encoder_key(model) != key
    assert all(p.requires_grad for p in model.parameters())


def test_decoder_only_training_needs_exported_embeddings(tmp_path):
    data = export(tmp_path, 1)

    with pytest.raises(ValueError, match="needs embeddings"):
        train(seeded_tiny(), data, TrainConfig(mode="decoder", steps=1))


def test_a_round_without_masks_is_refused(tmp_path):
    write_manifest(tmp_path, model_type="vit_tiny", encoder_key="k", train=[], heldout=[])

    with pytest.raises(ValueError, match="no training masks"):
        train(seeded_tiny(), read_round(tmp_path), TrainConfig(steps=1))


def test_options_are_checked_by_name():
    with pytest.raises(ValueError, match="unknown training option.*learning_rate"):
        TrainConfig.from_dict({"learning_rate": 1.0})
    with pytest.raises(ValueError, match="mode must be one of"):
        TrainConfig(mode="encoder")
    with pytest.raises(ValueError, match="steps must be at least 1"):
        TrainConfig(steps=0)
    assert TrainConfig.from_dict(TrainConfig(steps=7).as_dict()).steps == 7
