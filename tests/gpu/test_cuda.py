"""On a CUDA device (marked ``gpu``; collected only where ``torch.cuda.is_available()``, see
tests/conftest.py): the encoder in fp32, bf16 and fp16 on the GPU against ours in fp32 on the
CPU, within the reduced-precision bounds; the compiled encoder; a full training step."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine import SamPredictor, build_sam, encoder_key
from tests.engine.test_precision import compare, shapes_image

pytestmark = pytest.mark.gpu

BOUNDS = {"fp32": (0.999, 0.995), "bf16": (0.99, 0.98), "fp16": (0.99, 0.98)}


def seeded(model_type: str):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(11)
        return build_sam(model_type)


@pytest.mark.parametrize("model_type", ["vit_tiny", "vit_b"])
@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_cuda_masks_agree_with_cpu_fp32(model_type, precision):
    cpu_model = seeded(model_type)
    cpu = SamPredictor(cpu_model)
    gpu = SamPredictor(seeded(model_type).to("cuda"), precision)
    rng = np.random.default_rng(1)
    ious, gaps = [], []
    for seed in range(2):
        image = shapes_image(seed)
        h, w = image.shape[:2]
        reference, ours = cpu.embed(image), gpu.embed(image)
        for _ in range(10):
            point = [[float(rng.uniform(0, w)), float(rng.uniform(0, h))]]
            compare(cpu.decode(reference, point, [1]), gpu.decode(ours, point, [1]), ious, gaps)
    mean_bound, p5_bound = BOUNDS[precision]
    assert np.mean(ious) >= mean_bound and np.percentile(ious, 5) >= p5_bound
    assert max(gaps) <= 0.02


def test_batched_embedding_on_cuda_equals_one_by_one():
    gpu = SamPredictor(seeded("vit_tiny").to("cuda"), "bf16")
    images = [shapes_image(seed) for seed in range(3)]
    batched = gpu.embed_batch(images, batch_size=3)
    for image, embedding in zip(images, batched, strict=True):
        single = gpu.embed(image)
        assert torch.allclose(single.features, embedding.features, atol=5e-2)


def test_the_compiled_encoder_computes_the_same_features():
    model = seeded("vit_tiny").to("cuda")
    image = shapes_image(4)
    plain = SamPredictor(model).embed(image).features
    compiled = SamPredictor(model, compile=True).embed(image).features
    assert torch.allclose(plain, compiled, atol=1e-3)


def test_a_full_training_step_runs_on_cuda(tmp_path):
    from modeltrain.training import TrainConfig, train
    from tests.modeltrain.test_training_loss import export, seeded_tiny

    model = seeded_tiny()
    key = encoder_key(model)
    data = export(tmp_path, 2, heldout_path=str(tmp_path / "missing-heldout.png"))
    config = TrainConfig(
        mode="full", steps=2, lr=1e-3, iterations=1, masks_per_image=1, device="cuda"
    )

    result = train(model, data, config)

    assert len(result.losses) == 2 and all(np.isfinite(result.losses))
    assert next(model.parameters()).device.type == "cuda"
    assert encoder_key(model.cpu()) != key
