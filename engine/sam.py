"""The Segment Anything model: image encoder, prompt encoder and mask decoder (engine.image_encoder,
engine.prompt_encoder, engine.transformer, engine.mask_decoder), the paper's model as Meta's
release lays it out, parameter for parameter. Training runs these modules; inference goes
through ``engine.predictor``, which computes the same function with ``engine.fast``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine.image_encoder import ImageEncoderViT
from engine.mask_decoder import MaskDecoder
from engine.prompt_encoder import PromptEncoder

# SAM's normalisation of 0..255 RGB pixels.
PIXEL_MEAN = (123.675, 116.28, 103.53)
PIXEL_STD = (58.395, 57.12, 57.375)


class Sam(nn.Module):
    mask_threshold: float = 0.0
    pixel_mean: torch.Tensor
    pixel_std: torch.Tensor
    image_format: str = "RGB"

    def __init__(
        self,
        image_encoder: ImageEncoderViT,
        prompt_encoder: PromptEncoder,
        mask_decoder: MaskDecoder,
        model_type: str = "custom",
    ) -> None:
        super().__init__()
        self.image_encoder = image_encoder
        self.prompt_encoder = prompt_encoder
        self.mask_decoder = mask_decoder
        self.model_type = model_type
        # Not in the checkpoint (persistent=False), as in Meta's release.
        self.register_buffer("pixel_mean", torch.tensor(PIXEL_MEAN).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(PIXEL_STD).view(-1, 1, 1), False)

    @property
    def img_size(self) -> int:
        return self.image_encoder.img_size

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, h, w) float RGB 0..255, longest side already resized to img_size ->
        normalised and zero-padded at the bottom and right to (B, 3, img_size, img_size)."""
        x = (x - self.pixel_mean) / self.pixel_std
        h, w = x.shape[-2:]
        return F.pad(x, (0, self.img_size - w, 0, self.img_size - h))
