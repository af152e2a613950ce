"""Our automatic pass against Meta's SamAutomaticMaskGenerator (the test-only oracle): the same
records, mask for mask, (1) with both models loaded with the same seeded weights, and (2) with
both generators driven by the colour segmenter, whose masks are localised enough for crops to
keep some (random weights give masks spread over every crop, which the crop-edge rule drops).

Two things the oracle needs are given to it here. OpenCV (for hole and island clean-up) is not
installed: a stand-in labels 8-connected components with scipy, numbered in raster order as
OpenCV numbers them. torchvision's CPU NMS orders equal scores by torch's unstable sort, an
order nothing specifies; ours keeps the input order among equals (every mask of one crop layer
ties in the cross-crop NMS), so the oracle gets a plain greedy NMS with that same rule.
"""

import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy import ndimage

from engine import SamPredictor, build_sam
from engine.automatic import AutomaticConfig, AutomaticMaskGenerator
from engine.registry import MODEL_CONFIGS
from tests.engine.colour_segmenter import ColourSegmenter
from tests.reference import random_state_dict, segment_anything

SEED = 7


def _connected_components_with_stats(mask: np.ndarray, connectivity: int):
    assert connectivity == 8
    labels, count = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    stats = np.zeros((count + 1, 5), dtype=np.int32)
    stats[:, -1] = np.bincount(labels.ravel(), minlength=count + 1)
    return count + 1, labels.astype(np.int32), stats, None


def _greedy_batched_nms(boxes, scores, idxs, iou_threshold):
    assert not idxs.any()  # every NMS of the recipe is single-category
    order = torch.argsort(scores, descending=True, stable=True).tolist()
    b = boxes.double()
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    kept: list[int] = []
    for i in order:
        wh = (torch.minimum(b[i, 2:], b[kept, 2:]) - torch.maximum(b[i, :2], b[kept, :2])).clamp(
            min=0
        )
        inter = wh[:, 0] * wh[:, 1]
        if not (inter / (area[i] + area[kept] - inter) > iou_threshold).any():
            kept.append(i)
    return torch.tensor(kept, dtype=torch.int64)


@pytest.fixture(scope="module")
def models():
    sa = segment_anything()
    from segment_anything.build_sam import _build_sam

    shape = MODEL_CONFIGS["vit_tiny"]  # Meta's builder with our tiny encoder's shape
    meta = _build_sam(
        shape.embed_dim, shape.depth, shape.num_heads, list(shape.global_attn_indexes), None
    ).eval()
    ours = build_sam("vit_tiny")
    state = random_state_dict(meta, SEED)
    meta.load_state_dict(state, strict=True)
    ours.load_state_dict(state, strict=True)
    return sa, meta, SamPredictor(ours)


@pytest.fixture
def oracle(models, monkeypatch):
    sa, meta, _ = models
    monkeypatch.setitem(
        sys.modules,
        "cv2",
        SimpleNamespace(connectedComponentsWithStats=_connected_components_with_stats),
    )
    monkeypatch.setattr(sa.automatic_mask_generator, "batched_nms", _greedy_batched_nms)

    def generate(image, predictor=None, **kwargs):
        generator = sa.SamAutomaticMaskGenerator(meta, output_mode="coco_rle", **kwargs)
        if predictor is not None:
            generator.predictor = predictor
        return generator.generate(image)

    return generate


class MetaPredictorAdapter:
    """The part of Meta's SamPredictor its generator uses, answering from a ColourSegmenter."""

    def __init__(self, segmenter: ColourSegmenter) -> None:
        self.segmenter = segmenter
        self.model = SimpleNamespace(mask_threshold=0.0)
        self.device = torch.device("cpu")
        self.transform = SimpleNamespace(apply_coords=lambda coords, size: coords)

    def set_image(self, image: np.ndarray) -> None:
        self.embedding = self.segmenter.embed(image)

    def reset_image(self) -> None:
        self.embedding = None

    def predict_torch(self, point_coords, point_labels, multimask_output, return_logits):
        assert return_logits
        prediction = self.segmenter.decode_grid(
            self.embedding, point_coords.float(), point_labels, multimask=multimask_output
        )
        return prediction.logits, prediction.iou, None


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    ys, xs = np.mgrid[0:96, 0:128]
    picture = np.full((96, 128, 3), 20, dtype=np.uint8)
    picture[20:60, 30:90] = (200, 50, 50)
    picture[(ys - 70) ** 2 + (xs - 100) ** 2 < 200] = (30, 200, 60)
    picture[::7, ::5] = 255  # texture, so masks have holes and islands to clean
    return picture


