"""A stand-in predictor with known answers for the automatic pass's tests, and the drawn image
it segments: coloured rectangles on black, so each rectangle has exactly one right mask."""

import numpy as np
import torch

from engine.embedding import Embedding
from engine.predictor import GridPrediction

HEIGHT, WIDTH = 120, 160
RED = (slice(20, 50), slice(30, 80))  # rows, columns: 30 x 50 = 1500 pixels
GREEN = (slice(70, 110), slice(100, 150))  # 40 x 50 = 2000
BLUE = (slice(5, 15), slice(140, 155))  # 10 x 15 = 150
BACKGROUND_AREA = HEIGHT * WIDTH - 1500 - 2000 - 150  # 15550, 81% of the image


class ColourSegmenter:
    """Stand-in for SamPredictor with known answers. Masks per point: the point's colour
    region (predicted IoU 0.95, logits +-10 so stability 1), the same again (0.90: a duplicate
    for NMS), and the whole crop (0.50: below the IoU threshold) with logits 10 on the region
    and 0.5 elsewhere (stability = region area / crop area)."""

    def __init__(self) -> None:
        self.embed_calls = 0
        self.batch_sizes: list[int] = []

    def embed(self, image: np.ndarray) -> Embedding:
        self.embed_calls += 1
        pixels = torch.from_numpy(image.copy()).permute(2, 0, 1).float()
        size = (image.shape[0], image.shape[1])
        return Embedding(features=pixels, original_size=size, input_size=size)

    def decode_grid(self, embedding, points, labels, min_iou=None, multimask=True):
        assert multimask
        assert labels.tolist() == [[1]] * len(points)
        self.batch_sizes.append(len(points))
        pixels = embedding.features
        xy = points[:, 0, :].floor().long()
        colours = pixels[:, xy[:, 1], xy[:, 0]].T
        region = (pixels[None] == colours[:, :, None, None]).all(dim=1)
        region_logits = torch.where(region, 10.0, -10.0)
        logits = torch.stack([region_logits, region_logits, torch.where(region, 10.0, 0.5)], 1)
        iou = torch.tensor([[0.95, 0.90, 0.50]]).expand(len(points), 3)
        index = torch.arange(len(points))
        if min_iou is not None:  # as the real predictor: prompts with no mask above min_iou
            index = torch.nonzero((iou > min_iou).any(dim=1)).flatten()
        return GridPrediction(index, logits[index], iou[index])

    def decode_grid_chunks(self, embedding, points, labels, min_iou=None, multimask=True):
        yield self.decode_grid(embedding, points, labels, min_iou, multimask)


def drawn_image(hole: bool = False) -> np.ndarray:
    image = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
    image[RED] = (255, 0, 0)
    image[GREEN] = (0, 255, 0)
    image[BLUE] = (0, 0, 255)
    if hole:
        image[30:33, 40:43] = 0  # 9 background pixels inside red, away from every grid point
    return image
