"""The two-way transformer for inference: the function of
``engine.transformer.TwoWayTransformer``, computed with that module's own parameters, with the
projections of the 4096 image tokens (C = 256 wide) avoided wherever the few prompt tokens (T,
about 7) can take them instead.

What it relies on, per attention head (x an image token, q and k the other side's projected
query or key, W and b a projection's weight and bias, p the softmax probabilities):

- **Caching.** The first block's token->image keys and values and its image->token queries
  depend on the image tokens alone: ``project_image`` computes them once per image, and every
  prompt set reuses them (``engine.fast.decoder.ImageState``).
- **Key folding** (tokens->image, T queries over N image keys):
  q . (W_k x + b_k) = (W_k^T q) . x + q . b_k, and the last term is the same for every key, so
  it leaves the softmax unchanged: softmax(s + c) = softmax(s). The scores need T folded
  queries W_k^T q instead of N projected keys.
- **Value folding**: sum_j p_j (W_v x_j + b_v) = W_v (sum_j p_j x_j) + b_v, as sum_j p_j = 1.
  The N image tokens are averaged first and projected once per query.
- **Query folding** (image->tokens, N image queries over T keys):
  (W_q x + b_q) . k = x . (W_q^T k) + b_q . k, so the N queries need no projection.
- **Output distribution**: W_o sum_t p_t v_t = sum_t p_t (W_o v_t), so the N outputs are one
  product of the (N, heads * T) probabilities with (heads * T, C) projected values, added
  straight onto the residual.
- **Trace.** Each block's image update keys' = LayerNorm(keys + P^T V + b) is returned as its
  factors (``LayerTrace``: P, V, b and the LayerNorm's mean and 1 / std), from which
  ``engine.fast.upscaling`` applies a linear map to the final image tokens.

Inference only; exact up to floating-point rounding (tests/engine/test_fast_path_parity.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.fast import gemm
from engine.transformer import Attention, TwoWayAttentionBlock, TwoWayTransformer

Projections = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class LayerTrace:
    """How one block changed the image tokens: keys' = norm(keys + probs @ values + bias),
    with the norm's per-token mean and reciprocal std."""

    probs: torch.Tensor  # (B, HW, heads * T)
    values: torch.Tensor  # (B, heads * T, C)
    bias: torch.Tensor  # (C,)
    mean: torch.Tensor  # (B, HW, 1)
    rstd: torch.Tensor  # (B, HW, 1)
    norm: nn.LayerNorm


def project_image(
    block: TwoWayAttentionBlock, keys: torch.Tensor, key_pe: torch.Tensor
) -> Projections:
    """The block's three projections that depend on the image tokens alone: keys and values of
    token->image attention and queries of image->token attention, each (B, HW, internal)."""
    k = keys + key_pe
    t2i, i2t = block.cross_attn_token_to_image, block.cross_attn_image_to_token
    return t2i.k_proj(k), t2i.v_proj(keys), i2t.q_proj(k)


def run_transformer(
    transformer: TwoWayTransformer,
    image: torch.Tensor,
    image_pe: torch.Tensor,
    tokens: torch.Tensor,
    first_layer: Projections,
    wanted: list[int] | None = None,
) -> tuple[torch.Tensor, list[LayerTrace]]:
    """``transformer`` on token-major inputs: image (B or 1, HW, C), shared by all B prompt sets
    when 1; image_pe (1, HW, C); tokens (B, T, C); ``first_layer`` =
    ``project_image(transformer.layers[0], image, image_pe)``.

    Returns the updated tokens (B, T, C), only those at ``wanted`` (B, len(wanted), C) when
    given, and each block's ``LayerTrace`` (the image tokens themselves are left to
    ``engine.fast.upscaling``). The final attention and norm act on each token on its own, so
    the tokens nobody reads (the prompts', the mask tokens not asked for) skip them."""
    queries, keys = tokens, image
    traces = []
    for i, layer in enumerate(transformer.layers):
        assert isinstance(layer, TwoWayAttentionBlock)
        queries, keys, trace = _block(
            layer, queries, keys, tokens, image_pe, first_layer if i == 0 else None
        )
        traces.append(trace)
    final = transformer.final_attn_token_to_image
    if wanted is not None:
        queries, tokens = queries[:, wanted], tokens[:, wanted]
    attn = _tokens_to_image(final, queries + tokens, keys + image_pe, keys)
    return transformer.norm_final_attn(queries + attn), traces


def _block(
    block: TwoWayAttentionBlock,
    queries: torch.Tensor,
    keys: torch.Tensor,
    query_pe: torch.Tensor,
    key_pe: torch.Tensor,
    projections: Projections | None,
) -> tuple[torch.Tensor, torch.Tensor, LayerTrace]:
    """``block(queries, keys, query_pe, key_pe)`` plus its trace; ``projections``, when given,
    is ``project_image(block, keys, key_pe)``."""
    if block.skip_first_layer_pe:
        queries = _self_attention(block.self_attn, queries, queries)
    else:
        q = queries + query_pe
        queries = queries + _self_attention(block.self_attn, q, queries)
    queries = block.norm1(queries)

    t2i, i2t = block.cross_attn_token_to_image, block.cross_attn_image_to_token
    q = queries + query_pe
    q_i2t, k = None, keys  # with projections, keys + key_pe is never needed
    if projections is not None:
        k_t2i, v_t2i, q_i2t = projections
        queries = block.norm2(
            queries + _attend(t2i, gemm.apply_linear(t2i.q_proj, q), k_t2i, v_t2i)
        )
    else:
        k = keys + key_pe
        queries = block.norm2(queries + _tokens_to_image(t2i, q, k, keys))
    queries = block.norm3(queries + gemm.mlp_block(block.mlp, queries))

    q = queries + query_pe
    z, probs, values = _image_to_tokens(i2t, k, q, queries, keys, q_i2t)
    norm = block.norm4
    keys, mean, rstd = torch.native_layer_norm(
        z, norm.normalized_shape, norm.weight, norm.bias, norm.eps
    )
    mean, rstd = mean.to(keys.dtype), rstd.to(keys.dtype)  # float32 for half inputs
    return queries, keys, LayerTrace(probs, values, i2t.out_proj.bias, mean, rstd, norm)


