"""The mask decoder's two-way transformer: prompt tokens attend to image tokens and image
tokens attend back to prompt tokens, so both sides are updated."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.layers import MLPBlock

Projections = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class LayerTrace:
    """How one block changed the image tokens: keys' = norm(keys + probs^T @ values + bias),
    with the norm's per-token mean and reciprocal std: what lets a linear map of the final
    image tokens be computed from the first ones (``MaskDecoder`` folds its first upscaling
    convolution this way)."""

    probs: torch.Tensor  # (B, heads * T, HW): transposed, as the softmax left them
    values: torch.Tensor  # (B, heads * T, C)
    bias: torch.Tensor  # (C,)
    mean: torch.Tensor  # (B, HW, 1)
    rstd: torch.Tensor  # (B, HW, 1)
    norm: nn.LayerNorm


def _matmul_shared(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b for (B, m, k) and (B or 1, k, n) or (B or 1, m, k) and (B, k, n): a side with a
    batch of 1 is shared by the whole batch, folded into one large product instead of being
    broadcast (which would copy it B times)."""
    if a.shape[0] == b.shape[0]:
        return torch.matmul(a, b)
    if b.shape[0] == 1:  # (B, m, k) @ (k, n)
        return torch.matmul(a.reshape(-1, a.shape[2]), b[0]).view(a.shape[0], a.shape[1], -1)
    # (m, k) @ (B, k, n): put the batch into the columns of one product.
    batch, inner, cols = b.shape
    out = torch.matmul(a[0], b.permute(1, 0, 2).reshape(inner, batch * cols))
    return out.view(a.shape[1], batch, cols).permute(1, 0, 2)


