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
  final image tokens (``UpscaleFold``). Unrolled over the blocks, with the r_l moved onto the
  left factors, those products become one, and the matrices and constant rows depend on the
  weights alone (``FoldConstants``, computed once per set of weights).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from engine.fast import gemm
from engine.fast.transformer import LayerTrace
from engine.layers import LayerNorm2d
from engine.mask_decoder import MaskDecoder
from engine.transformer import TwoWayAttentionBlock


@dataclass(frozen=True)
class UpscaleFold:
    """The first upscaling convolution of the final image tokens, as ``fold_upscaling`` builds
    it from the transformer's traces: per cell, base * scale + left right (the tail rides in
    ``right`` against a column of ones in ``left``)."""

    base: torch.Tensor  # (1 or B, hw, 4 c1)
    scale: torch.Tensor  # (B, hw, 1)
    left: torch.Tensor  # (B, hw, K)
    right: torch.Tensor  # (B, K, 4 c1)

    def take(self, index: torch.Tensor) -> UpscaleFold:
        """Only the prompt sets at ``index``."""
        base = self.base if self.base.shape[0] == 1 else self.base[index]
        return UpscaleFold(base, self.scale[index], self.left[index], self.right[index])

    def cells(self, size: tuple[int, int], cells: tuple[int, int]) -> UpscaleFold:
        """Only the top-left rows x cols cells of the (h, w) grid."""

        def crop(x: torch.Tensor) -> torch.Tensor:  # (B, hw, K)
            x = x.view(x.shape[0], size[0], size[1], x.shape[-1])[:, : cells[0], : cells[1]]
            return x.reshape(x.shape[0], cells[0] * cells[1], -1)

        return UpscaleFold(crop(self.base), crop(self.scale), crop(self.left), self.right)

    def apply(self, start: int, stop: int) -> torch.Tensor:
        """(B, n, 4 c1): the convolution's output, bias included, for cells start:stop."""
        x = self.base[:, start:stop] * self.scale[:, start:stop]
        return gemm.baddbmm(x, self.left[:, start:stop], self.right)


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


@dataclass(frozen=True)
class FoldConstants:
    """What ``fold_upscaling`` needs of the weights alone, per block l: M_l (``before``), the
    row b_l M_l + beta_{l-1} M_l (``constant``), gamma_l M_{l+1} (``gamma``); and the tail
    beta_L M_L + the convolution's bias."""

    before: list[torch.Tensor]  # (C, 4 c1) each
    constant: list[torch.Tensor]  # (1, 4 c1) each
    gamma: list[torch.Tensor]  # (1, 4 c1) each
    tail: torch.Tensor  # (1, 4 c1)


def fold_constants(decoder: MaskDecoder) -> FoldConstants:
    """``FoldConstants`` of the decoder's current weights."""
    matrices = folded_matrices(decoder)
    constants, gammas = [], []
    carry = None  # beta_{l-1} M_{l-1}: the previous block's shift, added inside this one
    for i, module in enumerate(decoder.transformer.layers):
        layer = cast(TwoWayAttentionBlock, module)
        before, after = matrices[i], matrices[i + 1]
        bias, norm = layer.cross_attn_image_to_token.out_proj.bias, layer.norm4
        constant = bias @ before
        constants.append((constant if carry is None else constant + carry)[None])
        gammas.append((norm.weight @ after)[None])
        carry = norm.bias @ after
    assert carry is not None
    tail = (carry + upscale_weights(decoder, 0)[1])[None]
    return FoldConstants(matrices[:-1], constants, gammas, tail)


def fold_upscaling(
    constants: FoldConstants, base: torch.Tensor, traces: list[LayerTrace]
) -> UpscaleFold:
    """The first upscaling convolution of the transformer's final image tokens from
    ``base`` = keys_0 M_0 (1 or B, hw, 4 c1) and each block's trace.

    Block by block, x_l = r_l (x_{l-1} + left_l right_l); unrolled, the final
    x_L = base * prod_l r_l + sum_l (prod_{m >= l} r_m * left_l) right_l + tail, which is one
    product with the blocks' lefts and rights stacked, per cell block of ``UpscaleFold.apply``.
    The lefts are cell-major, (B, hw, K), as that product reads them and as the traces hold
    the probabilities.
    """
    widths = [trace.probs.shape[2] + 2 for trace in traces]
    batch, cells = traces[0].probs.shape[0], traces[0].probs.shape[1]
    left = traces[0].probs.new_empty((batch, cells, sum(widths) + 1))
    rights: list[torch.Tensor] = []
    scale = None  # prod_{m >= l} r_m, built from the last block back
    stop = left.shape[2] - 1
    for i in reversed(range(len(traces))):
        layer = traces[i]
        scale = layer.rstd if scale is None else scale * layer.rstd  # (B, hw, 1)
        start, heads = stop - widths[i], widths[i] - 2
        torch.mul(layer.probs, scale, out=left[:, :, start : start + heads])
        left[:, :, start + heads : start + heads + 1] = scale
        torch.mul(layer.mean, scale, out=left[:, :, stop - 1 : stop]).neg_()
        stop = start
        rights.insert(
            0,
            torch.cat(
                [
                    layer.values @ constants.before[i],
                    constants.constant[i].expand(batch, 1, -1),
                    constants.gamma[i].expand(batch, 1, -1),
                ],
                dim=1,
            ),
        )
    assert scale is not None
    left[:, :, -1] = 1
    rights.append(constants.tail.expand(batch, 1, -1))
    return UpscaleFold(base, scale, left, torch.cat(rights, dim=1))


def upscale_and_project(
    decoder: MaskDecoder, fold: UpscaleFold, hyper: torch.Tensor, size: tuple[int, int], block: int
) -> torch.Tensor:
    """Mask logits (B, M, 4h, 4w) of the (h, w) cells of ``fold`` and the hypernetworks'
    outputs ``hyper`` (B, M, c2), about ``block`` cells x prompt sets (whole rows of cells) at a
    time; each block's masks are interleaved straight into the output."""
    norm = cast(LayerNorm2d, decoder.output_upscaling[1])
    w2, b2 = upscale_weights(decoder, 3)
    batch, (h, w) = hyper.shape[0], size
    c1, c2, outputs = w2.shape[0], w2.shape[1] // 4, hyper.shape[1]
    rows = max(1, max(64, block // batch) // w)
    masks = hyper.new_empty((batch, outputs, 4 * h, 4 * w))
    grid = masks.view(batch, outputs, h, 2, 2, w, 2, 2)  # (b, m, i, d1i, d2i, j, d1j, d2j)
    w2t = w2.T.contiguous()  # (4 c2, c1), as a linear layer's weight
    for top in range(0, h, rows):
        bottom = min(h, top + rows)
        x = fold.apply(top * w, bottom * w)  # (B, n, 2*2*c1), columns (di, dj, c)
        x = F.layer_norm(x.view(batch, -1, 4, c1), (c1,), norm.weight, norm.bias, norm.eps)
        x = gemm.linear(F.gelu(x).view(-1, c1), w2t, b2, "gelu")
        part = gemm.bmm_nt(hyper, x.view(batch, -1, c2))  # (B, M, n*16)
        part = part.view(batch, outputs, bottom - top, w, 2, 2, 2, 2)
        grid[:, :, top:bottom].copy_(part.permute(0, 1, 2, 4, 6, 3, 5, 7))
    return masks
