"""Bad images and prompts give a ValueError that says what is wrong, never a torch crash."""

import numpy as np
import pytest
import torch

from engine import SamPredictor, build_sam


@pytest.fixture(scope="module")
def predictor():
    torch.manual_seed(0)
    return SamPredictor(build_sam("vit_tiny"))


@pytest.fixture(scope="module")
def embedding(predictor):
    image = np.random.default_rng(0).integers(0, 255, (60, 100, 3), dtype=np.uint8)
    return predictor.embed(image)


@pytest.mark.parametrize(
    "image, message",
    [
        (np.zeros((10, 10, 3), dtype=np.uint16), "uint8"),
        (np.zeros((10, 10, 3), dtype=np.float32), "uint8"),
        (np.zeros((10, 10, 4), dtype=np.uint8), r"\(H, W, 3\)"),
        (np.zeros((0, 10, 3), dtype=np.uint8), "empty"),
        (np.zeros(10, dtype=np.uint8), r"\(H, W, 3\)"),
        ([[1, 2, 3]], "numpy array"),
    ],
)
def test_rejects_bad_images(predictor, image, message):
    with pytest.raises(ValueError, match=message):
        predictor.embed(image)


def test_greyscale_is_replicated_to_rgb(predictor):
    grey = np.random.default_rng(1).integers(0, 255, (30, 40), dtype=np.uint8)
    a = predictor.embed(grey)
    b = predictor.embed(np.repeat(grey[..., None], 3, axis=2))
    assert torch.equal(a.features, b.features)


@pytest.mark.parametrize("shape", [(1, 1), (1, 3000), (2500, 3)])
def test_tiny_and_extreme_aspect_images(predictor, shape):
    image = np.full(shape + (3,), 128, dtype=np.uint8)
    emb = predictor.embed(image)
    assert emb.original_size == shape
    assert min(emb.input_size) >= 1 and max(emb.input_size) == 1024
    out = predictor.decode(emb, points=[[0, 0]], labels=[1])
    assert out.masks.shape == (3,) + shape


def test_large_image_is_embedded_at_1024(predictor):
    image = np.zeros((3000, 4000, 3), dtype=np.uint8)
    emb = predictor.embed(image)
    assert emb.input_size == (768, 1024)
    out = predictor.decode(emb, box=[0, 0, 4000, 3000], multimask=False)
    assert out.masks.shape == (1, 3000, 4000)


@pytest.mark.parametrize(
    "prompt, message",
    [
        (dict(), "no prompt"),
        (dict(points=[], labels=[]), "no prompt"),
        (dict(points=[[10, 10]]), "together"),
        (dict(points=[[10, 10]], labels=[1, 0]), "1 points but 2 labels"),
        (dict(points=[[10, 10]], labels=[2]), "1 \\(foreground\\) or 0"),
        (dict(points=[[101, 10]], labels=[1]), r"point \(101, 10\) is outside the 100x60 image"),
        (dict(points=[[10, -1]], labels=[1]), "outside"),
        (dict(points=[[float("nan"), 1]], labels=[1]), "finite"),
        (dict(points=[[1, 2, 3]], labels=[1]), r"\[x, y\] pairs"),
        (dict(points="abc", labels=[1]), "numbers"),
        (dict(box=[50, 10, 20, 30]), "x0 <= x1"),
        (dict(box=[0, 0, 200, 30]), "outside the 100x60 image"),
        (dict(box=[0, 0, 20]), r"\[x0, y0, x1, y1\]"),
        (dict(mask_logits=np.zeros((64, 64))), r"\(1, 256, 256\)"),
    ],
)
def test_rejects_bad_prompts(predictor, embedding, prompt, message):
    with pytest.raises(ValueError, match=message):
        predictor.decode(embedding, **prompt)


def test_points_on_the_border_are_accepted(predictor, embedding):
    out = predictor.decode(embedding, points=[[100, 60], [0, 0]], labels=[1, 0])
    assert out.masks.shape == (3, 60, 100)


def test_mask_logits_alone_are_a_prompt(predictor, embedding):
    first = predictor.decode(embedding, points=[[50, 30]], labels=[1], multimask=False)
    again = predictor.decode(embedding, mask_logits=first.low_res_logits, multimask=False)
    assert again.masks.shape == (1, 60, 100)
    assert again.low_res_logits.shape == (1, 256, 256)
