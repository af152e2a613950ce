"""The image encoder for inference: the function of ``engine.image_encoder.ImageEncoderViT``,
computed with that module's own parameters, with the attention's score maps in cache-sized
blocks.

What it relies on:

- **Softmax is per row.** softmax(S + B) v for a block of query rows needs only those rows of
  the scores S = q k^T and of the bias B, so the (H W x H W) maps of a global block (64 MiB
  each in fp32 for vit_b) are computed a few query rows at a time, and windowed blocks several
  whole maps at a time, each block small enough to stay in the CPU's cache while the bias is
  added, the softmax runs and the product with v is taken.
- **The relative-position bias is a sum of two broadcasts.** B[(i, j), (k, l)] = rel_h[i, j, k]
  + rel_w[i, j, l], so each block adds its (rows, W, H, 1) and (rows, W, 1, W) slices in place
  instead of materialising B.

Inference only: the blocks write into one preallocated output, which autograd cannot follow
(training runs the plain encoder). Everything else (patch embedding, windows, MLP, neck) is the
plain modules' own forward.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from engine.fast import gemm
from engine.image_encoder import (
    Attention,
    Block,
    ImageEncoderViT,
    window_partition,
    window_unpartition,
)

# Score blocks of about this many elements (4 MiB in fp32) stay in the CPU's cache while the
# relative-position bias is added and the softmax runs; the full 4096x4096 maps of a global
# block would go to memory and back several times.
SCORE_BLOCK_ELEMENTS = 1 << 20


@torch.inference_mode()
def encode(encoder: ImageEncoderViT, x: torch.Tensor) -> torch.Tensor:
    """``encoder(x)``: (B, 3, img_size, img_size) normalised, padded RGB -> (B, out_chans,
    img_size / patch_size, img_size / patch_size) features."""
    # The blocks' products run in the dtype of their linear weights (fp32, or bf16/fp16 from
    # engine.precision.encoder_in_precision); the residual stream and the norms stay fp32.
    blocks = [block for block in encoder.blocks if isinstance(block, Block)]
    assert len(blocks) == len(encoder.blocks)
    dtype = blocks[0].attn.qkv.weight.dtype
    x = encoder.patch_embed(x) + encoder.pos_embed
    for block in blocks:
        x = _block(block, x, dtype)
    return encoder.neck(x.permute(0, 3, 1, 2))


def _block(block: Block, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``block(x)`` with blocked attention; x (B, H, W, C), the residual stream, stays in its
    dtype; the attention and the MLP compute in ``dtype``."""
    shortcut = x
    x = block.norm1(x).to(dtype)
    if block.window_size > 0:
        size = (x.shape[1], x.shape[2])
        x, padded = window_partition(x, block.window_size)
        x = window_unpartition(_attention(block.attn, x), block.window_size, padded, size)
    else:
        x = _attention(block.attn, x)
    x = shortcut + x.to(shortcut.dtype)
    return x + gemm.mlp_block(block.mlp, block.norm2(x).to(dtype)).to(x.dtype)


def _attention(attn: Attention, x: torch.Tensor) -> torch.Tensor:
    """``attn(x)`` for x (B, H, W, C). In reduced precision the bias comes from the queries
    upcast to the (fp32) tables."""
    batch, height, width, _ = x.shape
    q, k, v = attn.split_qkv(gemm.apply_linear(attn.qkv, x))
    bias_dtype = attn.rel_pos_h.dtype
    rel_h, rel_w = attn.rel_pos_bias(q.to(bias_dtype), height, width)
    if q.device.type == "cuda":
        out = fused_attention_with_rel_pos(q, k, v, rel_h, rel_w, attn.scale)
    else:
        out = attention_with_rel_pos(q * attn.scale, k, v, rel_h, rel_w)
    return gemm.apply_linear(attn.proj, attn.join_heads(out, batch, height, width))


def fused_attention_with_rel_pos(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    rel_h: torch.Tensor,
    rel_w: torch.Tensor,
    scale: float,
) -> torch.Tensor:
    """``attention_with_rel_pos`` through PyTorch's fused scaled-dot-product attention, for a
    GPU: the bias is materialised once per block, (G, H*W, H*W) in the queries' dtype (for
    vit_b's global blocks at batch 1, 12 x 4096 x 4096: 400 MB in bf16), and the kernel keeps
    the scores on chip. q unscaled here; the kernel applies ``scale``."""
    tokens = q.shape[1]
    bias = (rel_h[..., :, None] + rel_w[..., None, :]).reshape(-1, tokens, tokens)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype), scale=scale)


def attention_with_rel_pos(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, rel_h: torch.Tensor, rel_w: torch.Tensor
) -> torch.Tensor:
    """softmax(q k^T + rel_h + rel_w) v, computed in cache-sized blocks of score maps.

    Args:
        q: (G, H*W, d) queries, already scaled, G = batch x heads; k, v: (G, H*W, d); all
            contiguous.
        rel_h: (G, H, W, H) bias by the key's row; rel_w: (G, H, W, W) by its column.
    Returns:
        (G, H*W, d).
    """
    maps, tokens, _ = q.shape
    height, width = rel_h.shape[1], rel_h.shape[2]
    if tokens * tokens <= SCORE_BLOCK_ELEMENTS:  # windowed blocks: several whole maps at once
        group, rows = max(1, SCORE_BLOCK_ELEMENTS // (tokens * tokens)), height
    else:  # global blocks: a few query rows of one map at a time
        group, rows = 1, max(1, SCORE_BLOCK_ELEMENTS // (width * tokens))
    out = torch.empty_like(q)
    for g0 in range(0, maps, group):
        g1 = min(maps, g0 + group)
        k_t = k[g0:g1].transpose(-2, -1)
        for r0 in range(0, height, rows):
            r1 = min(height, r0 + rows)
            span = slice(r0 * width, r1 * width)
            # In reduced precision the scores are upcast to the bias's dtype (fp32) for the
            # bias and the softmax; the probabilities go back down for the product with v.
            scores = torch.matmul(q[g0:g1, span], k_t).to(rel_h.dtype)
            grid = scores.view(g1 - g0, r1 - r0, width, height, width)
            grid += rel_h[g0:g1, r0:r1, :, :, None]
            grid += rel_w[g0:g1, r0:r1, :, None, :]
            probs = torch.softmax(scores, dim=-1).to(v.dtype)
            # out[g0:g1, span] is contiguous: whole maps, or whole rows of one map.
            torch.matmul(probs, v[g0:g1], out=out[g0:g1, span])
    return out
