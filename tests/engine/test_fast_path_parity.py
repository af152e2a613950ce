"""The inference fast path (engine.fast, through the predictor) computes the plain model's
function: the same features, low-res logits, IoU predictions and masks, up to floating-point
rounding, for every kind of prompt, single and multimask, batched, and in grid decoding."""

import dataclasses

import numpy as np
import pytest
import torch

from engine import SamPredictor, build_sam
from engine.fast.decoder import FastDecoder
from engine.fast.encoder import encode
from tests.engine.plain_sam import plain_decode, plain_embed
from tests.reference import random_state_dict

# Seeded weights everywhere (biases, relative positions, LayerNorms too), so every folded term
# is exercised; logits and IoUs are of order 1 here.
TOLERANCE = dict(atol=2e-5, rtol=1e-5)


@pytest.fixture(scope="module")
def predictor() -> SamPredictor:
    model = build_sam("vit_tiny")
    model.load_state_dict(random_state_dict(model, seed=5), strict=True)
    return SamPredictor(model)


@pytest.fixture(scope="module")
def embedding(predictor):
    image = np.random.default_rng(0).integers(0, 255, (90, 140, 3), dtype=np.uint8)
    return predictor.embed(image)


def assert_same_masks(fast: torch.Tensor, plain: torch.Tensor) -> None:
    """Thresholded masks agree wherever the logit is not within rounding of the threshold."""
    torch.testing.assert_close(fast, plain, **TOLERANCE)
    decided = plain.abs() > 1e-4
    assert torch.equal((fast > 0)[decided], (plain > 0)[decided])
    assert 0.05 < float((plain > 0).float().mean()) < 0.95  # a mask, not all or nothing


def test_fast_encoder_equals_the_plain_encoder(predictor):
    """Windowed blocks (several maps per score block) and global ones (rows of one map)."""
    image = np.random.default_rng(1).integers(0, 255, (200, 120, 3), dtype=np.uint8)
    fast, plain = predictor.embed(image), plain_embed(predictor.model, image)
    assert fast.input_size == plain.input_size and fast.original_size == plain.original_size
    scale = float(plain.features.abs().max())
    assert float((fast.features - plain.features).abs().max()) <= 1e-5 * scale


PROMPTS = {
    "one point": dict(points=[[[50.0, 40.0]]], labels=[[1]]),
    "points with negatives": dict(
        points=[[[50.0, 40.0], [100.0, 70.0], [5.0, 80.0]]], labels=[[1, 0, 0]]
    ),
    "box": dict(boxes=[[20.0, 10.0, 110.0, 80.0]]),
    "point and box": dict(points=[[[60.0, 45.0]]], labels=[[1]], boxes=[[20.0, 10.0, 110.0, 80.0]]),
    "three prompt sets": dict(
        points=[
            [[50.0, 40.0], [10.0, 10.0]],
            [[130.0, 85.0], [70.0, 20.0]],
            [[0.0, 0.0], [140.0, 90.0]],
        ],
        labels=[[1, 0], [1, 1], [1, -1]],
    ),
}


def as_tensors(prompt: dict) -> dict:
    """decode_batch's keyword arguments (points and labels always, None when absent)."""
    out = {"points": None, "labels": None}
    out.update({key: torch.tensor(value, dtype=torch.float32) for key, value in prompt.items()})
    if out["labels"] is not None:
        out["labels"] = out["labels"].long()
    return out


@pytest.mark.parametrize("multimask", [True, False], ids=["multimask", "single"])
@pytest.mark.parametrize("name", list(PROMPTS))
def test_decode_equals_the_plain_decoder(predictor, embedding, name, multimask):
    prompt = as_tensors(PROMPTS[name])
    fast = predictor.decode_batch(embedding, **prompt, multimask=multimask)
    plain = plain_decode(predictor.model, embedding, **prompt, multimask=multimask)
    torch.testing.assert_close(fast.iou, plain.iou, **TOLERANCE)
    torch.testing.assert_close(fast.low_res_logits, plain.low_res, **TOLERANCE)
    assert_same_masks(fast.logits, plain.logits)


@pytest.mark.parametrize("multimask", [True, False], ids=["multimask", "single"])
@pytest.mark.parametrize("with_points", [True, False], ids=["points", "mask alone"])
def test_a_mask_prompt_decodes_as_the_plain_decoder(predictor, embedding, with_points, multimask):
    """A previous answer's low-res logits as the mask prompt (the refinement click)."""
    first = predictor.decode_batch(embedding, **as_tensors(PROMPTS["one point"]))
    mask_logits = first.low_res_logits[:, int(first.iou[0].argmax())][:, None]
    prompt = as_tensors(PROMPTS["points with negatives"] if with_points else {})
    fast = predictor.decode_batch(embedding, **prompt, mask_logits=mask_logits, multimask=multimask)
    plain = plain_decode(
        predictor.model, embedding, **prompt, mask_logits=mask_logits, multimask=multimask
    )
    torch.testing.assert_close(fast.iou, plain.iou, **TOLERANCE)
    torch.testing.assert_close(fast.low_res_logits, plain.low_res, **TOLERANCE)
    assert_same_masks(fast.logits, plain.logits)


