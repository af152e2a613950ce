"""Reduced-precision inference of the image encoder (``SAM_PRECISION``).

``fp32`` is the reference. ``bf16`` (CPU and CUDA) and ``fp16`` (CUDA only: CPUs have no fast
fp16 products) run the encoder's matrix products, which are nearly all its work, in the lower
precision, on weights converted once. What stays in fp32, because it is cheap and sensitive:

- the residual stream between blocks and every LayerNorm (statistics over 768-1280 channels),
  so rounding does not accumulate over 12-32 blocks;
- the attention's relative-position bias, the addition of the bias to the scores and the
  softmax (scores are upcast block by block in ``engine.fast.encoder``);
- the patch embedding and the neck (about 2% of the products), so the features the decoder sees
  are normalised in fp32.

The prompt encoder and the mask decoder stay fp32: a click costs milliseconds and its masks are
thresholded at 0, where rounding would show. Embeddings of different precisions never mix: the
embedding store keys them by ``embedding_key``.
"""

from __future__ import annotations

import copy

import torch

from engine.image_encoder import Block, ImageEncoderViT

PRECISIONS: dict[str, torch.dtype] = {
    "fp32": torch.float32,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}


def precision_dtype(precision: str, device: str | torch.device = "cpu") -> torch.dtype:
    """The compute dtype of ``precision`` on ``device``; ValueError for an unknown precision or
    fp16 on a CPU."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "fp16" and torch.device(device).type != "cuda":
        raise ValueError("fp16 needs a CUDA device (SAM_DEVICE=cuda); on a CPU use bf16")
    return PRECISIONS[precision]


def embedding_key(encoder_key: str, precision: str) -> str:
    """The store key of embeddings made by the encoder ``encoder_key`` in ``precision``: the
    encoder key itself for fp32 (so existing fp32 embeddings stay valid), suffixed otherwise."""
    precision_dtype(precision, "cuda")  # validates the name
    return encoder_key if precision == "fp32" else f"{encoder_key}-{precision}"


def encoder_in_precision(encoder: ImageEncoderViT, dtype: torch.dtype) -> ImageEncoderViT:
    """A copy of ``encoder`` for inference whose blocks' linear layers (attention q/k/v and
    output projections, MLP) hold ``dtype`` weights; everything else stays as it is (fp32).
    ``engine.fast.encoder.encode`` runs it in mixed precision. The original is not touched."""
    if dtype == torch.float32:
        return encoder
    converted = copy.deepcopy(encoder).eval()
    for block in converted.blocks:
        assert isinstance(block, Block)
        for linear in (block.attn.qkv, block.attn.proj, block.mlp.lin1, block.mlp.lin2):
            linear.to(dtype)
    for param in converted.parameters():
        param.requires_grad_(False)
    return converted
