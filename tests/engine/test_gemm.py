"""engine.fast.gemm: the oneDNN products agree with PyTorch's own operators, fall back where
oneDNN cannot serve (other dtypes, autograd, tiny products), and the decoder gives the same
masks either way."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from engine import SamPredictor, build_sam
from engine.fast import gemm
from engine.layers import MLP, MLPBlock
from tests.reference import random_state_dict


@pytest.fixture
def plain(monkeypatch: pytest.MonkeyPatch):
    """Run the body with PyTorch's operators only."""

    def use_plain() -> None:
        monkeypatch.setattr(gemm, "ENABLED", False)

    return use_plain


def _close(a: torch.Tensor, b: torch.Tensor) -> None:
    assert a.shape == b.shape and a.dtype == b.dtype
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-4)


def test_onednn_is_taken_where_pytorch_has_it():
    big = torch.zeros(64, 64)
    assert gemm._onednn(big) == gemm.ONEDNN
    assert gemm.ONEDNN == torch.backends.mkldnn.is_available()
    # never for tiny products, other dtypes, or when autograd must follow
    assert not gemm._onednn(big, macs=gemm.MIN_MACS - 1)
    assert not gemm._onednn(big.double())
    assert not gemm._onednn(big.bfloat16())
    assert not gemm._onednn(big.requires_grad_())


@pytest.mark.parametrize("activation", ["none", "relu", "gelu"])
def test_linear_matches_torch(activation):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 70, 64, generator=g)
    weight, bias = torch.randn(300, 64, generator=g), torch.randn(300, generator=g)
    expected = {"none": lambda t: t, "relu": torch.relu, "gelu": F.gelu}[activation](
        F.linear(x, weight, bias)
    )
    _close(gemm.linear(x, weight, bias, activation), expected)
    _close(gemm.linear(x, weight.T.contiguous().T, None), F.linear(x, weight))  # strided weight
    # a small product takes PyTorch's operators and gives the same
    _close(gemm.linear(x[:, :2], weight[:8], bias[:8], activation), expected[:, :2, :8])
    with pytest.raises(ValueError, match="unknown activation"):
        gemm.linear(x, weight, bias, "tanh")


def test_linear_add_and_batched_products_match_torch():
    g = torch.Generator().manual_seed(1)
    a, shared = torch.randn(3, 56, 256, generator=g), torch.randn(1, 4096, 256, generator=g)
    per_item = torch.randn(3, 4096, 256, generator=g)
    _close(gemm.bmm_nt(a, shared), torch.matmul(a, shared.transpose(1, 2)))
    _close(gemm.bmm_nt(a, per_item), torch.matmul(a, per_item.transpose(1, 2)))
    probs = torch.softmax(torch.randn(3, 56, 4096, generator=g), -1)
    _close(gemm.bmm(probs, shared), torch.matmul(probs, shared))
    _close(gemm.bmm(probs, per_item), torch.matmul(probs, per_item))
    # other + a @ b with a transposed a, a shared or per-item b, a shared or per-item other
    values = torch.randn(3, 56, 256, generator=g)
    for other in (shared, per_item):
        for b in (values[:1], values):
            expected = torch.matmul(probs.transpose(1, 2), b) + other
            _close(gemm.baddbmm(other, probs.transpose(1, 2), b), expected)
    x, w = torch.randn(4096, 56, generator=g), torch.randn(256, 56, generator=g)
    bias, other = torch.randn(256, generator=g), torch.randn(4096, 256, generator=g)
    _close(gemm.linear_add(x, w, other, bias), x @ w.T + bias + other)


def test_fallbacks_give_the_same_and_keep_autograd(plain):
    g = torch.Generator().manual_seed(2)
    x, w = torch.randn(512, 128, generator=g), torch.randn(256, 128, generator=g)
    fast = gemm.linear(x, w, None, "gelu")
    # float64 takes the fallback
    _close(gemm.linear(x.double(), w.double(), None, "gelu").float(), fast)
    # with a weight that needs a gradient, the result can be differentiated
    leaf = w.clone().requires_grad_()
    gemm.linear(x, leaf, None, "relu").sum().backward()
    assert leaf.grad is not None and leaf.grad.abs().sum() > 0
    plain()
    _close(gemm.linear(x, w, None, "gelu"), fast)


def test_module_helpers_match_the_modules():
    torch.manual_seed(3)
    x = torch.randn(1, 7, 256)
    for act in (nn.ReLU, nn.GELU):
        block = MLPBlock(256, 2048, act)
        _close(gemm.mlp_block(block, x), block(x))
    tanh_block = MLPBlock(256, 2048, nn.Tanh)  # no fused form: the module itself
    _close(gemm.mlp_block(tanh_block, x), tanh_block(x))
    head = MLP(256, 256, 32, 3)
    _close(gemm.mlp(head, x[:, 0]), head(x[:, 0]))


def test_decoder_masks_agree_with_and_without_onednn(plain):
    model = build_sam("vit_tiny")
    model.load_state_dict(random_state_dict(model, seed=5), strict=True)
    predictor = SamPredictor(model)
    image = np.random.default_rng(4).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    embedding = predictor.embed(image)
    prompts = [
        dict(points=[[10, 12], [40, 30]], labels=[1, 0]),
        dict(box=[5, 5, 50, 40]),
        dict(points=[[20, 20]], labels=[1], multimask=False),
    ]
    fast = [predictor.decode(embedding, **p) for p in prompts]
    plain()
    for p, one in zip(prompts, fast, strict=True):
        other = predictor.decode(embedding, **p)
        np.testing.assert_allclose(one.low_res_logits, other.low_res_logits, atol=1e-4)
        np.testing.assert_allclose(one.iou, other.iou, atol=1e-5)
