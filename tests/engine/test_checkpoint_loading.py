"""Checkpoints that do not fit give errors that name the problem."""

import pytest
import torch

from engine import CheckpointError, build_sam, save_checkpoint
from engine.registry import MODEL_CONFIGS, _build


@pytest.fixture(scope="module")
def tiny_state():
    torch.manual_seed(0)
    return _build("vit_tiny").state_dict()


def test_meta_style_bare_state_dict_loads_strictly(tmp_path, tiny_state):
    path = tmp_path / "bare.pth"
    torch.save(tiny_state, path)
    model = build_sam("vit_tiny", checkpoint=path)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, tiny_state[name]), name


@pytest.mark.parametrize("model_type", ["vit_b", "vit_l", "vit_h"])
def test_official_shapes(model_type):
    model = _build(model_type)
    cfg = MODEL_CONFIGS[model_type]
    state = model.state_dict()
    assert state["image_encoder.pos_embed"].shape == (1, 64, 64, cfg.embed_dim)
    assert state["image_encoder.blocks.0.attn.rel_pos_h"].shape == (
        27,
        cfg.embed_dim // cfg.num_heads,
    )
    first_global = cfg.global_attn_indexes[0]
    assert state[f"image_encoder.blocks.{first_global}.attn.rel_pos_h"].shape[0] == 127
    assert state["mask_decoder.output_upscaling.0.weight"].shape == (256, 64, 2, 2)
    assert state["mask_decoder.output_upscaling.3.weight"].shape == (64, 32, 2, 2)
    assert state["prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"].shape == (2, 128)
    assert state["prompt_encoder.mask_downscaling.0.weight"].shape == (4, 1, 2, 2)
    assert "pixel_mean" not in state  # not persistent, as in Meta's files
    assert len([k for k in state if k.startswith("image_encoder.blocks.")]) == cfg.depth * 14


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        build_sam("vit_tiny", checkpoint=tmp_path / "nope.pth")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.pth"
    path.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        build_sam("vit_tiny", checkpoint=path)


def test_truncated_file(tmp_path, tiny_state):
    path = tmp_path / "cut.pth"
    torch.save(tiny_state, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or not a PyTorch file"):
        build_sam("vit_tiny", checkpoint=path)


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "image.pth"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    with pytest.raises(CheckpointError, match="truncated or not a PyTorch file"):
        build_sam("vit_tiny", checkpoint=path)


def test_wrong_model_type_is_named(tmp_path, tiny_state):
    path = tmp_path / "tiny.pth"
    torch.save(tiny_state, path)
    with pytest.raises(CheckpointError) as err:
        build_sam("vit_b", checkpoint=path)
    message = str(err.value)
    assert "does not match model type vit_b" in message
    assert "looks like a vit_tiny checkpoint" in message
    assert "wrong shape" in message


def test_missing_and_extra_keys_are_listed(tmp_path, tiny_state):
    state = dict(tiny_state)
    del state["mask_decoder.iou_token.weight"]
    state["mask_decoder.surprise"] = torch.zeros(3)
    path = tmp_path / "edited.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError) as err:
        build_sam("vit_tiny", checkpoint=path)
    assert "1 missing (mask_decoder.iou_token.weight)" in str(err.value)
    assert "1 unexpected (mask_decoder.surprise)" in str(err.value)


def test_saved_model_type_is_checked(tmp_path):
    torch.manual_seed(0)
    path = save_checkpoint(build_sam("vit_tiny"), tmp_path / "ours.pt")
    with pytest.raises(CheckpointError, match="saved for model type vit_tiny, not vit_b"):
        build_sam("vit_b", checkpoint=path)


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"model": {"x": torch.zeros(1)}, "hook": object()}, path)
    with pytest.raises(CheckpointError, match="refused for safety"):
        build_sam("vit_tiny", checkpoint=path)


def test_not_a_state_dict(tmp_path):
    path = tmp_path / "list.pth"
    torch.save([1, 2, 3], path)
    with pytest.raises(CheckpointError, match="state dict"):
        build_sam("vit_tiny", checkpoint=path)


def test_other_model_entirely(tmp_path):
    path = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(4, 3, 7, 7)}, path)
    with pytest.raises(CheckpointError, match="does not look like a SAM checkpoint"):
        build_sam("vit_tiny", checkpoint=path)


def test_unknown_model_type():
    with pytest.raises(ValueError, match="unknown model type 'vit_x'"):
        build_sam("vit_x")
