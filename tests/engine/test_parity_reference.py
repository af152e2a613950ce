"""Our plain SAM (the modules training runs, not the inference fast path) against Meta's
reference implementation on the same seeded vit_b weights. The fast path is checked against
the plain model in test_fast_path_parity.py, and its encoder here as well, at vit_b's size."""

import numpy as np
import pytest
import torch

from engine import SamPredictor, build_sam
from engine.predictor import check_prompt
from tests.engine.plain_sam import PlainOutput, plain_decode, plain_embed
from tests.reference import random_state_dict, segment_anything

pytestmark = pytest.mark.slow

HEIGHT, WIDTH = 321, 481  # non-square, as BSDS images in the GrabCut set


def structured_image(height: int, width: int) -> np.ndarray:
    """Gradients, stripes and two solid objects: features with real spatial structure."""
    yy, xx = np.mgrid[0:height, 0:width]
    image = np.stack([(xx * 0.5) % 255, (yy * 0.7) % 255, ((xx + yy) * 0.3) % 255], axis=-1).astype(
        np.uint8
    )
    image[100:200, 150:300] = (200, 30, 30)
    image[(yy - 240) ** 2 + (xx - 90) ** 2 < 40**2] = (20, 180, 60)
    return image


@pytest.fixture(scope="module")
def pair():
    sa = segment_anything()
    ours = build_sam("vit_b")
    state = random_state_dict(ours, seed=0)
    ours.load_state_dict(state, strict=True)
    reference = sa.sam_model_registry["vit_b"](checkpoint=None)
    reference.load_state_dict(state, strict=True)
    reference.eval()
    image = structured_image(HEIGHT, WIDTH)
    ref_predictor = sa.SamPredictor(reference)
    ref_predictor.set_image(image)
    embedding = plain_embed(ours, image)
    return ref_predictor, ours, embedding


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def decode(model, embedding, points=None, labels=None, box=None, mask_logits=None, multimask=True):
    """One prompt set in original-image pixels, as ``SamPredictor.decode`` takes it, through
    the plain model."""
    point_t, label_t, box_t, mask_t = check_prompt(
        embedding.original_size, points, labels, box, mask_logits
    )
    return plain_decode(model, embedding, point_t, label_t, box_t, mask_t, multimask)


def assert_same(ref_out, ours: PlainOutput, multimask):
    ref_masks, ref_iou, ref_low = ref_out
    our_masks = (ours.logits[0] > 0).numpy()
    assert our_masks.shape == ref_masks.shape == ((3 if multimask else 1), HEIGHT, WIDTH)
    for ref_mask, our_mask in zip(ref_masks, our_masks, strict=False):
        # A meaningful comparison: neither empty nor full.
        assert 0.01 < ref_mask.mean() < 0.99
        assert mask_iou(ref_mask, our_mask) >= 0.999
    np.testing.assert_allclose(ours.iou[0].numpy(), ref_iou, atol=1e-3)
    np.testing.assert_allclose(ours.low_res[0].numpy(), ref_low, atol=1e-3, rtol=1e-3)


def test_embeddings_match_reference(pair):
    ref_predictor, _, embedding = pair
    ref_features = ref_predictor.features[0]
    assert embedding.features.shape == ref_features.shape == (256, 64, 64)
    assert embedding.input_size == tuple(ref_predictor.input_size)
    assert embedding.original_size == (HEIGHT, WIDTH)
    scale = ref_features.abs().max()
    assert (embedding.features - ref_features).abs().max() <= 1e-4 * scale


def test_fast_encoder_matches_the_plain_one_at_vit_b_size(pair):
    _, ours, embedding = pair
    fast = SamPredictor(ours).embed(structured_image(HEIGHT, WIDTH))
    scale = embedding.features.abs().max()
    assert (fast.features - embedding.features).abs().max() <= 1e-5 * scale


PROMPTS = {
    "one point": dict(points=[[200.0, 150.0]], labels=[1]),
    "points with negatives": dict(
        points=[[200.0, 150.0], [50.0, 60.0], [400.0, 300.0]], labels=[1, 0, 0]
    ),
    "box": dict(box=[100.0, 80.0, 320.0, 250.0]),
    "point and box": dict(points=[[210.0, 160.0]], labels=[1], box=[100.0, 80.0, 320.0, 250.0]),
}


@pytest.mark.parametrize("multimask", [True, False], ids=["multimask", "single"])
@pytest.mark.parametrize("name", list(PROMPTS))
def test_masks_match_reference(pair, name, multimask):
    ref_predictor, ours, embedding = pair
    prompt = PROMPTS[name]
    ref_out = ref_predictor.predict(
        point_coords=np.array(prompt["points"]) if "points" in prompt else None,
        point_labels=np.array(prompt["labels"]) if "labels" in prompt else None,
        box=np.array(prompt["box"]) if "box" in prompt else None,
        multimask_output=multimask,
    )
    assert_same(ref_out, decode(ours, embedding, multimask=multimask, **prompt), multimask)


@pytest.mark.parametrize("multimask", [True, False], ids=["multimask", "single"])
def test_refinement_with_previous_logits_matches_reference(pair, multimask):
    ref_predictor, ours, embedding = pair
    first = decode(ours, embedding, points=[[200.0, 150.0]], labels=[1])
    best = first.low_res[0, int(first.iou[0].argmax())][None].numpy()
    points = np.array([[200.0, 150.0], [260.0, 120.0]])
    labels = np.array([1, 0])
    ref_out = ref_predictor.predict(
        point_coords=points, point_labels=labels, mask_input=best, multimask_output=multimask
    )
    out = decode(
        ours, embedding, points=points, labels=labels, mask_logits=best, multimask=multimask
    )
    assert_same(ref_out, out, multimask)


def test_batched_decode_equals_one_at_a_time(pair):
    _, ours, embedding = pair
    our_predictor = SamPredictor(ours)
    points = torch.tensor([[[200.0, 150.0]], [[50.0, 60.0]], [[400.0, 300.0]]])
    labels = torch.ones((3, 1), dtype=torch.int64)
    batch = our_predictor.decode_batch(embedding, points, labels)
    for i in range(3):
        single = our_predictor.decode(embedding, points=points[i].tolist(), labels=[1])
        assert mask_iou((batch.logits[i] > 0).numpy(), single.masks) >= 0.9999
        np.testing.assert_allclose(batch.iou[i].numpy(), single.iou, atol=1e-5)
