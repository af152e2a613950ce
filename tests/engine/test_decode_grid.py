"""decode_grid, the automatic pass's decoder, skips work but not results: the prompts it keeps
are exactly those with a mask above the IoU threshold, and their masks equal decode_batch's,
on wide and tall images (whose padding it does not upscale) and on a square one. (Against the
plain model, and the upscaling's blocks: tests/engine/test_fast_path_parity.py.)"""

import numpy as np
import pytest
import torch

from engine import SamPredictor, build_sam


@pytest.fixture(scope="module")
def predictor() -> SamPredictor:
    torch.manual_seed(3)
    return SamPredictor(build_sam("vit_tiny"))


@pytest.mark.parametrize("height, width", [(75, 130), (140, 61), (64, 64)])
def test_grid_masks_equal_batch_masks_for_the_prompts_kept(predictor, height, width):
    rng = np.random.default_rng(height)
    image = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    embedding = predictor.embed(image)
    points = torch.tensor(rng.uniform([0, 0], [width, height], (24, 1, 2)), dtype=torch.float32)
    labels = torch.ones((24, 1), dtype=torch.int64)

    full = predictor.decode_batch(embedding, points, labels)
    best = full.iou.max(dim=1).values.sort().values
    # Half the prompts pass; the threshold lies between two prompts' scores, not on one, since
    # decode_grid's scores may differ from decode_batch's in the last bits.
    threshold = float(best[11] + best[12]) / 2
    grid = predictor.decode_grid(embedding, points, labels, min_iou=threshold)
    unfiltered = predictor.decode_grid(embedding, points, labels)

    expected = torch.nonzero((full.iou > threshold).any(dim=1)).flatten()
    assert 0 < len(expected) < 24
    assert grid.prompt_index.tolist() == expected.tolist()
    torch.testing.assert_close(grid.iou, full.iou[expected])
    torch.testing.assert_close(grid.logits, full.logits[expected], atol=1e-4, rtol=1e-4)
    assert grid.logits.shape[-2:] == (height, width)
    assert unfiltered.prompt_index.tolist() == list(range(24))
    torch.testing.assert_close(unfiltered.logits, full.logits, atol=1e-4, rtol=1e-4)


def test_no_prompt_above_the_threshold_gives_an_empty_answer(predictor):
    image = np.zeros((40, 50, 3), dtype=np.uint8)
    embedding = predictor.embed(image)
    points = torch.tensor([[[10.0, 10.0]], [[30.0, 20.0]]])

    grid = predictor.decode_grid(embedding, points, torch.ones((2, 1), dtype=torch.int64), 2.0)

    assert grid.prompt_index.tolist() == [] and grid.logits.shape == (0, 3, 40, 50)


@pytest.mark.parametrize("chunk", [0, 1, 5])
def test_the_decoding_chunk_changes_nothing_but_speed(predictor, chunk):
    rng = np.random.default_rng(7)
    embedding = predictor.embed(rng.integers(0, 255, (60, 90, 3), dtype=np.uint8))
    points = torch.tensor(rng.uniform([0, 0], [90, 60], (13, 1, 2)), dtype=torch.float32)
    labels = torch.ones((13, 1), dtype=torch.int64)
    best = predictor.decode_batch(embedding, points, labels).iou.max(dim=1).values.sort().values
    threshold = float(best[6] + best[7]) / 2  # between two prompts: no tie to round either way
    default = predictor.decode_grid(embedding, points, labels, min_iou=threshold)

    saved, predictor.grid_chunk = predictor.grid_chunk, chunk
    try:
        chunked = predictor.decode_grid(embedding, points, labels, min_iou=threshold)
    finally:
        predictor.grid_chunk = saved

    assert chunked.prompt_index.tolist() == default.prompt_index.tolist()
    torch.testing.assert_close(chunked.iou, default.iou)
    torch.testing.assert_close(chunked.logits, default.logits, atol=1e-4, rtol=1e-4)