@pytest.mark.parametrize("height, width", [(75, 130), (140, 61), (64, 64)])
def test_grid_decoding_equals_the_plain_decoder(predictor, height, width):
    """decode_grid keeps the prompt sets with an IoU above the threshold and upscales only the
    cells inside the image; what it returns is the plain model's answer."""
    rng = np.random.default_rng(height)
    embedding = predictor.embed(rng.integers(0, 255, (height, width, 3), dtype=np.uint8))
    points = torch.tensor(rng.uniform([0, 0], [width, height], (16, 1, 2)), dtype=torch.float32)
    labels = torch.ones((16, 1), dtype=torch.int64)
    plain = plain_decode(predictor.model, embedding, points, labels)
    best = plain.iou.max(dim=1).values.sort().values
    threshold = float(best[7] + best[8]) / 2  # between two prompt sets' scores, not on one

    grid = predictor.decode_grid(embedding, points, labels, min_iou=threshold)

    kept = torch.nonzero((plain.iou > threshold).any(dim=1)).flatten()
    assert grid.prompt_index.tolist() == kept.tolist() and len(kept) == 8
    torch.testing.assert_close(grid.iou, plain.iou[kept], **TOLERANCE)
    assert grid.logits.shape[-2:] == (height, width)
    assert_same_masks(grid.logits, plain.logits[kept])


@pytest.mark.parametrize("block", [1, 1000, 10**9])
def test_the_upscaling_block_changes_nothing_but_speed(predictor, monkeypatch, block):
    """The upscaling runs over blocks of cells (64 cells at the smallest; 200 for block 1000 and
    5 prompt sets, the last block partial); the masks are the same whatever the block, for a
    state shared by the prompt sets and for one per prompt set (mask prompts), and are the
    plain decoder's."""
    rng = np.random.default_rng(11)
    embedding = predictor.embed(rng.integers(0, 255, (70, 100, 3), dtype=np.uint8))
    points = torch.tensor(rng.uniform([0, 0], [100, 70], (5, 1, 2)), dtype=torch.float32)
    labels = torch.ones((5, 1), dtype=torch.int64)
    masks = torch.tensor(rng.normal(0, 4, (5, 1, 256, 256)), dtype=torch.float32)
    whole = predictor.decode_batch(embedding, points, labels)
    whole_masked = predictor.decode_batch(embedding, points, labels, mask_logits=masks)
    monkeypatch.setattr(FastDecoder, "UPSCALE_BLOCK", block)
    blocked = predictor.decode_batch(embedding, points, labels)
    blocked_masked = predictor.decode_batch(embedding, points, labels, mask_logits=masks)
    plain = plain_decode(predictor.model, embedding, points, labels)

    torch.testing.assert_close(blocked.low_res_logits, whole.low_res_logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(
        blocked_masked.low_res_logits, whole_masked.low_res_logits, atol=1e-5, rtol=1e-5
    )
    torch.testing.assert_close(whole.low_res_logits, plain.low_res, **TOLERANCE)


def test_the_cached_image_state_gives_the_same_answer_again(predictor, embedding):
    prompt = as_tensors(PROMPTS["point and box"])
    first = predictor.decode_batch(embedding, **prompt)
    again = predictor.decode_batch(embedding, **prompt)
    assert torch.equal(first.low_res_logits, again.low_res_logits)
    assert torch.equal(first.iou, again.iou)


def test_the_fast_path_reads_the_models_own_parameters(predictor, embedding):
    """No copy of the weights: a change to the model shows in the fast path's next answer."""
    model = predictor.model
    image = np.random.default_rng(2).integers(0, 255, (40, 60, 3), dtype=np.uint8)
    pixels = model.preprocess(torch.from_numpy(image).permute(2, 0, 1).float()[None])
    prompt = as_tensors(PROMPTS["one point"])
    before = predictor.decode_batch(embedding, **prompt)
    features_before = encode(model.image_encoder, pixels)
    changed = (model.mask_decoder.iou_token.weight, model.image_encoder.pos_embed)
    saved = [tensor.detach().clone() for tensor in changed]
    try:
        with torch.no_grad():
            for tensor in changed:
                tensor.add_(0.5)
        # A new Embedding object: the predictor's state cache is keyed by identity.
        after = predictor.decode_batch(dataclasses.replace(embedding), **prompt)
        features_after = encode(model.image_encoder, pixels)
        plain = plain_decode(model, embedding, **prompt)
    finally:
        with torch.no_grad():
            for tensor, value in zip(changed, saved, strict=True):
                tensor.copy_(value)
    assert not torch.allclose(after.iou, before.iou)
    assert not torch.allclose(features_after, features_before)
    torch.testing.assert_close(after.iou, plain.iou, **TOLERANCE)