def _attend(attn: Attention, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``attn`` on already projected (B or 1, N, internal) inputs; a batch of 1 is shared by
    every item of the other inputs' batch."""
    batch, heads = max(q.shape[0], k.shape[0]), attn.num_heads

    def split(x: torch.Tensor) -> torch.Tensor:
        x = x.expand(batch, -1, -1)
        return x.view(batch, x.shape[1], heads, -1).transpose(1, 2)

    out = F.scaled_dot_product_attention(split(q), split(k), split(v))
    tokens = out.shape[2]
    return gemm.apply_linear(
        attn.out_proj, out.transpose(1, 2).reshape(batch, tokens, attn.internal_dim)
    )


def _self_attention(attn: Attention, qk: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``attn(qk, qk, v)`` of the few tokens (B, T, C)."""
    return _attend(
        attn,
        gemm.apply_linear(attn.q_proj, qk),
        gemm.apply_linear(attn.k_proj, qk),
        gemm.apply_linear(attn.v_proj, v),
    )


def _tokens_to_image(
    attn: Attention, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor
) -> torch.Tensor:
    """``attn(q, k, v)`` for few queries q (B, T, C) over many keys k, v (B, N, C), by key and
    value folding."""
    heads, width = attn.num_heads, attn.internal_dim // attn.num_heads
    batch, tokens, channels = q.shape[0], q.shape[1], k.shape[2]
    q_heads = gemm.apply_linear(attn.q_proj, q).view(batch, tokens, heads, width)
    folded = torch.einsum("bthc,hcd->bhtd", q_heads, attn.k_proj.weight.view(heads, width, -1))
    folded = folded.reshape(batch, heads * tokens, channels) * width**-0.5
    scores = gemm.bmm_nt(folded, k)  # (B, heads*T, N)
    pooled = gemm.bmm(torch.softmax(scores, dim=-1), v)  # (B, heads*T, C)
    pooled = pooled.view(batch, heads, tokens, channels)
    out = torch.einsum("bhtd,hcd->bthc", pooled, attn.v_proj.weight.view(heads, width, -1))
    out = out + attn.v_proj.bias.view(heads, width)
    return gemm.apply_linear(attn.out_proj, out.reshape(batch, tokens, attn.internal_dim))


def _image_to_tokens(
    attn: Attention,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    residual: torch.Tensor,
    projected_q: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``residual + attn(q, k, v)`` for many queries q (B or 1, N, C) over few keys k, v
    (B, T, C), by query folding (unless ``projected_q``, ``attn.q_proj(q)``, is given) and
    output distribution. Returns it (B, N, C) with its two factors: the probabilities
    (B, N, heads * T) and the values through the output projection (B, heads * T, C), bias
    apart."""
    heads, width = attn.num_heads, attn.internal_dim // attn.num_heads
    batch, tokens = k.shape[0], k.shape[1]
    k_heads = gemm.apply_linear(attn.k_proj, k).view(batch, tokens, heads, width) * width**-0.5
    v_heads = gemm.apply_linear(attn.v_proj, v).view(batch, tokens, heads, width)
    # Scores as (B, heads, T, N): the softmax then runs over T with N innermost, many times
    # faster than a softmax over a last dimension of a few elements.
    if projected_q is not None:
        q_heads = projected_q.view(projected_q.shape[0], -1, heads, width)
        scores = torch.einsum("bthc,bnhc->bhtn", k_heads, q_heads)
    else:
        w_q = attn.q_proj.weight.view(heads, width, -1)
        folded = torch.einsum("bthc,hcd->bhtd", k_heads, w_q).reshape(batch, heads * tokens, -1)
        bias = torch.einsum("bthc,hc->bht", k_heads, attn.q_proj.bias.view(heads, width))
        scores = gemm.bmm_nt(folded, q)
        scores = scores.view(batch, heads, tokens, -1) + bias.unsqueeze(-1)
    probs = torch.softmax(scores.reshape(batch, heads, tokens, -1), dim=2)
    # Image-token-major for the product below (and the upscaling's fold): one transposing copy.
    probs = probs.reshape(batch, heads * tokens, -1).transpose(1, 2).contiguous()
    w_o = attn.out_proj.weight.view(-1, heads, width)  # (C, heads, width)
    values = torch.einsum("bthc,dhc->bhtd", v_heads, w_o).reshape(batch, heads * tokens, -1)
    # The bias rides on the values: each head's probabilities sum to 1, so the heads * T rows
    # of probabilities sum to ``heads`` and sum_t p_t (v_t + b / heads) = sum_t p_t v_t + b.
    # One product then writes residual + bias + attention, with no pass of its own for the bias.
    biased = values + attn.out_proj.bias / heads
    return gemm.baddbmm(residual, probs, biased), probs, values
