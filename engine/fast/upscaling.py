"""The mask decoder's upscaling and mask product for inference: the function of
``MaskDecoder.output_upscaling`` followed by the hypernetworks' product, computed with that
module's own parameters, per cell, in cache-sized blocks, with its first convolution folded
through the transformer.

What it relies on (W the first convolution as a (C, 4 c1) matrix, gamma_l and beta_l the
scale and shift of block l's image-side LayerNorm, r_l its 1 / std and mu_l its mean):

- **Kernel = stride = 2.** Each output pixel of both transposed convolutions depends on one
  input cell only, so each convolution is a per-cell matrix product (C -> 2 x 2 x c1, then
  c1 -> 2 x 2 x c2), the LayerNorm2d and GELUs act per pixel, and the hypernetworks' product
  is per pixel as well. Cells can therefore go through in blocks of any size (``UPSCALE_BLOCK``
  cells x prompt sets, whose features stay in cache), and the 2 x 2 x 2 x 2 spatial
  interleaving is applied once, to the final masks.
- **Only the cells that show.** A caller that returns no low-res logits (``decode_grid``) asks
  for the top-left cells that reach the image; the padding's cells are not upscaled.
- **LayerNorm times a matrix.** LayerNorm(z) M = r (z - mu) diag(gamma) M + beta M, and
  z_l = keys_{l-1} + P_l^T V_l + b_l is linear in keys_{l-1}; so with M_L = W and
  M_{l-1} = diag(gamma_l) M_l,
      keys_l M_l = r_l (keys_{l-1} M_{l-1} + P_l^T (V_l M_{l-1}) + b_l M_{l-1}
                        - mu_l (gamma_l M_l)) + beta_l M_l.
  keys_0 M_0 is computed once per image (``ImageState.upscale_base``); each block then costs a
  product with K = heads * T + 2 columns instead of the (HW, C) x (C, 4 c1) product of the
  final image tokens (``UpscaleFold``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from engine.fast.transformer import LayerTrace
from engine.layers import LayerNorm2d
from engine.mask_decoder import MaskDecoder


@dataclass(frozen=True)
class UpscaleFold:
    """The first upscaling convolution of the final image tokens, as ``fold_upscaling`` builds
    it from the transformer's traces."""

    base: torch.Tensor  # (1 or B, hw, 4 c1)
    # Per block: left (B, K, hw), used transposed; right (B, K, 4 c1); rstd (B, hw, 1).
    steps: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
    tail: torch.Tensor  # (4 c1,)

    def take(self, index: torch.Tensor) -> UpscaleFold:
        """Only the prompt sets at ``index``."""
        base = self.base if self.base.shape[0] == 1 else self.base[index]
        steps = [(a[index], b[index], r[index]) for a, b, r in self.steps]
        return UpscaleFold(base, steps, self.tail)

    def cells(self, size: tuple[int, int], cells: tuple[int, int]) -> UpscaleFold:
        """Only the top-left rows x cols cells of the (h, w) grid."""

        def crop(x: torch.Tensor) -> torch.Tensor:  # (B, hw, K)
            x = x.view(x.shape[0], size[0], size[1], x.shape[-1])[:, : cells[0], : cells[1]]
            return x.reshape(x.shape[0], cells[0] * cells[1], -1)

        def crop_t(x: torch.Tensor) -> torch.Tensor:  # (B, K, hw)
            x = x.view(x.shape[0], x.shape[1], size[0], size[1])[:, :, : cells[0], : cells[1]]
            return x.reshape(x.shape[0], x.shape[1], cells[0] * cells[1])

        steps = [(crop_t(a), b, crop(r)) for a, b, r in self.steps]
        return UpscaleFold(crop(self.base), steps, self.tail)

    def apply(self, start: int, stop: int) -> torch.Tensor:
        """(B, n, 4 c1): the convolution's output, bias included, for cells start:stop."""
        x = self.base[:, start:stop]
        last = len(self.steps) - 1
        for i, (left, right, rstd) in enumerate(self.steps):
            left = left[:, :, start:stop].transpose(1, 2)
            x = torch.baddbmm(x, left, right) if i == 0 else x.baddbmm_(left, right)
            rstd = rstd[:, start:stop]
            x = torch.addcmul(self.tail, x, rstd) if i == last else x.mul_(rstd)
        return x


