"""SAM's mask decoder: an IoU token and four mask tokens go through the two-way transformer with
the prompt tokens; hypernetwork MLPs turn mask tokens into weights over upscaled image features."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from engine.layers import MLP, LayerNorm2d
from engine.transformer import TwoWayAttentionBlock, TwoWayTransformer


@dataclass(frozen=True)
class ImageState:
    """Prompt-independent decoder inputs for one image: image tokens plus a shared dense prompt
    (1, hw, C), their positional encoding (1, hw, C), the first layer's image-only projections
    (None when the image tokens differ per prompt set) and the (h, w) of the grid."""

    src: torch.Tensor
    pos: torch.Tensor
    first_layer: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None
    size: tuple[int, int]
    # src through the transformer's LayerNorm scales and the first upscaling convolution
    # (``MaskDecoder.fold_upscaling``); None when not computed (training).
    upscale_base: torch.Tensor | None = None


@dataclass(frozen=True)
class UpscaleFold:
    """The first upscaling convolution of the final image tokens, expressed through the
    transformer's image-side updates (see ``MaskDecoder.fold_upscaling``)."""

    base: torch.Tensor  # (1 or B, hw, 4 c1)
    # Per layer: left (B, K, hw), used transposed; right (B, K, 4 c1); rstd (B, hw, 1).
    steps: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
    tail: torch.Tensor  # (4 c1,)

    def take(self, index: torch.Tensor) -> UpscaleFold:
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

    def apply(self, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """(B, n, 4 c1): the convolution's output, bias included, for cells start:stop."""
        x = self.base[:, start:stop]
        last = len(self.steps) - 1
        for i, (left, right, rstd) in enumerate(self.steps):
            left = left[:, :, start:stop].transpose(1, 2)
            x = torch.baddbmm(x, left, right) if i == 0 else x.baddbmm_(left, right)
            rstd = rstd[:, start:stop]
            x = torch.addcmul(self.tail, x, rstd) if i == last else x.mul_(rstd)
        return x


class MaskDecoder(nn.Module):
    # Cells x prompt sets per block of the upscaling (see ``_upscale_and_project``).
    UPSCALE_BLOCK = 2048

    def __init__(
        self,
        transformer_dim: int = 256,
        transformer: TwoWayTransformer | None = None,
        num_multimask_outputs: int = 3,
        iou_head_depth: int = 3,
        iou_head_hidden_dim: int = 256,
    ) -> None:
        super().__init__()
        self.transformer_dim = transformer_dim
        self.transformer = transformer or TwoWayTransformer(embedding_dim=transformer_dim)
        self.num_mask_tokens = num_multimask_outputs + 1
        self.iou_token = nn.Embedding(1, transformer_dim)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, transformer_dim)
        # The module layout (and so the checkpoint keys) is that of a Sequential of two stride-2
        # transposed convolutions; forward() computes the same function with matrix products.
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(transformer_dim, transformer_dim // 4, kernel_size=2, stride=2),
            LayerNorm2d(transformer_dim // 4),
            nn.GELU(),
            nn.ConvTranspose2d(transformer_dim // 4, transformer_dim // 8, kernel_size=2, stride=2),
            nn.GELU(),
        )
        self.output_hypernetworks_mlps = nn.ModuleList(
            MLP(transformer_dim, transformer_dim, transformer_dim // 8, 3)
            for _ in range(self.num_mask_tokens)
        )
        self.iou_prediction_head = MLP(
            transformer_dim, iou_head_hidden_dim, self.num_mask_tokens, iou_head_depth
        )

    def image_state(
        self, image_embeddings: torch.Tensor, image_pe: torch.Tensor, dense: torch.Tensor
    ) -> ImageState:
        """Everything the decoder computes from the image (and a dense prompt shared by the
        whole batch) before it sees any sparse prompt: reusable for every click on the image."""
        # Token-major (1, hw, C) layout throughout: one copy here instead of one per layer.
        src = (image_embeddings + dense).flatten(2).transpose(1, 2).contiguous()
        pos = image_pe.flatten(2).transpose(1, 2).contiguous()
        first = cast(TwoWayAttentionBlock, self.transformer.layers[0]).project_image(src, pos)
        size = (image_embeddings.shape[-2], image_embeddings.shape[-1])
        base = None if torch.is_grad_enabled() else src @ self._folded_upscale_weights()[0][0]
        return ImageState(src, pos, first, size, base)

    def _upscale_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The first transposed convolution as a (C, 4 c1) matrix, columns ordered (di, dj, c),
        and its (4 c1,) bias."""
        up1 = cast(nn.ConvTranspose2d, self.output_upscaling[0])
        if up1.bias is None:
            raise ValueError("the upscaling convolutions have biases in every SAM checkpoint")
        w1 = up1.weight.permute(0, 2, 3, 1).reshape(up1.in_channels, 4 * up1.out_channels)
        return w1, up1.bias.repeat(4)

    def _folded_upscale_weights(self) -> tuple[list[torch.Tensor], torch.Tensor]:
        """M_l = diag(gamma_{l+1}) ... diag(gamma_L) W for l = 0..L (M_L = W), the gammas
        being the transformer's image-side LayerNorm scales, and W's bias."""
        w1, bias = self._upscale_weights()
        matrices = [w1]
        for layer in reversed(self.transformer.layers):
            norm = cast(TwoWayAttentionBlock, layer).norm4
            matrices.insert(0, norm.weight[:, None] * matrices[0])
        return matrices, bias

    def fold_upscaling(self, state: ImageState, trace: list) -> UpscaleFold | None:
        """The first upscaling convolution of the transformer's final image tokens, from the
        image state and each layer's ``LayerTrace``, without the (hw, C) x (C, 4 c1) product.

        Layer l maps keys_{l-1} to keys_l = r_l (z_l - mu_l) gamma_l + beta_l with
        z_l = keys_{l-1} + P_l V_l + b_l, so for M_{l-1} = diag(gamma_l) M_l:
            keys_l M_l = r_l (keys_{l-1} M_{l-1} + P_l (V_l M_{l-1}) + b_l M_{l-1}
                              - mu_l (gamma_l M_l)) + beta_l M_l
        and keys_0 M_0 = src M_0 is computed once per image (``upscale_base``). Each layer
        costs a product with K = heads * T + 2 columns instead of C. None when the state has
        no base (then the convolution is applied as it is)."""
        if state.upscale_base is None or len(trace) != len(self.transformer.layers):
            return None
        matrices, bias = self._folded_upscale_weights()
        steps = []
        carry = None  # beta_{l-1} M_{l-1}: the previous layer's shift, added inside this one
        for i, layer in enumerate(trace):
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
        return UpscaleFold(state.upscale_base, steps, carry + bias)

    def masked_state(
        self, base: ImageState, no_mask: torch.Tensor, features: torch.Tensor, conv: nn.Conv2d
    ) -> ImageState:
        """``image_state`` for the same image with a mask prompt, derived from ``base`` (the
        state with the no-mask embedding ``no_mask`` (C,)) without projecting the image again.

        The dense mask embedding is ``conv`` (a 1x1 convolution, U h + c) of the
        ``features`` h (B, k, h, w) (``PromptEncoder.mask_features``), so it changes the image
        tokens by d = U h + c - no_mask and each first-layer projection W x + b by
        W d = (W U) h + W (c - no_mask): k (= 16) channels per cell instead of C (= 256).
        """
        if base.first_layer is None or conv.bias is None:
            raise ValueError("masked_state needs a shared base state and a biased 1x1 conv")
        batch, k = features.shape[0], features.shape[1]
        hidden = features.flatten(2).transpose(1, 2)  # (B, hw, k)
        u = conv.weight.view(conv.out_channels, k)  # (C, k)
        shift = conv.bias - no_mask  # (C,)
        block = cast(TwoWayAttentionBlock, self.transformer.layers[0])
        t2i, i2t = block.cross_attn_token_to_image, block.cross_attn_image_to_token
        weights = torch.cat([t2i.k_proj.weight, t2i.v_proj.weight, i2t.q_proj.weight])
        folded = weights @ u  # (3 * internal, k)
        delta = torch.matmul(hidden, folded.T) + weights @ shift  # (B, hw, 3 * internal)
        base_k, base_v, base_q = base.first_layer
        k_t2i, v_t2i, q_i2t = delta.split(
            [base_k.shape[-1], base_v.shape[-1], base_q.shape[-1]], -1
        )
        src = torch.baddbmm(
            (base.src + shift).expand(batch, -1, -1), hidden, u.T.expand(batch, -1, -1)
        )
        first = (base_k + k_t2i, base_v + v_t2i, base_q + q_i2t)
        upscale = None
        if base.upscale_base is not None:  # the same shift through M_0
            m0 = self._folded_upscale_weights()[0][0]
            upscale = torch.baddbmm(
                (base.upscale_base + shift @ m0).expand(batch, -1, -1),
                hidden,
                (u.T @ m0).expand(batch, -1, -1),
            )
        return ImageState(src, base.pos, first, base.size, upscale)

    def forward(
        self,
        image_embeddings: torch.Tensor | None,
        image_pe: torch.Tensor | None,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor | None,
        multimask_output: bool,
        state: ImageState | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode B prompt sets against one image.

        Args:
            image_embeddings: (1, C, h, w) encoder features (or (B, C, h, w), one per prompt set).
            image_pe: (1, C, h, w) dense positional encoding.
            sparse_prompt_embeddings: (B, N, C).
            dense_prompt_embeddings: (B, C, h, w), or (1, C, h, w) shared by the batch.
            state: ``image_state`` of these image embeddings, positional encoding and shared
                dense embedding, computed earlier; when given, those three are not read (and
                may be None).
        Returns:
            mask logits (B, M, 4h, 4w) and predicted IoU (B, M); M = 3 if multimask_output else 1.
        """
        hs, src, size, folded = self.run_transformer(
            image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings, state
        )
        masks = self.predict_masks(hs, src, size, multimask_output, folded=folded)
        return masks, self.predict_iou(hs, multimask_output)

    def run_transformer(
        self,
        image_embeddings: torch.Tensor | None,
        image_pe: torch.Tensor | None,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor | None,
        state: ImageState | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int], UpscaleFold | None]:
        """The two-way transformer over the output tokens + prompt tokens and the image tokens
        (arguments as in ``forward``; the image arguments may be None when ``state`` is given).
        Returns the tokens (B, 1 + 4 + N, C), the image tokens (B, hw, C), (h, w) and, when
        the state allows it, the folded first upscaling step for ``predict_masks``."""
        batch = sparse_prompt_embeddings.shape[0]
        output_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)
        tokens = torch.cat(
            [output_tokens.unsqueeze(0).expand(batch, -1, -1), sparse_prompt_embeddings], dim=1
        )
        if state is None:
            if image_embeddings is None or image_pe is None or dense_prompt_embeddings is None:
                raise ValueError("without an ImageState the image inputs are needed")
            if image_embeddings.shape[0] == 1 and dense_prompt_embeddings.shape[0] == 1:
                state = self.image_state(image_embeddings, image_pe, dense_prompt_embeddings)
            else:
                src = (image_embeddings + dense_prompt_embeddings).flatten(2).transpose(1, 2)
                pos = image_pe.flatten(2).transpose(1, 2)
                size = (image_embeddings.shape[-2], image_embeddings.shape[-1])
                state = ImageState(src, pos, None, size)
        trace: list | None = [] if state.upscale_base is not None else None
        hs, src = self.transformer(state.src, state.pos, tokens, state.first_layer, trace)
        folded = self.fold_upscaling(state, trace) if trace is not None else None
        return hs, src, state.size, folded

    def predict_iou(self, hs: torch.Tensor, multimask_output: bool) -> torch.Tensor:
        """(B, M) predicted IoU from the transformer's tokens: it needs no mask, so a caller
        may filter prompts on it before paying for their masks."""
        wanted = self.output_indices(multimask_output)
        return self.iou_prediction_head(hs[:, 0, :])[:, wanted.start : wanted.stop]

    def predict_masks(
        self,
        hs: torch.Tensor,
        src: torch.Tensor,
        size: tuple[int, int],
        multimask_output: bool,
        cells: tuple[int, int] | None = None,
        folded: UpscaleFold | None = None,
    ) -> torch.Tensor:
        """(B, M, 4h, 4w) mask logits; with ``cells`` = (rows, cols), only the top-left
        rows x cols cells of the grid are upscaled, giving (B, M, 4 rows, 4 cols): the rest
        of a padded image is padding, which callers that need no low-res logits skip.
        ``folded`` (from ``run_transformer``) replaces the first upscaling product."""
        wanted = self.output_indices(multimask_output)
        hyper = torch.stack(
            [self.output_hypernetworks_mlps[i](hs[:, 1 + i, :]) for i in wanted], dim=1
        )
        if cells is not None and tuple(cells) != tuple(size):
            rows, cols = cells
            channels = src.shape[-1]
            src = src.view(src.shape[0], size[0], size[1], channels)[:, :rows, :cols]
            if folded is not None:
                folded = folded.cells(size, (rows, cols))
            src, size = src.reshape(src.shape[0], rows * cols, channels), (rows, cols)
        return self._upscale_and_project(src, hyper, size, folded)

    def output_indices(self, multimask_output: bool) -> range:
        """Which mask tokens answer: the three ambiguity outputs, or the single one."""
        return range(1, self.num_mask_tokens) if multimask_output else range(0, 1)

    def _upscale_and_project(
        self,
        src: torch.Tensor,
        hyper: torch.Tensor,
        size: tuple[int, int],
        folded: UpscaleFold | None = None,
    ) -> torch.Tensor:
        """Both transposed convolutions have kernel = stride = 2, so every output pixel depends on
        one input cell: they are matrix products per cell, and LayerNorm and GELU act per pixel.
        The spatial interleaving is therefore applied once, to the final (B, M, 4h, 4w) masks.

        src (B, hw, C) image tokens; hyper (B, M, C/8) -> mask logits (B, M, 4h, 4w)."""
        up1 = cast(nn.ConvTranspose2d, self.output_upscaling[0])
        norm = cast(LayerNorm2d, self.output_upscaling[1])
        up2 = cast(nn.ConvTranspose2d, self.output_upscaling[3])
        if up2.bias is None:
            raise ValueError("the upscaling convolutions have biases in every SAM checkpoint")
        batch, cells, _ = src.shape
        c1, c2 = up1.out_channels, up2.out_channels
        w1, b1 = self._upscale_weights()
        w2 = up2.weight.permute(0, 2, 3, 1).reshape(c1, 4 * c2)
        b2 = up2.bias.repeat(4)
        # Cells go through in blocks whose (n, 16, c2) features stay in cache: the whole
        # (B, hw*16, c2) at once goes to memory and back between every step.
        step = cells if torch.is_grad_enabled() else max(64, self.UPSCALE_BLOCK // batch)
        parts = []
        for start in range(0, cells, step):
            stop = min(cells, start + step)
            if folded is not None:
                x = folded.apply(start, stop)
            else:  # (B, n, C) @ (C, 2*2*c1): columns ordered (di, dj, c).
                x = torch.matmul(src[:, start:stop], w1) + b1
            x = F.layer_norm(x.view(batch, -1, 4, c1), (c1,), norm.weight, norm.bias, norm.eps)
            x = F.gelu(torch.addmm(b2, F.gelu(x).view(-1, c1), w2))
            parts.append(x.view(batch, -1, c2) @ hyper.transpose(1, 2))  # (B, n*16, M)
        masks = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
        h, w = size
        masks = masks.view(batch, h, w, 2, 2, 2, 2, -1)  # (b, i, j, d1i, d1j, d2i, d2j, m)
        masks = masks.permute(0, 7, 1, 3, 5, 2, 4, 6)  # (b, m, i, d1i, d2i, j, d1j, d2j)
        return masks.reshape(batch, -1, 4 * h, 4 * w)
