"""Reduced precision (engine.precision): bf16 encoder masks against our fp32 ones, within the
issue's bounds (mean IoU >= 0.99, 5th percentile >= 0.98, predicted IoU within 0.02) over
points, boxes and refinement clicks on generated images; the fp32 path untouched; names and
store keys that keep precisions apart."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine import SamPredictor, build_sam
from engine.precision import embedding_key, encoder_in_precision, precision_dtype


def shapes_image(seed: int, height: int = 300, width: int = 420) -> np.ndarray:
    """Discs of flat colour over a flat background, with a little noise: objects to click."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    image = np.full((height, width, 3), rng.integers(0, 255, 3), np.float64)
    for _ in range(6):
        cy, cx, r = rng.integers(0, height), rng.integers(0, width), rng.integers(20, 110)
        image[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.integers(0, 255, 3)
    image += rng.normal(0, 6, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def mask_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    union = (a | b).sum((-2, -1))
    return np.where(union > 0, (a & b).sum((-2, -1)) / np.maximum(union, 1), 1.0)


def compare(a, b, ious: list, gaps: list) -> None:
    """Add two predictions' mask IoUs and predicted-IoU differences, mask by mask."""
    ious += list(mask_iou(a.masks, b.masks))
    gaps += list(np.abs(a.iou - b.iou))


@pytest.fixture(scope="module")
def model():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        return build_sam("vit_tiny")


def test_bf16_masks_agree_with_fp32_within_the_bounds(model):
    fp32, bf16 = SamPredictor(model), SamPredictor(model, "bf16")
    rng = np.random.default_rng(0)
    ious, iou_gaps = [], []
    for seed in range(3):
        image = shapes_image(seed)
        h, w = image.shape[:2]
        ours, low = fp32.embed(image), bf16.embed(image)
        for _ in range(8):
            point = [[float(rng.uniform(0, w)), float(rng.uniform(0, h))]]
            a, b = fp32.decode(ours, point, [1]), fp32.decode(low, point, [1])
            compare(a, b, ious, iou_gaps)
            # A refinement click: the best mask's logits go back with a second (negative) point.
            best = int(np.argmax(a.iou))
            points = point + [[float(rng.uniform(0, w)), float(rng.uniform(0, h))]]
            a2 = fp32.decode(
                ours,
                points,
                [1, 0],
                mask_logits=a.low_res_logits[best : best + 1],
                multimask=False,
            )
            b2 = fp32.decode(
                low,
                points,
                [1, 0],
                mask_logits=b.low_res_logits[best : best + 1],
                multimask=False,
            )
            compare(a2, b2, ious, iou_gaps)
        for _ in range(4):
            x0, x1 = sorted(rng.uniform(0, w, 2))
            y0, y1 = sorted(rng.uniform(0, h, 2))
            box = [x0, y0, x1 + 5, y1 + 5]
            compare(fp32.decode(ours, box=box), fp32.decode(low, box=box), ious, iou_gaps)

    ious = np.array(ious)
    assert len(ious) == 3 * (8 * (3 + 1) + 4 * 3)
    assert ious.mean() >= 0.99, ious.mean()
    assert np.percentile(ious, 5) >= 0.98, np.percentile(ious, 5)
    assert max(iou_gaps) <= 0.02


def test_bf16_features_differ_from_fp32_only_by_rounding(model):
    image = shapes_image(5)
    ours = SamPredictor(model).embed(image).features
    low = SamPredictor(model, "bf16").embed(image).features
    assert low.dtype == torch.float32  # handed on in fp32, whatever the encoder computed in
    relative = ((ours - low).norm() / ours.norm()).item()
    assert 0 < relative < 0.02  # bf16 products did run, and stayed close


def test_the_model_itself_keeps_fp32_weights(model):
    SamPredictor(model, "bf16")
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    assert encoder_in_precision(model.image_encoder, torch.float32) is model.image_encoder
    converted = encoder_in_precision(model.image_encoder, torch.bfloat16)
    block = converted.blocks[0]
    assert block.attn.qkv.weight.dtype == torch.bfloat16
    assert block.mlp.lin2.weight.dtype == torch.bfloat16
    assert block.norm1.weight.dtype == torch.float32  # norms, bias tables and neck stay fp32
    assert block.attn.rel_pos_h.dtype == torch.float32
    assert {p.dtype for p in converted.neck.parameters()} == {torch.float32}


def test_precision_names_and_devices():
    assert precision_dtype("fp32") == torch.float32
    assert precision_dtype("bf16") == torch.bfloat16
    assert precision_dtype("fp16", "cuda") == torch.float16
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        precision_dtype("fp16", "cpu")
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16, fp16"):
        precision_dtype("int8")
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        SamPredictor(build_sam("vit_tiny"), "fp16")


def test_embedding_keys_keep_precisions_apart():
    assert embedding_key("abc123", "fp32") == "abc123"  # fp32 embeddings stored before stay valid
    assert embedding_key("abc123", "bf16") == "abc123-bf16"
    assert embedding_key("abc123", "fp16") == "abc123-fp16"
    with pytest.raises(ValueError):
        embedding_key("abc123", "fp8")


def test_the_fused_attention_a_gpu_uses_computes_the_blocked_one():
    from engine.fast.encoder import attention_with_rel_pos, fused_attention_with_rel_pos

    gen = torch.Generator().manual_seed(3)
    maps, height, width, dim = 4, 14, 14, 16
    q, k, v = (torch.randn(maps, height * width, dim, generator=gen) for _ in range(3))
    rel_h = torch.randn(maps, height, width, height, generator=gen)
    rel_w = torch.randn(maps, height, width, width, generator=gen)
    scale = dim**-0.5

    blocked = attention_with_rel_pos(q * scale, k, v, rel_h, rel_w)
    fused = fused_attention_with_rel_pos(q, k, v, rel_h, rel_w, scale)
    assert torch.allclose(blocked, fused, atol=1e-5)
