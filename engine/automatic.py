"""The automatic mask generator of the Segment Anything paper's fully automatic stage: prompt the
model with a regular grid of points on the image and on zoomed-in crops, keep the confident and
stable masks, remove duplicates with box NMS, and clean small holes and islands.

Configuration lives in ``AutomaticConfig`` (defaults: those of Meta's reference generator;
presets for the paper's recipe and for stage 2's pre-fill). Output masks are COCO RLE with the
per-annotation fields of SA-1B.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from engine.automatic_config import AutomaticConfig
from engine.crops import (
    Crop,
    boxes_near_crop_edge,
    crop_boxes,
    layer_grids,
    uncrop_boxes,
    uncrop_points,
)
from engine.embedding import Embedding
from engine.maskops import (
    decode_rles,
    encode_rles,
    mask_boxes,
    nms,
    remove_small_regions,
    stability_scores,
)
from engine.predictor import GridPrediction, SamPredictor

__all__ = ["AutomaticConfig", "AutomaticMask", "AutomaticMaskGenerator", "Progress"]

Progress = Callable[[int, int], None]
"""Called after each decoder batch with (batches done, batches in all)."""

# Hole/island clean-up labels masks in chunks of about this many pixels (int32 labels: 128 MiB).
_CLEANUP_PIXELS_PER_CHUNK = 1 << 25


@dataclass(frozen=True)
class AutomaticMask:
    """One generated mask with the per-annotation fields of SA-1B.

    Attributes:
        segmentation: COCO RLE ``{"size": [height, width], "counts": str}`` of the whole image.
        bbox: [x, y, w, h] in image pixels, with x + w the last column and y + h the last row
            holding a pixel (the inclusive extent, as SA-1B and the reference write it).
        area: number of pixels in the mask.
        predicted_iou: the model's estimate of the mask's IoU with the object.
        stability_score: IoU of the mask thresholded at -offset and +offset of its logits.
        point_coords: [[x, y]], the grid point that prompted the mask, in image pixels.
        crop_box: [x, y, w, h] of the image window the mask was found in, in image pixels.
    """

    segmentation: dict[str, Any]
    bbox: list[float]
    area: int
    predicted_iou: float
    stability_score: float
    point_coords: list[list[float]]
    crop_box: list[float]

    def to_dict(self) -> dict[str, Any]:
        """The SA-1B annotation record (without its ``id``), JSON-serialisable."""
        return {
            "segmentation": dict(self.segmentation),
            "bbox": list(self.bbox),
            "area": self.area,
            "predicted_iou": self.predicted_iou,
            "stability_score": self.stability_score,
            "point_coords": [list(p) for p in self.point_coords],
            "crop_box": list(self.crop_box),
        }


@dataclass
class _Candidates:
    """Masks kept so far, as parallel columns on the CPU (row i is one mask).

    rles: COCO RLE of the whole image; boxes: int64 (N, 4) inclusive XYXY image pixels;
    areas: int64 (N,); iou, stability: float32 (N,); points: float64 (N, 2) image pixels;
    crop_boxes: int64 (N, 4) half-open XYXY image pixels.
    """

    rles: list[dict] = field(default_factory=list)
    boxes: torch.Tensor = field(default_factory=lambda: torch.zeros((0, 4), dtype=torch.int64))
    areas: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.int64))
    iou: torch.Tensor = field(default_factory=lambda: torch.zeros(0))
    stability: torch.Tensor = field(default_factory=lambda: torch.zeros(0))
    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    crop_boxes: torch.Tensor = field(default_factory=lambda: torch.zeros((0, 4), dtype=torch.int64))

    def __len__(self) -> int:
        return len(self.rles)

    def take(self, index: torch.Tensor) -> _Candidates:
        """The rows at ``index`` (int64 (K,)), in that order."""
        rows = index.cpu()
        return _Candidates(
            rles=[self.rles[i] for i in rows.tolist()],
            boxes=self.boxes[rows],
            areas=self.areas[rows],
            iou=self.iou[rows],
            stability=self.stability[rows],
            points=self.points[rows.numpy()],
            crop_boxes=self.crop_boxes[rows],
        )

    @staticmethod
    def cat(parts: list[_Candidates]) -> _Candidates:
        if not parts:
            return _Candidates()
        return _Candidates(
            rles=[rle for part in parts for rle in part.rles],
            boxes=torch.cat([p.boxes for p in parts]),
            areas=torch.cat([p.areas for p in parts]),
            iou=torch.cat([p.iou for p in parts]),
            stability=torch.cat([p.stability for p in parts]),
            points=np.concatenate([p.points for p in parts]),
            crop_boxes=torch.cat([p.crop_boxes for p in parts]),
        )


class AutomaticMaskGenerator:
    """Segments everything in an image by prompting ``predictor`` with grids of points."""

    def __init__(self, predictor: SamPredictor, config: AutomaticConfig | None = None) -> None:
        self.predictor = predictor
        self.config = config if config is not None else AutomaticConfig()

    @torch.inference_mode()
    def generate(
        self,
        image: np.ndarray,
        embedding: Embedding | None = None,
        progress: Progress | None = None,
    ) -> list[AutomaticMask]:
        """All the masks the recipe keeps for one image.

        Args:
            image: uint8 (H, W, 3), RGB.
            embedding: this image's embedding from ``predictor.embed`` (e.g. the cached one),
                used for the whole-image crop instead of running the encoder again.
            progress: called with (batches done, batches in all) after each decoder batch.
        Returns:
            The masks; with crops or clean-up, in the order of the last NMS that ran.
        Raises:
            ValueError: not a uint8 (H, W, 3) image, or an embedding of another size.
        """
        if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3):
            raise ValueError("image must be a uint8 numpy array of shape (H, W, 3)")
        height, width, channels = image.shape
        if channels != 3 or height == 0 or width == 0:
            raise ValueError(f"image must be (H, W, 3) with H, W >= 1, got {image.shape}")
        if embedding is not None and tuple(embedding.original_size) != (height, width):
            raise ValueError(
                f"embedding is of a {embedding.original_size} image, not {(height, width)}"
            )
        cfg = self.config
        crops = crop_boxes(height, width, cfg.crop_n_layers, cfg.crop_overlap_ratio)
        grids = layer_grids(
            cfg.points_per_side, cfg.crop_n_layers, cfg.crop_n_points_downscale_factor
        )
        total = sum(math.ceil(len(grids[c.layer]) / cfg.points_per_batch) for c in crops)
        counter = _Counter(total, progress)

        parts = []
        for crop in crops:
            crop_embedding = embedding if crop.layer == 0 else None
            parts.append(
                self._process_crop(image, crop, grids[crop.layer], crop_embedding, counter)
            )
        found = _Candidates.cat(parts)

        if len(crops) > 1 and len(found):
            # As in the reference: across crops, the mask from the smaller (more zoomed-in)
            # crop wins, since it was segmented at a higher resolution.
            crop_area = (found.crop_boxes[:, 2] - found.crop_boxes[:, 0]) * (
                found.crop_boxes[:, 3] - found.crop_boxes[:, 1]
            )
            found = found.take(nms(found.boxes, 1.0 / crop_area.float(), cfg.crop_nms_thresh))
        if cfg.min_mask_region_area > 0 and len(found):
            found = self._clean_small_regions(found, height, width)
        if cfg.max_mask_region_area_ratio is not None and len(found):
            small_enough = found.areas < cfg.max_mask_region_area_ratio * height * width
            found = found.take(torch.nonzero(small_enough).flatten())
        return _to_masks(found)

    def _process_crop(
        self,
        image: np.ndarray,
        crop: Crop,
        grid: np.ndarray,
        embedding: Embedding | None,
        counter: _Counter,
    ) -> _Candidates:
        """Masks from one crop's grid, filtered and de-duplicated inside the crop, in image
        coordinates."""
        x0, y0, x1, y1 = crop.box
        if embedding is None:
            embedding = self.predictor.embed(np.ascontiguousarray(image[y0:y1, x0:x1]))
        points = grid * np.array([crop.width, crop.height], dtype=np.float64)
        parts = []
        for start in range(0, len(points), self.config.points_per_batch):
            batch = points[start : start + self.config.points_per_batch]
            for prediction in self.predictor.decode_grid_chunks(
                embedding,
                torch.as_tensor(batch, dtype=torch.float32)[:, None, :],
                torch.ones((len(batch), 1), dtype=torch.int64),
                min_iou=self.config.pred_iou_thresh if self.config.pred_iou_thresh > 0 else None,
                multimask=True,
            ):
                parts.append(self._process_batch(prediction, batch, crop, image.shape[:2]))
                del prediction
            counter.step()
        found = _Candidates.cat(parts)
        found = found.take(nms(found.boxes, found.iou, self.config.box_nms_thresh))
        found.points = uncrop_points(found.points, crop.box)
        return found

    def _process_batch(
        self,
        prediction: GridPrediction,
        points: np.ndarray,
        crop: Crop,
        image_size: tuple[int, int],
    ) -> _Candidates:
        """Filter one decoder batch (logits (K, M, h, w) at the crop's size, of the prompts
        ``prediction.prompt_index`` of the batch) and encode the survivors; points (B, 2)
        float64 stay in the crop's frame."""
        cfg = self.config
        height, width = image_size
        logits = prediction.logits.flatten(0, 1)
        iou = prediction.iou.flatten(0, 1).float()
        multimask = prediction.logits.shape[1]
        rows = torch.arange(len(iou), device=iou.device)
        if cfg.pred_iou_thresh > 0:
            rows = rows[iou[rows] > cfg.pred_iou_thresh]
        logits = logits[rows]
        stability = stability_scores(logits, cfg.stability_score_offset)
        if cfg.stability_score_thresh > 0:
            stable = stability >= cfg.stability_score_thresh
            rows, logits, stability = rows[stable], logits[stable], stability[stable]
        masks = logits > 0
        del logits
        boxes = uncrop_boxes(mask_boxes(masks), crop.box)
        areas = masks.sum(dim=(1, 2), dtype=torch.int64)
        keep = ~boxes_near_crop_edge(
            boxes, crop.box, (0, 0, width, height), cfg.crop_edge_tolerance
        )
        if cfg.max_mask_region_area_ratio is not None:
            keep &= areas < cfg.max_mask_region_area_ratio * height * width
        rows, masks = rows[keep].cpu(), masks[keep].cpu()
        return _Candidates(
            rles=encode_rles(masks.numpy(), height, width, offset=crop.box[:2]),
            boxes=boxes[keep].cpu(),
            areas=areas[keep].cpu(),
            iou=iou[rows.to(iou.device)].cpu(),
            stability=stability[keep].float().cpu(),
            points=points[prediction.prompt_index[rows // multimask].numpy()],
            crop_boxes=torch.tensor([crop.box], dtype=torch.int64).expand(len(rows), 4).clone(),
        )

    def _clean_small_regions(self, found: _Candidates, height: int, width: int) -> _Candidates:
        """Fill holes and drop islands under ``min_mask_region_area``; then NMS once more with
        untouched masks first, so a cleaned copy does not replace a mask that needed nothing."""
        cfg = self.config
        chunk = max(1, _CLEANUP_PIXELS_PER_CHUNK // (height * width))
        rles = list(found.rles)
        boxes, areas = found.boxes.clone(), found.areas.clone()
        unchanged = torch.ones(len(found), dtype=torch.bool)
        for start in range(0, len(found), chunk):
            stop = min(start + chunk, len(found))
            cleaned, changed = remove_small_regions(
                decode_rles(rles[start:stop]), cfg.min_mask_region_area
            )
            where = np.flatnonzero(changed)
            if where.size == 0:
                continue
            new_masks = torch.from_numpy(cleaned[where])
            index = torch.from_numpy(where + start)
            boxes[index] = mask_boxes(new_masks)
            areas[index] = new_masks.sum(dim=(1, 2), dtype=torch.int64)
            unchanged[index] = False
            for i, rle in zip(
                index.tolist(), encode_rles(cleaned[where], height, width), strict=True
            ):
                rles[i] = rle
        found = _Candidates(
            rles, boxes, areas, found.iou, found.stability, found.points, found.crop_boxes
        )
        threshold = max(cfg.box_nms_thresh, cfg.crop_nms_thresh)
        return found.take(nms(found.boxes, unchanged.float(), threshold))


class _Counter:
    def __init__(self, total: int, progress: Progress | None) -> None:
        self.done, self.total, self.progress = 0, total, progress

    def step(self) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total)


def _to_masks(found: _Candidates) -> list[AutomaticMask]:
    """Public records from the candidate columns (one ``tolist`` per column)."""
    boxes = found.boxes.to(torch.float64)
    bboxes = torch.cat([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], dim=1).tolist()
    crops = found.crop_boxes.to(torch.float64)
    crop_xywh = torch.cat([crops[:, :2], crops[:, 2:] - crops[:, :2]], dim=1).tolist()
    return [
        AutomaticMask(
            segmentation=rle,
            bbox=bbox,
            area=area,
            predicted_iou=iou,
            stability_score=stability,
            point_coords=[point],
            crop_box=crop,
        )
        for rle, bbox, area, iou, stability, point, crop in zip(
            found.rles,
            bboxes,
            found.areas.tolist(),
            found.iou.tolist(),
            found.stability.tolist(),
            found.points.tolist(),
            crop_xywh,
            strict=True,
        )
    ]
