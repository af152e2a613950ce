"""vit_tiny against itself after a save/load round trip, and batch embedding."""

import numpy as np
import torch

from engine import SamPredictor, build_sam, save_checkpoint
from engine.registry import encoder_key, read_checkpoint_metadata


def test_tiny_model_gives_identical_masks_after_save_and_load(tmp_path):
    torch.manual_seed(3)
    model = build_sam("vit_tiny")
    path = save_checkpoint(model, tmp_path / "tiny.pt", round=2, trained_on="synthetic")
    loaded = build_sam("vit_tiny", checkpoint=path)
    image = np.random.default_rng(0).integers(0, 255, (120, 200, 3), dtype=np.uint8)
    a, b = SamPredictor(model), SamPredictor(loaded)
    emb_a, emb_b = a.embed(image), b.embed(image)
    assert torch.equal(emb_a.features, emb_b.features)
    for prompt in (dict(points=[[50, 40]], labels=[1]), dict(box=[10, 10, 150, 100])):
        out_a, out_b = a.decode(emb_a, **prompt), b.decode(emb_b, **prompt)
        assert np.array_equal(out_a.masks, out_b.masks)
        np.testing.assert_array_equal(out_a.iou, out_b.iou)
    assert encoder_key(model) == encoder_key(loaded)
    meta = read_checkpoint_metadata(path)
    assert meta["round"] == 2 and meta["trained_on"] == "synthetic"
    assert meta["model_type"] == "vit_tiny"


def test_encoder_key_changes_with_encoder_weights_only():
    torch.manual_seed(0)
    model = build_sam("vit_tiny")
    before = encoder_key(model)
    with torch.no_grad():
        model.mask_decoder.iou_token.weight.add_(1.0)
    assert encoder_key(model) == before
    with torch.no_grad():
        model.image_encoder.pos_embed.add_(1.0)
    assert encoder_key(model) != before


def test_embed_batch_equals_single_embeds_for_mixed_sizes():
    torch.manual_seed(1)
    predictor = SamPredictor(build_sam("vit_tiny"))
    rng = np.random.default_rng(1)
    images = [
        rng.integers(0, 255, shape, dtype=np.uint8)
        for shape in [(50, 80, 3), (90, 30, 3), (64, 64, 3)]
    ]
    batch = predictor.embed_batch(images, batch_size=3)
    for image, emb in zip(images, batch, strict=False):
        single = predictor.embed(image)
        assert emb.original_size == image.shape[:2]
        assert emb.input_size == single.input_size
        torch.testing.assert_close(emb.features, single.features, atol=1e-4, rtol=1e-4)


def test_embedding_survives_fp16_bytes_round_trip():
    torch.manual_seed(2)
    predictor = SamPredictor(build_sam("vit_tiny"))
    image = np.random.default_rng(2).integers(0, 255, (40, 70, 3), dtype=np.uint8)
    emb = predictor.embed(image)
    from engine import Embedding

    back = Embedding.from_bytes(emb.to_bytes())
    assert back.features.dtype == torch.float16
    assert back.original_size == emb.original_size and back.input_size == emb.input_size
    out_a = predictor.decode(emb, points=[[30, 20]], labels=[1])
    out_b = predictor.decode(back, points=[[30, 20]], labels=[1])
    agree = (out_a.masks == out_b.masks).mean()
    assert agree > 0.99
