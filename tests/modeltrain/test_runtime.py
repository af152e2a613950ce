"""The per-process predictor cache."""

from __future__ import annotations

import pytest
import torch

from engine import SamPredictor, build_sam, save_checkpoint
from registry.predictors import CheckpointChanged, clear_predictor_cache, get_predictor


@pytest.mark.django_db
def test_predictor_is_loaded_once_per_process(tiny_model):
    first = get_predictor(tiny_model.pk)

    assert isinstance(first, SamPredictor)
    assert get_predictor(tiny_model.pk) is first


@pytest.mark.django_db
def test_a_checkpoint_changed_on_disk_is_refused(settings, tmp_path):
    from registry.active import register_checkpoint

    path = tmp_path / "m.pt"
    torch.manual_seed(1)
    save_checkpoint(build_sam("vit_tiny"), path, trained_on="a")
    version = register_checkpoint(path, model_type="vit_tiny", trained_on="a", activate=True)
    torch.manual_seed(2)
    save_checkpoint(build_sam("vit_tiny"), path, trained_on="b")
    clear_predictor_cache()

    with pytest.raises(CheckpointChanged, match="changed on disk"):
        get_predictor(version.pk)
