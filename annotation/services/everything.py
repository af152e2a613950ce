""" "Everything" in the annotation tool: the automatic mask generator run now on one image, with a
modest grid and no zoomed crops so that it answers in seconds, its masks sent back as proposals.

Nothing is stored: the annotator takes the proposals they want, which are then saved through
POST /api/masks/ as their own model-assisted masks (with the grid point as the prompt). Whole
datasets are segmented by automatic passes (annotation.services.automatic) in gpu workers.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings

from annotation.models import EmbeddingStatus, Image
from annotation.services.automatic_config import config_from_json, resolve_config
from annotation.services.embeddings import get_or_compute_embedding
from annotation.services.errors import EmbeddingUnavailable, InvalidInput
from annotation.services.storage import image_path
from engine import AutomaticMaskGenerator
from engine import rle as rle_codec
from engine.images import load_image
from registry.active import get_active_version
from registry.predictors import describe_version, get_predictor

DEFAULT_POINTS_PER_SIDE = 16
# A request holds a web thread: 32x32 points (3072 candidate masks) is the most it may ask for.
MAX_POINTS_PER_SIDE = 32


def segment_everything(
    image: Image,
    *,
    points_per_side: int = DEFAULT_POINTS_PER_SIDE,
    pred_iou_thresh: float | None = None,
    stability_score_thresh: float | None = None,
) -> dict[str, Any]:
    """Every mask the automatic recipe keeps on ``image``, computed now.

    The recipe is the paper's (predicted IoU > 0.88, stability >= 0.95, NMS, holes and islands
    under 100 pixels cleaned) on the whole image only, with a ``points_per_side`` grid; the
    thresholds can be lowered, e.g. for an untrained model whose masks are never confident.

    Returns:
        {"image", "masks": [{"rle", "bbox" (XYWH), "area", "predicted_iou", "stability_score",
         "point_coords" [[x, y]]}], "config": every AutomaticConfig field used, "model",
         "seconds": time the generator took}.
    Raises:
        InvalidInput: a grid or threshold out of range.
        EmbeddingUnavailable: the image's embedding failed or cannot be computed.
    """
    if not 1 <= points_per_side <= MAX_POINTS_PER_SIDE:
        raise InvalidInput(
            f"points_per_side must be between 1 and {MAX_POINTS_PER_SIDE}, got {points_per_side}"
        )
    overrides: dict[str, Any] = {"points_per_side": points_per_side, "crop_n_layers": 0}
    if pred_iou_thresh is not None:
        overrides["pred_iou_thresh"] = pred_iou_thresh
    if stability_score_thresh is not None:
        overrides["stability_score_thresh"] = stability_score_thresh
    config = resolve_config("automatic", overrides)
    version = get_active_version()
    if image.embedding_status == EmbeddingStatus.FAILED and (
        image.encoder_key == version.embedding_key
    ):
        raise EmbeddingUnavailable(
            f"the embedding of image {image.pk} failed ({image.embedding_error}); a dataset "
            f"admin can queue it again with POST /api/images/{image.pk}/embed/"
        )
    embedding, _ = get_or_compute_embedding(image, version)
    try:
        pixels = load_image(
            image_path(image),
            max_pixels=max(settings.IMPORT_MAX_PIXELS, image.width * image.height),
        ).array
    except (OSError, ValueError) as exc:
        raise EmbeddingUnavailable(f"the file of image {image.pk} cannot be read: {exc}") from exc
    generator = AutomaticMaskGenerator(get_predictor(version.pk), config_from_json(config))
    start = time.perf_counter()
    found = generator.generate(pixels, embedding=embedding)
    seconds = time.perf_counter() - start
    masks = [
        {
            "rle": mask.segmentation,
            # The RLE's tight box, as every stored mask has (the generator's is Meta's,
            # one pixel short in width and height).
            "bbox": rle_codec.bbox_xywh(mask.segmentation),
            "area": mask.area,
            "predicted_iou": round(min(max(mask.predicted_iou, 0.0), 1.0), 4),
            "stability_score": round(mask.stability_score, 4),
            "point_coords": mask.point_coords,
        }
        for mask in found
        if mask.area > 0
    ]
    return {
        "image": image.pk,
        "masks": masks,
        "config": config,
        "model": describe_version(version),
        "seconds": round(seconds, 3),
    }
