"""SAM's prompt encoder: points and box corners become sparse tokens (random-Fourier positional
encoding plus a learned embedding per kind), a previous mask becomes a dense embedding.

This is the plain model, as the paper and Meta's release define it; training and inference
both run it (``engine.fast.decoder`` folds only the mask branch's last layer into the decoder's
projections).
"""

from __future__ import annotations

import math
from typing import cast

import torch
from torch import nn

from engine.layers import LayerNorm2d


class PositionEmbeddingRandom(nn.Module):
    """Positional encoding with a fixed random Gaussian projection of (x, y) in [0, 1]."""

    positional_encoding_gaussian_matrix: torch.Tensor

    def __init__(self, num_pos_feats: int = 128, scale: float = 1.0) -> None:
        super().__init__()
        self.register_buffer(
            "positional_encoding_gaussian_matrix", scale * torch.randn((2, num_pos_feats))
        )

    def _encode(self, coords: torch.Tensor) -> torch.Tensor:
        """(..., 2) coordinates in [0, 1] -> (..., 2 * num_pos_feats)."""
        coords = (2 * coords - 1) @ self.positional_encoding_gaussian_matrix
        coords = 2 * math.pi * coords
        return torch.cat([torch.sin(coords), torch.cos(coords)], dim=-1)

    def dense(self, size: tuple[int, int]) -> torch.Tensor:
        """Encoding of every cell centre of a (h, w) grid -> (C, h, w)."""
        h, w = size
        device = self.positional_encoding_gaussian_matrix.device
        dtype = self.positional_encoding_gaussian_matrix.dtype
        grid = torch.ones((h, w), device=device, dtype=dtype)
        y = (grid.cumsum(dim=0) - 0.5) / h
        x = (grid.cumsum(dim=1) - 0.5) / w
        return self._encode(torch.stack([x, y], dim=-1)).permute(2, 0, 1)

    def at(self, coords: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
        """(B, N, 2) pixel coordinates (x, y) in the model's input frame -> (B, N, C)."""
        normalised = coords.clone()
        normalised[..., 0] = normalised[..., 0] / image_size[1]
        normalised[..., 1] = normalised[..., 1] / image_size[0]
        return self._encode(normalised.to(self.positional_encoding_gaussian_matrix.dtype))


class PromptEncoder(nn.Module):
    """Encodes prompts for the mask decoder.

    Point labels: 1 foreground, 0 background, -1 padding ("not a point"). Embedding slots
    ``point_embeddings``: 0 background point, 1 foreground point, 2 box top-left, 3 box
    bottom-right (the checkpoint's order).
    """

    def __init__(
        self,
        embed_dim: int = 256,
        image_embedding_size: tuple[int, int] = (64, 64),
        input_image_size: tuple[int, int] = (1024, 1024),
        mask_in_chans: int = 16,
    ) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.input_image_size = input_image_size
        self.image_embedding_size = image_embedding_size
        self.pe_layer = PositionEmbeddingRandom(embed_dim // 2)
        self.point_embeddings = nn.ModuleList(nn.Embedding(1, embed_dim) for _ in range(4))
        self.not_a_point_embed = nn.Embedding(1, embed_dim)
        self.mask_input_size = (4 * image_embedding_size[0], 4 * image_embedding_size[1])
        self.mask_downscaling = nn.Sequential(
            nn.Conv2d(1, mask_in_chans // 4, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans // 4),
            nn.GELU(),
            nn.Conv2d(mask_in_chans // 4, mask_in_chans, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans),
            nn.GELU(),
            nn.Conv2d(mask_in_chans, embed_dim, kernel_size=1),
        )
        self.no_mask_embed = nn.Embedding(1, embed_dim)

    def _kind(self, slot: int) -> torch.Tensor:
        """(1, C) learned embedding of a prompt kind (see the class docstring for the slots)."""
        return cast(nn.Embedding, self.point_embeddings[slot]).weight

    def dense_pe(self) -> torch.Tensor:
        """(1, C, h, w) positional encoding of the image embedding grid."""
        return self.pe_layer.dense(self.image_embedding_size).unsqueeze(0)

    def embed_points(self, points: torch.Tensor, labels: torch.Tensor, pad: bool) -> torch.Tensor:
        """(B, N, 2) input-frame pixels + (B, N) labels -> (B, N (+1 if pad), C)."""
        points = points + 0.5  # centre of the pixel
        if pad:
            zeros = torch.zeros((points.shape[0], 1, 2), device=points.device, dtype=points.dtype)
            points = torch.cat([points, zeros], dim=1)
            minus = -torch.ones((labels.shape[0], 1), device=labels.device, dtype=labels.dtype)
            labels = torch.cat([labels, minus], dim=1)
        emb = self.pe_layer.at(points, self.input_image_size)
        padding = (labels == -1).unsqueeze(-1)
        emb = torch.where(padding, self.not_a_point_embed.weight, emb)
        emb = emb + (labels == 0).unsqueeze(-1) * self._kind(0)
        emb = emb + (labels == 1).unsqueeze(-1) * self._kind(1)
        return emb

    def embed_boxes(self, boxes: torch.Tensor) -> torch.Tensor:
        """(B, 4) XYXY input-frame pixels -> (B, 2, C) corner tokens."""
        corners = (boxes + 0.5).reshape(-1, 2, 2)
        emb = self.pe_layer.at(corners, self.input_image_size)
        corner_kind = torch.cat([self._kind(2), self._kind(3)])
        return emb + corner_kind

    def forward(
        self,
        points: tuple[torch.Tensor, torch.Tensor] | None,
        boxes: torch.Tensor | None,
        masks: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompt embeddings for B prompt sets.

        Args:
            points: (B, N, 2) input-frame pixel coordinates (x, y) and (B, N) labels, or None.
            boxes: (B, 4) XYXY input-frame pixels, or None.
            masks: (B, 1, 4h, 4w) mask logits, or None.
        Returns:
            sparse (B, N', C) point and box tokens, and dense (B, C, h, w): the mask's
            embedding, else the learned no-mask embedding at every cell.
        """
        if points is not None:
            batch = points[0].shape[0]
        elif boxes is not None:
            batch = boxes.shape[0]
        elif masks is not None:
            batch = masks.shape[0]
        else:
            batch = 1
        weight = self.no_mask_embed.weight
        tokens = [torch.empty((batch, 0, self.embed_dim), device=weight.device, dtype=weight.dtype)]
        if points is not None:
            tokens.append(self.embed_points(points[0], points[1], pad=boxes is None))
        if boxes is not None:
            tokens.append(self.embed_boxes(boxes))
        sparse = torch.cat(tokens, dim=1)
        if masks is not None:
            dense = self.mask_downscaling(masks)
        else:
            h, w = self.image_embedding_size
            dense = weight.reshape(1, -1, 1, 1).expand(batch, -1, h, w)
        return sparse, dense