def upscale_weights(decoder: MaskDecoder, index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The transposed convolution ``output_upscaling[index]`` as a (C_in, 4 C_out) matrix,
    columns ordered (di, dj, c), and its (4 C_out,) bias."""
    conv = cast(nn.ConvTranspose2d, decoder.output_upscaling[index])
    if conv.bias is None:
        raise ValueError("the upscaling convolutions have biases in every SAM checkpoint")
    weight = conv.weight.permute(0, 2, 3, 1).reshape(conv.in_channels, 4 * conv.out_channels)
    return weight, conv.bias.repeat(4)


def folded_matrices(decoder: MaskDecoder) -> list[torch.Tensor]:
    """M_l = diag(gamma_{l+1}) ... diag(gamma_L) W for l = 0..L (M_L = W)."""
    matrices = [upscale_weights(decoder, 0)[0]]
    for layer in reversed(decoder.transformer.layers):
        norm = cast(nn.LayerNorm, layer.norm4)
        matrices.insert(0, norm.weight[:, None] * matrices[0])
    return matrices


def fold_upscaling(
    decoder: MaskDecoder, base: torch.Tensor, traces: list[LayerTrace]
) -> UpscaleFold:
    """The first upscaling convolution of the transformer's final image tokens from
    ``base`` = keys_0 M_0 (1 or B, hw, 4 c1) and each block's trace."""
    matrices = folded_matrices(decoder)
    bias = upscale_weights(decoder, 0)[1]
    steps = []
    carry = None  # beta_{l-1} M_{l-1}: the previous block's shift, added inside this one
    for i, layer in enumerate(traces):
        before, after = matrices[i], matrices[i + 1]
        constant = layer.bias @ before
        if carry is not None:
            constant = constant + carry
        batch, cells = layer.probs.shape[0], layer.probs.shape[2]
        ones = torch.ones((batch, 1, cells), dtype=layer.probs.dtype, device=layer.probs.device)
        # (B, K, hw), the probabilities' own layout; used transposed.
        left = torch.cat([layer.probs, ones, -layer.mean.transpose(1, 2)], dim=1)
        right = torch.cat(
            [
                layer.values @ before,
                constant.expand(batch, 1, -1),
                (layer.norm.weight @ after).expand(batch, 1, -1),
            ],
            dim=1,
        )
        steps.append((left, right, layer.rstd))
        carry = layer.norm.bias @ after
    assert carry is not None
    return UpscaleFold(base, steps, carry + bias)


def upscale_and_project(
    decoder: MaskDecoder, fold: UpscaleFold, hyper: torch.Tensor, size: tuple[int, int], block: int
) -> torch.Tensor:
    """Mask logits (B, M, 4h, 4w) of the (h, w) cells of ``fold`` and the hypernetworks'
    outputs ``hyper`` (B, M, c2), ``block`` cells x prompt sets at a time."""
    norm = cast(LayerNorm2d, decoder.output_upscaling[1])
    w2, b2 = upscale_weights(decoder, 3)
    batch, (h, w) = hyper.shape[0], size
    cells, c1, c2 = h * w, w2.shape[0], w2.shape[1] // 4
    step = max(64, block // batch)
    parts = []
    for start in range(0, cells, step):
        x = fold.apply(start, min(cells, start + step))  # (B, n, 2*2*c1), columns (di, dj, c)
        x = F.layer_norm(x.view(batch, -1, 4, c1), (c1,), norm.weight, norm.bias, norm.eps)
        x = F.gelu(torch.addmm(b2, F.gelu(x).view(-1, c1), w2))
        parts.append(x.view(batch, -1, c2) @ hyper.transpose(1, 2))  # (B, n*16, M)
    masks = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
    masks = masks.view(batch, h, w, 2, 2, 2, 2, -1)  # (b, i, j, d1i, d1j, d2i, d2j, m)
    masks = masks.permute(0, 7, 1, 3, 5, 2, 4, 6)  # (b, m, i, d1i, d2i, j, d1j, d2j)
    return masks.reshape(batch, -1, 4 * h, 4 * w)