class Attention(nn.Module):
    """Multi-head attention with an optional down-projection of the internal width."""

    def __init__(self, embedding_dim: int, num_heads: int, downsample_rate: int = 1) -> None:
        super().__init__()
        self.internal_dim = embedding_dim // downsample_rate
        self.num_heads = num_heads
        if self.internal_dim % num_heads:
            raise ValueError("num_heads must divide embedding_dim // downsample_rate")
        self.q_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.k_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.v_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.out_proj = nn.Linear(self.internal_dim, embedding_dim)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, width = x.shape
        return x.view(batch, tokens, self.num_heads, width // self.num_heads).transpose(1, 2)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """q (B, Nq, C), k and v (B, Nk, C) -> (B, Nq, C)."""
        return self.attend(self.q_proj(q), self.k_proj(k), self.v_proj(v))

    def tokens_to_image(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """``forward`` for few queries (prompt tokens, B x T) over many keys (image tokens,
        B or 1 x N), without projecting the N keys and values.

        Per head, q_h . (W_k,h x + b_k,h) = (W_k,h^T q_h) . x + const: the constant does not
        change a softmax over keys, so scores come from the T queries folded into the key
        projection; and sum_j p_j (W_v,h x_j + b_v,h) = W_v,h (sum_j p_j x_j) + b_v,h. With
        T < head width this is the same function at about a third of the work.
        """
        heads, width = self.num_heads, self.internal_dim // self.num_heads
        batch, tokens, channels = q.shape[0], q.shape[1], k.shape[2]
        q_heads = self.q_proj(q).view(batch, tokens, heads, width)
        folded = torch.einsum("bthc,hcd->bhtd", q_heads, self.k_proj.weight.view(heads, width, -1))
        folded = folded.reshape(batch, heads * tokens, channels) * width**-0.5
        scores = _matmul_shared(folded, k.transpose(1, 2))  # (B, heads*T, N)
        pooled = _matmul_shared(torch.softmax(scores, dim=-1), v)  # (B, heads*T, C)
        pooled = pooled.view(batch, heads, tokens, channels)
        out = torch.einsum("bhtd,hcd->bthc", pooled, self.v_proj.weight.view(heads, width, -1))
        out = out + self.v_proj.bias.view(heads, width)
        return self.out_proj(out.reshape(batch, tokens, self.internal_dim))

    def image_to_tokens(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        projected_q: torch.Tensor | None = None,
        residual: torch.Tensor | None = None,
        trace: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """``forward`` for many queries (image tokens, B or 1 x N) over few keys (prompt
        tokens, B x T), without projecting the N queries (unless ``projected_q``, the
        q_proj of ``q``, is given) or the N outputs. With ``residual`` (B or 1, N, C) the
        result is ``residual + forward(...)``, accumulated in one buffer. With ``trace``, the
        output is also appended there as its two factors: probabilities (B, heads * T, N),
        to be used transposed, and values already through the output projection
        (B, heads * T, C), bias apart.

        Per head, (W_q,h x + b_q,h) . k_h = x . (W_q,h^T k_h) + b_q,h . k_h, and the output
        projection distributes over the softmax average:
        W_o,h sum_t p_t v_t = sum_t p_t (W_o,h v_t).
        """
        heads, width = self.num_heads, self.internal_dim // self.num_heads
        batch, tokens = k.shape[0], k.shape[1]
        k_heads = self.k_proj(k).view(batch, tokens, heads, width) * width**-0.5
        v_heads = self.v_proj(v).view(batch, tokens, heads, width)
        # Scores as (B, heads * T, N): the softmax then runs over T with N innermost, many
        # times faster than a softmax over a last dimension of a few elements.
        if projected_q is not None:
            q_heads = projected_q.view(projected_q.shape[0], -1, heads, width)
            scores = torch.einsum("bthc,bnhc->bhtn", k_heads, q_heads)
        else:
            w_q = self.q_proj.weight.view(heads, width, -1)
            folded = torch.einsum("bthc,hcd->bhtd", k_heads, w_q).reshape(batch, heads * tokens, -1)
            bias = torch.einsum("bthc,hc->bht", k_heads, self.q_proj.bias.view(heads, width))
            scores = _matmul_shared(folded, q.transpose(1, 2))
            scores = scores.view(batch, heads, tokens, -1) + bias.unsqueeze(-1)
        probs = torch.softmax(scores.reshape(batch, heads, tokens, -1), dim=2)
        w_o = self.out_proj.weight.view(-1, heads, width)  # (C, heads, width)
        values = torch.einsum("bthc,dhc->bhtd", v_heads, w_o).reshape(batch, heads * tokens, -1)
        probs = probs.reshape(batch, heads * tokens, -1)
        if trace is not None:
            trace.extend((probs, values))
        probs = probs.transpose(1, 2)
        if residual is None:
            start = self.out_proj.bias.expand(batch, probs.shape[1], -1)
            return torch.baddbmm(start, probs, values)
        start = (residual + self.out_proj.bias).expand(batch, -1, -1)
        if torch.is_grad_enabled():
            return torch.baddbmm(start, probs, values)
        # One pass to lay out residual + bias, then the product accumulates into it.
        return start.contiguous().baddbmm_(probs, values)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Attention on already projected (B or 1, N, internal_dim) inputs; a batch of 1 is
        shared by every item of the other inputs' batch."""
        batch = max(q.shape[0], k.shape[0])
        q, k, v = (x.expand(batch, -1, -1) for x in (q, k, v))
        out = F.scaled_dot_product_attention(self._heads(q), self._heads(k), self._heads(v))
        tokens = out.shape[2]
        return self.out_proj(out.transpose(1, 2).reshape(batch, tokens, self.internal_dim))


class TwoWayAttentionBlock(nn.Module):
    """Self-attention of tokens, tokens->image, MLP on tokens, image->tokens."""

    def __init__(
        self,
        embedding_dim: int,
        num_heads: int,
        mlp_dim: int = 2048,
        attention_downsample_rate: int = 2,
        skip_first_layer_pe: bool = False,
    ) -> None:
        super().__init__()
        self.self_attn = Attention(embedding_dim, num_heads)
        self.norm1 = nn.LayerNorm(embedding_dim)
        self.cross_attn_token_to_image = Attention(
            embedding_dim, num_heads, attention_downsample_rate
        )
        self.norm2 = nn.LayerNorm(embedding_dim)
        self.mlp = MLPBlock(embedding_dim, mlp_dim, nn.ReLU)
        self.norm3 = nn.LayerNorm(embedding_dim)
        self.norm4 = nn.LayerNorm(embedding_dim)
        self.cross_attn_image_to_token = Attention(
            embedding_dim, num_heads, attention_downsample_rate
        )
        self.skip_first_layer_pe = skip_first_layer_pe

    def project_image(self, keys: torch.Tensor, key_pe: torch.Tensor) -> Projections:
        """The block's three projections that depend on the image tokens alone: keys and values
        of token->image attention and queries of image->token attention."""
        k = keys + key_pe
        t2i, i2t = self.cross_attn_token_to_image, self.cross_attn_image_to_token
        return t2i.k_proj(k), t2i.v_proj(keys), i2t.q_proj(k)

    def forward(
        self,
        queries: torch.Tensor,
        keys: torch.Tensor,
        query_pe: torch.Tensor,
        key_pe: torch.Tensor,
        image_projections: Projections | None = None,
        trace: list[LayerTrace] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """queries (B, T, C); keys (B or 1, HW, C); ``image_projections`` is
        ``project_image(keys, key_pe)`` when the caller computed it already. With ``trace``,
        the image-side update is appended there (``LayerTrace``)."""
        if self.skip_first_layer_pe:
            queries = self.self_attn(queries, queries, queries)
        else:
            q = queries + query_pe
            queries = queries + self.self_attn(q, q, queries)
        queries = self.norm1(queries)

        t2i, i2t = self.cross_attn_token_to_image, self.cross_attn_image_to_token
        q = queries + query_pe
        k = keys + key_pe
        if image_projections is not None:
            k_t2i, v_t2i, q_i2t = image_projections
            queries = self.norm2(queries + t2i.attend(t2i.q_proj(q), k_t2i, v_t2i))
        else:
            q_i2t = None
            queries = self.norm2(queries + t2i.tokens_to_image(q, k, keys))
        queries = self.norm3(queries + self.mlp(queries))

        q = queries + query_pe
        if trace is None:
            keys = self.norm4(i2t.image_to_tokens(k, q, queries, projected_q=q_i2t, residual=keys))
            return queries, keys
        factors: list[torch.Tensor] = []
        z = i2t.image_to_tokens(k, q, queries, projected_q=q_i2t, residual=keys, trace=factors)
        norm = self.norm4
        keys, mean, rstd = torch.native_layer_norm(
            z, norm.normalized_shape, norm.weight, norm.bias, norm.eps
        )
        mean, rstd = mean.to(keys.dtype), rstd.to(keys.dtype)  # float32 for half inputs
        trace.append(LayerTrace(factors[0], factors[1], i2t.out_proj.bias, mean, rstd, norm))
        return queries, keys


class TwoWayTransformer(nn.Module):
    def __init__(
        self,
        depth: int = 2,
        embedding_dim: int = 256,
        num_heads: int = 8,
        mlp_dim: int = 2048,
        attention_downsample_rate: int = 2,
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            TwoWayAttentionBlock(
                embedding_dim, num_heads, mlp_dim, attention_downsample_rate, i == 0
            )
            for i in range(depth)
        )
        self.final_attn_token_to_image = Attention(
            embedding_dim, num_heads, attention_downsample_rate
        )
        self.norm_final_attn = nn.LayerNorm(embedding_dim)

    def forward(
        self,
        image: torch.Tensor,
        image_pe: torch.Tensor,
        tokens: torch.Tensor,
        first_layer_projections: Projections | None = None,
        trace: list[LayerTrace] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """image (B or 1, HW, C) and image_pe (1, HW, C) token-major; tokens (B, T, C).

        An image batch of 1 is shared by all B prompt sets, so the first layer's image-only
        projections are computed once; a caller decoding many prompts on one image may pass
        them in (``layers[0].project_image``).
        With ``trace``, each layer appends its ``LayerTrace``.
        Returns the updated tokens (B, T, C) and image tokens (B, HW, C)."""
        queries, keys = tokens, image
        for i, layer in enumerate(self.layers):
            cached = first_layer_projections if i == 0 else None
            queries, keys = layer(queries, keys, tokens, image_pe, cached, trace)
        attn = self.final_attn_token_to_image.tokens_to_image(
            queries + tokens, keys + image_pe, keys
        )
        return self.norm_final_attn(queries + attn), keys
