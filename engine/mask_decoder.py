"""SAM's mask decoder: an IoU token and four mask tokens go through the two-way transformer with
the prompt tokens; two transposed convolutions upscale the image tokens 4x, and hypernetwork
MLPs turn each mask token into the weights of a linear map of those upscaled features.

This is the plain model, as the paper and Meta's release define it, and what training runs;
``engine.fast.decoder`` computes the same function with this module's parameters for inference.
"""

from __future__ import annotations

import torch
from torch import nn

from engine.layers import MLP, LayerNorm2d
from engine.transformer import TwoWayTransformer


class MaskDecoder(nn.Module):
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

    def forward(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
        multimask_output: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode B prompt sets.

        Args:
            image_embeddings: (1, C, h, w) encoder features of one image, shared by the B
                prompt sets (or (B, C, h, w), one per prompt set).
            image_pe: (1, C, h, w) dense positional encoding (``PromptEncoder.dense_pe``).
            sparse_prompt_embeddings: (B, N, C) point and box tokens.
            dense_prompt_embeddings: (B, C, h, w) mask prompt embedding (or (1, C, h, w)).
        Returns:
            mask logits (B, M, 4h, 4w) and predicted IoU (B, M); M = 3 if multimask_output else 1.
        """
        masks, iou = self.predict_masks(
            image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings
        )
        wanted = self.output_indices(multimask_output)
        return masks[:, wanted.start : wanted.stop], iou[:, wanted.start : wanted.stop]

    def predict_masks(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """All four masks (B, 4, 4h, 4w) and IoU predictions (B, 4) (arguments as in
        ``forward``)."""
        batch = sparse_prompt_embeddings.shape[0]
        output_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)
        tokens = torch.cat(
            [output_tokens.unsqueeze(0).expand(batch, -1, -1), sparse_prompt_embeddings], dim=1
        )
        src = image_embeddings + dense_prompt_embeddings
        src = src.expand(batch, -1, -1, -1)
        _, channels, h, w = src.shape

        hs, src = self.transformer(src, image_pe, tokens)
        iou_token_out = hs[:, 0, :]
        mask_tokens_out = hs[:, 1 : 1 + self.num_mask_tokens, :]

        upscaled = self.output_upscaling(src.transpose(1, 2).reshape(batch, channels, h, w))
        hyper_in = torch.stack(
            [mlp(mask_tokens_out[:, i, :]) for i, mlp in enumerate(self.output_hypernetworks_mlps)],
            dim=1,
        )  # (B, 4, C/8): per mask, the weights of a linear map of the upscaled features
        _, c_up, h_up, w_up = upscaled.shape
        masks = (hyper_in @ upscaled.view(batch, c_up, h_up * w_up)).view(batch, -1, h_up, w_up)
        return masks, self.iou_prediction_head(iou_token_out)

    def output_indices(self, multimask_output: bool) -> range:
        """Which mask tokens answer: the three ambiguity outputs, or the single one."""
        return range(1, self.num_mask_tokens) if multimask_output else range(0, 1)