def assert_same_records(ours, reference):
    assert len(ours) == len(reference) > 0
    for got, want in zip(ours, reference, strict=True):
        assert got.segmentation == want["segmentation"]
        assert got.area == want["area"]
        assert got.bbox == [float(v) for v in want["bbox"]]
        assert got.crop_box == [float(v) for v in want["crop_box"]]
        assert got.point_coords == want["point_coords"]
        assert got.predicted_iou == pytest.approx(want["predicted_iou"], abs=1e-5)
        assert got.stability_score == pytest.approx(want["stability_score"], abs=1e-6)


# Random weights give logits within about +-1 and predicted IoUs in (-1, 1): an offset of 0.1
# and these thresholds keep part of the masks, so every filter has something to drop.
SETTINGS = {
    "points_per_side": 4,
    "pred_iou_thresh": 0.1,
    "stability_score_thresh": 0.3,
    "stability_score_offset": 0.1,
}


@pytest.fixture(scope="module")
def embedding(models, image):
    return models[2].embed(image)


def test_whole_image_pass_matches_the_reference(models, oracle, image, embedding):
    generator = AutomaticMaskGenerator(models[2], AutomaticConfig(**SETTINGS))
    assert_same_records(generator.generate(image, embedding), oracle(image, **SETTINGS))


def test_clean_up_matches_the_reference(models, oracle, image, embedding):
    settings = {**SETTINGS, "min_mask_region_area": 25}
    ours = AutomaticMaskGenerator(models[2], AutomaticConfig(**settings)).generate(image, embedding)
    assert_same_records(ours, oracle(image, **settings))
    raw = AutomaticMaskGenerator(models[2], AutomaticConfig(**SETTINGS)).generate(image, embedding)
    assert [m.area for m in ours] != [m.area for m in raw]  # the clean-up had work to do


def drawn_for_crops() -> np.ndarray:
    """240 x 320: 2x2 crops of 201 x 161 at x 0/120, y 0/80 (overlap 81)."""
    image = np.zeros((240, 320, 3), dtype=np.uint8)
    image[105:136, 145:176] = (255, 255, 0)  # inside all four crops, 20+ px from inner sides
    image[30:60, 30:90] = (255, 0, 0)  # inside the top-left crop only
    image[40:45, 50:55] = 0  # a 25-pixel hole in red
    image[20:200, 230:260] = (0, 255, 0)  # cut by the right crops' inner sides
    image[225:228, 20:23] = (0, 255, 0)  # a 9-pixel island of green
    image[180:230, 40:110] = (0, 0, 255)
    image[200:203, 60:63] = (0, 255, 255)  # a 9-pixel hole in blue, a 9-pixel mask of its own
    return image


@pytest.mark.parametrize("layers, min_area", [(1, 0), (2, 30)])
def test_crops_nms_and_clean_up_match_the_reference_on_known_masks(oracle, layers, min_area):
    image = drawn_for_crops()
    settings = {
        "points_per_side": 16,
        "crop_n_layers": layers,
        "crop_n_points_downscale_factor": 2,
        "min_mask_region_area": min_area,
    }
    reference = oracle(image, predictor=MetaPredictorAdapter(ColourSegmenter()), **settings)
    generator = AutomaticMaskGenerator(ColourSegmenter(), AutomaticConfig(**settings))
    ours = generator.generate(image)
    assert_same_records(ours, reference)
    assert len({tuple(m.crop_box) for m in ours}) >= 3  # masks from the image and from crops
