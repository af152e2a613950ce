"""The prompt encoder's mask branch and the mask decoder for inference: the function of
``PromptEncoder`` + ``MaskDecoder`` (engine.prompt_encoder, engine.mask_decoder), computed with
those modules' own parameters, in the order an annotation tool needs it: the image's part once
(``image_state``), then any number of prompt sets against it.

What it relies on, beyond ``engine.fast.transformer`` and ``engine.fast.upscaling``:

- **Caching.** Everything the decoder computes from the image alone (the image tokens plus the
  no-mask embedding, the first block's image projections, the image tokens through the folded
  first upscaling convolution) is one ``ImageState``, reused for every click on the image.
- **A mask prompt is a low-rank shift.** The dense mask embedding is the mask branch's last
  layer, a 1x1 convolution U h + c of k = 16 features h per cell, so instead of the no-mask
  embedding n it shifts the image tokens by d = U h + (c - n), and any linear map W of them
  by W d = (W U) h + W (c - n): the first block's projections and the upscaling base are
  updated with k columns per cell instead of projecting C = 256 again (``with_mask``).
- **The IoU head reads tokens only.** Predicted IoUs come from the transformer's IoU token, so
  ``decode_grid`` drops the prompt sets below a threshold before paying for their masks.

Inference only; exact up to floating-point rounding (tests/engine/test_fast_path_parity.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch
from torch import nn

from engine.fast import gemm
from engine.fast.transformer import Projections, project_image, run_transformer
from engine.fast.upscaling import (
    FoldConstants,
    UpscaleFold,
    fold_constants,
    fold_upscaling,
    folded_matrices,
    upscale_and_project,
)
from engine.layers import MLP
from engine.mask_decoder import MaskDecoder
from engine.prompt_encoder import PromptEncoder
from engine.transformer import TwoWayAttentionBlock


@dataclass(frozen=True)
class ImageState:
    """Prompt-independent decoder inputs for one image, token-major.

    src: (1, hw, C) image tokens plus the dense prompt ((B, hw, C) with B mask prompts);
    pos: (1, hw, C) their positional encoding; first_layer: the first block's image-only
    projections (``project_image``); size: the (h, w) grid; upscale_base: src through the
    folded first upscaling convolution, (1 or B, hw, 4 c1).
    """

    src: torch.Tensor
    pos: torch.Tensor
    first_layer: Projections
    size: tuple[int, int]
    upscale_base: torch.Tensor


@dataclass(frozen=True)
class Decoded:
    """The transformer's answer to B prompt sets: the tokens that are read (B, 1 + M, C), the
    IoU token then the M mask tokens asked for (``MaskDecoder.output_indices``), the folded
    first upscaling step of its image tokens, and the (h, w) grid."""

    tokens: torch.Tensor
    fold: UpscaleFold
    size: tuple[int, int]

    def take(self, index: torch.Tensor) -> Decoded:
        return Decoded(self.tokens[index], self.fold.take(index), self.size)


class FastDecoder:
    """Decodes prompt embeddings into masks with a SAM's prompt encoder and mask decoder.

    Holds the modules, not copies of their weights; it caches their (constant) positional
    encoding of the embedding grid, so load the weights first.
    """

    # Cells x prompt sets per block of the upscaling (see ``engine.fast.upscaling``).
    UPSCALE_BLOCK = 2048

    def __init__(self, prompt_encoder: PromptEncoder, decoder: MaskDecoder) -> None:
        self.prompt_encoder = prompt_encoder
        self.decoder = decoder
        with torch.inference_mode():
            self.dense_pe = prompt_encoder.dense_pe()
        self._fold: tuple[tuple[int, ...], FoldConstants] | None = None

    def fold_constants(self) -> FoldConstants:
        """The upscaling fold's weight-only matrices and rows, recomputed only when a weight
        they come from has changed in place (training, ``load_state_dict``)."""
        decoder = self.decoder
        conv = cast(nn.ConvTranspose2d, decoder.output_upscaling[0])
        sources: list[torch.Tensor] = [conv.weight]
        sources += [] if conv.bias is None else [conv.bias]
        for layer in decoder.transformer.layers:
            layer = cast(TwoWayAttentionBlock, layer)
            sources += [
                layer.norm4.weight,
                layer.norm4.bias,
                layer.cross_attn_image_to_token.out_proj.bias,
            ]
        if any(t.is_inference() for t in sources):  # weights made in inference mode keep
            return fold_constants(decoder)  # no version counter: recompute every time
        key = tuple(t._version for t in sources) + tuple(id(t) for t in sources)
        if self._fold is None or self._fold[0] != key:
            with torch.inference_mode():
                self._fold = (key, fold_constants(decoder))
        return self._fold[1]

    @torch.inference_mode()
    def image_state(self, features: torch.Tensor) -> ImageState:
        """The state of (1, C, h, w) encoder features with no mask prompt."""
        no_mask = self.prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)
        # Token-major (1, hw, C) layout throughout: one copy here instead of one per block.
        src = (features + no_mask).flatten(2).transpose(1, 2).contiguous()
        pos = self.dense_pe.flatten(2).transpose(1, 2).contiguous()
        first_block = cast(TwoWayAttentionBlock, self.decoder.transformer.layers[0])
        first = project_image(first_block, src, pos)
        base = src @ folded_matrices(self.decoder)[0]
        return ImageState(src, pos, first, (features.shape[-2], features.shape[-1]), base)

    @torch.inference_mode()
    def with_mask(self, state: ImageState, masks: torch.Tensor) -> ImageState:
        """``state`` (of no mask prompt) for B mask prompts (B, 1, 4h, 4w) of logits."""
        branch = self.prompt_encoder.mask_downscaling
        conv = cast(nn.Conv2d, branch[-1])
        if state.src.shape[0] != 1 or conv.bias is None:
            raise ValueError("with_mask needs a state without mask and a biased 1x1 conv")
        hidden = branch[:-1](masks).flatten(2).transpose(1, 2)  # (B, hw, k)
        batch, k = hidden.shape[0], hidden.shape[2]
        u = conv.weight.view(conv.out_channels, k)  # (C, k)
        shift = conv.bias - self.prompt_encoder.no_mask_embed.weight[0]  # (C,)
        block = cast(TwoWayAttentionBlock, self.decoder.transformer.layers[0])
        t2i, i2t = block.cross_attn_token_to_image, block.cross_attn_image_to_token
        weights = torch.cat([t2i.k_proj.weight, t2i.v_proj.weight, i2t.q_proj.weight])
        delta = torch.matmul(hidden, (weights @ u).T) + weights @ shift  # (B, hw, 3 internal)
        widths = [p.shape[-1] for p in state.first_layer]
        first = tuple(
            p + d for p, d in zip(state.first_layer, delta.split(widths, -1), strict=True)
        )
        src = torch.baddbmm(
            (state.src + shift).expand(batch, -1, -1), hidden, u.T.expand(batch, -1, -1)
        )
        m0 = folded_matrices(self.decoder)[0]
        upscale = torch.baddbmm(
            (state.upscale_base + shift @ m0).expand(batch, -1, -1),
            hidden,
            (u.T @ m0).expand(batch, -1, -1),
        )
        return ImageState(src, state.pos, cast(Projections, first), state.size, upscale)

    @torch.inference_mode()
    def run(self, state: ImageState, sparse: torch.Tensor, multimask: bool) -> Decoded:
        """The transformer on the output tokens + sparse prompt embeddings (B, N, C)."""
        decoder = self.decoder
        output_tokens = torch.cat([decoder.iou_token.weight, decoder.mask_tokens.weight], dim=0)
        batch = sparse.shape[0]
        tokens = torch.cat([output_tokens.unsqueeze(0).expand(batch, -1, -1), sparse], dim=1)
        wanted = [0, *(1 + i for i in decoder.output_indices(multimask))]
        hs, traces = run_transformer(
            decoder.transformer, state.src, state.pos, tokens, state.first_layer, wanted
        )
        fold = fold_upscaling(self.fold_constants(), state.upscale_base, traces)
        return Decoded(hs, fold, state.size)

    @torch.inference_mode()
    def iou(self, decoded: Decoded, multimask: bool) -> torch.Tensor:
        """(B, M) predicted IoU; M = 3 with multimask, else 1."""
        wanted = self.decoder.output_indices(multimask)
        iou = gemm.mlp(self.decoder.iou_prediction_head, decoded.tokens[:, 0, :])
        return iou[:, wanted.start : wanted.stop]

    @torch.inference_mode()
    def masks(
        self, decoded: Decoded, multimask: bool, cells: tuple[int, int] | None = None
    ) -> torch.Tensor:
        """(B, M, 4h, 4w) mask logits; with ``cells`` = (rows, cols), only the top-left
        rows x cols cells of the grid are upscaled, giving (B, M, 4 rows, 4 cols)."""
        wanted = self.decoder.output_indices(multimask)
        mlps = self.decoder.output_hypernetworks_mlps
        hyper = torch.stack(
            [
                gemm.mlp(cast(MLP, mlps[i]), decoded.tokens[:, 1 + k, :])
                for k, i in enumerate(wanted)
            ],
            dim=1,
        )
        fold, size = decoded.fold, decoded.size
        if cells is not None and tuple(cells) != tuple(size):
            fold, size = fold.cells(size, cells), cells
        return upscale_and_project(self.decoder, fold, hyper, size, self.UPSCALE_BLOCK)

    def decode(
        self, state: ImageState, sparse: torch.Tensor, multimask: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``MaskDecoder.forward`` of the state's image and (B, N, C) sparse embeddings:
        mask logits (B, M, 4h, 4w) and predicted IoU (B, M)."""
        decoded = self.run(state, sparse, multimask)
        return self.masks(decoded, multimask), self.iou(decoded, multimask)

    def decode_grid(
        self,
        state: ImageState,
        sparse: torch.Tensor,
        multimask: bool,
        min_iou: float | None,
        cells: tuple[int, int],
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``decode`` for the automatic pass: only the prompt sets with an IoU above
        ``min_iou`` (all when None), only ``cells`` (see ``masks``). Returns their index
        int64 (K,), mask logits (K, M, 4 rows, 4 cols) and float32 IoU (K, M)."""
        decoded = self.run(state, sparse, multimask)
        iou = self.iou(decoded, multimask).float()
        index = torch.arange(len(iou), device=iou.device)
        if min_iou is not None:
            index = torch.nonzero((iou > min_iou).any(dim=1)).flatten()
            if len(index) < len(iou):
                decoded, iou = decoded.take(index), iou[index]
        if len(index) == 0:
            empty = iou.new_zeros((0, iou.shape[1], 4 * cells[0], 4 * cells[1]))
            return index, empty, iou
        return index, self.masks(decoded, multimask, cells), iou
