"""SAM's image encoder: a ViT with windowed and global attention, decomposed relative position
bias, and a convolutional neck producing (B, 256, 64, 64) features from a (B, 3, 1024, 1024)
normalised, padded RGB input.

This is the plain model, as the paper and Meta's release define it, and what training runs;
``engine.fast.encoder`` computes the same function with this module's parameters for inference.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine.layers import LayerNorm2d, MLPBlock


def rel_pos_table(q_size: int, k_size: int, rel_pos: torch.Tensor) -> torch.Tensor:
    """Relative position embeddings for every (query, key) coordinate pair along one axis.

    Args:
        rel_pos: (L, C) learned table; resized linearly when L != 2 * max(q_size, k_size) - 1.
    Returns:
        (q_size, k_size, C).
    """
    length = 2 * max(q_size, k_size) - 1
    if rel_pos.shape[0] != length:
        resized = F.interpolate(
            rel_pos.reshape(1, rel_pos.shape[0], -1).permute(0, 2, 1), size=length, mode="linear"
        )
        rel_pos = resized.reshape(-1, length).permute(1, 0)
    q_coords = torch.arange(q_size, device=rel_pos.device)[:, None] * max(k_size / q_size, 1.0)
    k_coords = torch.arange(k_size, device=rel_pos.device)[None, :] * max(q_size / k_size, 1.0)
    relative = (q_coords - k_coords) + (k_size - 1) * max(q_size / k_size, 1.0)
    return rel_pos[relative.long()]


class Attention(nn.Module):
    """Multi-head self-attention over a (B, H, W, C) token grid with decomposed rel-pos bias:
    softmax(q k^T / sqrt(d) + B) v, where the bias B between a query q at (i, j) and a key at
    (m, n) is q . R_h[i - m] + q . R_w[j - n], R_h and R_w learned tables (``rel_pos_table``)."""

    def __init__(self, dim: int, num_heads: int, input_size: tuple[int, int]) -> None:
        super().__init__()
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.scale = head_dim**-0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)
        self.rel_pos_h = nn.Parameter(torch.zeros(2 * input_size[0] - 1, head_dim))
        self.rel_pos_w = nn.Parameter(torch.zeros(2 * input_size[1] - 1, head_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, height, width, _ = x.shape
        q, k, v = self.split_heads(x)
        rel_h, rel_w = self.rel_pos_bias(q, height, width)
        tokens = height * width
        bias = (rel_h[..., :, None] + rel_w[..., None, :]).reshape(-1, tokens, tokens)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        return self.merge_heads(out, batch, height, width)

    def split_heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, H, W, C) -> q, k, v, each (B * heads, H * W, d), contiguous."""
        return self.split_qkv(self.qkv(x))

    def split_qkv(self, qkv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``split_heads`` from the qkv projection's output (B, H, W, 3 C)."""
        batch, height, width, _ = qkv.shape
        qkv = qkv.reshape(batch, height * width, 3, self.num_heads, -1)
        # One copy into (3, B * heads, HW, d): every later slice is contiguous.
        maps = batch * self.num_heads
        q, k, v = qkv.permute(2, 0, 3, 1, 4).reshape(3, maps, height * width, -1).unbind(0)
        return q, k, v

    def rel_pos_bias(
        self, q: torch.Tensor, height: int, width: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The decomposed bias of (B * heads, H * W, d) unscaled queries: by the key's row,
        (B * heads, H, W, H), and by its column, (B * heads, H, W, W)."""
        r_q = q.view(q.shape[0], height, width, -1)
        table_h = rel_pos_table(height, height, self.rel_pos_h)
        table_w = rel_pos_table(width, width, self.rel_pos_w)
        rel_h = torch.einsum("bhwc,hkc->bhwk", r_q, table_h).contiguous()
        rel_w = torch.einsum("bhwc,wkc->bhwk", r_q, table_w).contiguous()
        return rel_h, rel_w

    def merge_heads(self, out: torch.Tensor, batch: int, height: int, width: int) -> torch.Tensor:
        """(B * heads, H * W, d) -> output projection of (B, H, W, C)."""
        return self.proj(self.join_heads(out, batch, height, width))

    def join_heads(self, out: torch.Tensor, batch: int, height: int, width: int) -> torch.Tensor:
        """(B * heads, H * W, d) -> (B, H, W, C), the output projection's input."""
        out = out.view(batch, self.num_heads, height, width, -1).permute(0, 2, 3, 1, 4)
        return out.reshape(batch, height, width, -1)


def window_partition(x: torch.Tensor, size: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """(B, H, W, C) -> (B * windows, size, size, C), zero-padding H and W up to multiples."""
    batch, height, width, channels = x.shape
    pad_h = (size - height % size) % size
    pad_w = (size - width % size) % size
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    hp, wp = height + pad_h, width + pad_w
    x = x.view(batch, hp // size, size, wp // size, size, channels)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, size, size, channels), (hp, wp)


def window_unpartition(
    windows: torch.Tensor, size: int, padded: tuple[int, int], original: tuple[int, int]
) -> torch.Tensor:
    """Inverse of ``window_partition``, dropping the padding."""
    hp, wp = padded
    batch = windows.shape[0] // (hp * wp // size // size)
    x = windows.view(batch, hp // size, wp // size, size, size, -1)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(batch, hp, wp, -1)
    return x[:, : original[0], : original[1], :]


class Block(nn.Module):
    """Pre-norm transformer block; ``window_size`` 0 means global attention."""

    def __init__(
        self, dim: int, num_heads: int, mlp_ratio: float, window_size: int, grid: tuple[int, int]
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        attn_size = grid if window_size == 0 else (window_size, window_size)
        self.attn = Attention(dim, num_heads, attn_size)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = MLPBlock(dim, int(dim * mlp_ratio))
        self.window_size = window_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.norm1(x)
        if self.window_size > 0:
            size = (x.shape[1], x.shape[2])
            x, padded = window_partition(x, self.window_size)
            x = window_unpartition(self.attn(x), self.window_size, padded, size)
        else:
            x = self.attn(x)
        x = shortcut + x
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    """Non-overlapping patches -> tokens, (B, 3, H, W) -> (B, H/p, W/p, C)."""

    def __init__(self, patch_size: int, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).permute(0, 2, 3, 1)


class ImageEncoderViT(nn.Module):
    """ViT backbone + neck. Input (B, 3, img_size, img_size) float, normalised; output
    (B, out_chans, img_size / patch_size, img_size / patch_size)."""

    def __init__(
        self,
        img_size: int = 1024,
        patch_size: int = 16,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        out_chans: int = 256,
        window_size: int = 14,
        global_attn_indexes: tuple[int, ...] = (2, 5, 8, 11),
    ) -> None:
        super().__init__()
        self.img_size = img_size
        grid = (img_size // patch_size, img_size // patch_size)
        self.patch_embed = PatchEmbed(patch_size, embed_dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, grid[0], grid[1], embed_dim))
        self.blocks = nn.ModuleList(
            Block(
                embed_dim,
                num_heads,
                mlp_ratio,
                window_size=0 if i in global_attn_indexes else window_size,
                grid=grid,
            )
            for i in range(depth)
        )
        self.neck = nn.Sequential(
            nn.Conv2d(embed_dim, out_chans, kernel_size=1, bias=False),
            LayerNorm2d(out_chans),
            nn.Conv2d(out_chans, out_chans, kernel_size=3, padding=1, bias=False),
            LayerNorm2d(out_chans),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.neck(x.permute(0, 3, 1, 2))
