"""A stored binary mask as the decoder's mask prompt: the low-res frame of its own logits."""

import numpy as np
import pytest
import torch

from engine import SamPredictor, build_sam
from engine.transforms import MASK_PROMPT_LOGIT, mask_prompt_logits


def test_a_mask_lands_where_the_image_lands_in_the_padded_low_res_frame():
    # 200x100 (w x h) -> 1024x512 input, the bottom half of the square is padding; one low-res
    # cell is 4 input pixels, so 512/1024 * 256 = 128 rows hold the image.
    mask = np.zeros((100, 200), bool)
    mask[:, 100:] = True  # the right half of the image

    logits = mask_prompt_logits(mask)

    assert logits.shape == (1, 256, 256) and logits.dtype == np.float32
    assert np.all(logits[0, :128, 128:] == MASK_PROMPT_LOGIT)
    assert np.all(logits[0, :128, :128] == -MASK_PROMPT_LOGIT)
    assert np.all(logits[0, 128:, :] == -MASK_PROMPT_LOGIT)  # padding is background


def test_a_cell_the_edge_crosses_gets_its_covered_fraction():
    # 512x512 -> 1024x1024: a low-res cell is 2x2 image pixels; column 2 covers half of cell 1.
    mask = np.zeros((512, 512), bool)
    mask[:, :3] = True  # columns 0..2: cell 0 full, cell 1 covers 1 of 2 pixels

    logits = mask_prompt_logits(mask)

    assert logits[0, 0, 0] == pytest.approx(MASK_PROMPT_LOGIT)
    assert logits[0, 0, 1] == pytest.approx(0.0)
    assert logits[0, 0, 2] == pytest.approx(-MASK_PROMPT_LOGIT)


def test_the_decoder_takes_it_as_a_mask_prompt():
    torch.manual_seed(0)
    predictor = SamPredictor(build_sam("vit_tiny"))
    embedding = predictor.embed(np.random.default_rng(0).integers(0, 255, (48, 64, 3), np.uint8))
    mask = np.zeros((48, 64), bool)
    mask[10:30, 20:50] = True

    with_mask = predictor.decode(
        embedding, points=[[30, 20]], labels=[1], mask_logits=mask_prompt_logits(mask)
    )
    without = predictor.decode(embedding, points=[[30, 20]], labels=[1])

    assert with_mask.masks.shape[1:] == (48, 64)
    assert not np.allclose(with_mask.low_res_logits, without.low_res_logits)


def test_an_empty_or_flat_array_is_refused():
    for bad in [np.zeros((0, 5), bool), np.zeros(5, bool)]:
        with pytest.raises(ValueError, match="non-empty"):
            mask_prompt_logits(bad)
