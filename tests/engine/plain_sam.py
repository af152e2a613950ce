"""Our plain SAM (engine.image_encoder, engine.prompt_encoder, engine.mask_decoder: the model
training runs), driven the way the predictor drives the fast path: the same resizing, the same
coordinate frames and the same upscaling to the original image, so their outputs compare."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from engine.embedding import Embedding
from engine.sam import Sam
from engine.transforms import resize_image, scale_coords, upscale_logits


@dataclass(frozen=True)
class PlainOutput:
    """logits (B, M, H, W) at the original size, iou (B, M), low_res (B, M, 256, 256)."""

    logits: torch.Tensor
    iou: torch.Tensor
    low_res: torch.Tensor


@torch.no_grad()
def plain_embed(model: Sam, image: np.ndarray) -> Embedding:
    """``SamPredictor.embed`` with the plain encoder; image uint8 (H, W, 3) RGB."""
    resized = resize_image(image, model.img_size)
    pixels = torch.from_numpy(np.ascontiguousarray(resized)).permute(2, 0, 1).float()[None]
    features = model.image_encoder(model.preprocess(pixels))[0]
    return Embedding(
        features=features,
        original_size=(image.shape[0], image.shape[1]),
        input_size=(resized.shape[0], resized.shape[1]),
    )


@torch.no_grad()
def plain_decode(
    model: Sam,
    embedding: Embedding,
    points: torch.Tensor | None = None,
    labels: torch.Tensor | None = None,
    boxes: torch.Tensor | None = None,
    mask_logits: torch.Tensor | None = None,
    multimask: bool = True,
) -> PlainOutput:
    """``SamPredictor.decode_batch`` with the plain prompt encoder and decoder: points float
    (B, N, 2) and labels (B, N), boxes (B, 4) XYXY, all in original-image pixels;
    mask_logits (B, 1, 256, 256)."""
    original, input_size = embedding.original_size, embedding.input_size
    point_arg = box_arg = None
    if points is not None and labels is not None:
        point_arg = (scale_coords(points.float(), original, input_size), labels)
    if boxes is not None:
        corners = scale_coords(boxes.float().reshape(-1, 2, 2), original, input_size)
        box_arg = corners.reshape(-1, 4)
    sparse, dense = model.prompt_encoder(point_arg, box_arg, mask_logits)
    low_res, iou = model.mask_decoder(
        embedding.features[None], model.prompt_encoder.dense_pe(), sparse, dense, multimask
    )
    logits = upscale_logits(low_res, input_size, original, model.img_size)
    return PlainOutput(logits=logits, iou=iou, low_res=low_res)
