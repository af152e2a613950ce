"""Every number of the automatic pass in one frozen dataclass, with presets for the paper's
fully automatic recipe and for stage 2's pre-fill."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AutomaticConfig:
    """Settings of ``AutomaticMaskGenerator``. The defaults are those of Meta's reference
    generator (``SamAutomaticMaskGenerator(model)``), so the two can be compared as they are;
    use ``paper()`` or ``prefill()`` in the product.

    Attributes:
        points_per_side: the whole image is prompted with a points_per_side^2 grid of points at
            cell centres (one foreground point per prompt, three masks per point).
        points_per_batch: points decoded together; bounds memory to about
            points_per_batch * 3 * H * W float32 logits at a time.
        pred_iou_thresh: keep masks whose predicted IoU is above this (0 keeps all).
        stability_score_thresh: keep masks whose stability score is at least this (0 keeps all).
        stability_score_offset: the logit shift of the stability score (mask threshold 0).
        box_nms_thresh: box IoU above which a mask with lower predicted IoU is dropped as a
            duplicate inside one crop.
        crop_n_layers: 0 = whole image only; 1 adds a 2x2 grid of crops; 2 also adds 4x4.
        crop_nms_thresh: box IoU above which duplicates across crops are dropped, keeping the
            mask from the smaller crop.
        crop_overlap_ratio: overlap of neighbouring crops of layer 1, as a fraction of the
            image's short side (halved at each further layer).
        crop_n_points_downscale_factor: crops of layer i get points_per_side / factor^i points
            per side.
        min_mask_region_area: fill holes and remove islands smaller than this many pixels
            (0 = no clean-up).
        max_mask_region_area_ratio: drop masks covering at least this fraction of the image
            (None = keep them, as the reference does).
        crop_edge_tolerance: a mask whose box comes within this many pixels of a crop side that
            is not an image side is dropped as probably cut by the crop.
    """

    points_per_side: int = 32
    points_per_batch: int = 64
    pred_iou_thresh: float = 0.88
    stability_score_thresh: float = 0.95
    stability_score_offset: float = 1.0
    box_nms_thresh: float = 0.7
    crop_n_layers: int = 0
    crop_nms_thresh: float = 0.7
    crop_overlap_ratio: float = 512 / 1500
    crop_n_points_downscale_factor: int = 1
    min_mask_region_area: int = 0
    max_mask_region_area_ratio: float | None = None
    crop_edge_tolerance: float = 20.0

    def __post_init__(self) -> None:
        if self.points_per_side < 1 or self.points_per_batch < 1:
            raise ValueError("points_per_side and points_per_batch must be >= 1")
        if self.crop_n_layers < 0 or self.crop_n_points_downscale_factor < 1:
            raise ValueError("crop_n_layers must be >= 0 and the downscale factor >= 1")
        if self.points_per_side < self.crop_n_points_downscale_factor**self.crop_n_layers:
            raise ValueError("the deepest crop layer would get no points: lower crop_n_layers")
        if not 0 <= self.crop_overlap_ratio < 1:
            raise ValueError("crop_overlap_ratio must be in [0, 1)")
        for name in ("stability_score_thresh", "box_nms_thresh", "crop_nms_thresh"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1]")
        if self.stability_score_offset < 0 or self.crop_edge_tolerance < 0:
            raise ValueError("stability_score_offset and crop_edge_tolerance must be >= 0")
        if self.min_mask_region_area < 0:
            raise ValueError("min_mask_region_area must be >= 0")
        ratio = self.max_mask_region_area_ratio
        if ratio is not None and not 0 < ratio <= 1:
            raise ValueError("max_mask_region_area_ratio must be in (0, 1] or None")

    @classmethod
    def paper(cls) -> AutomaticConfig:
        """The SA-1B recipe (paper, section 4 and appendix B): a 32x32 grid on the image plus
        2x2 and 4x4 overlapping crops with 16x16 and 8x8 grids, predicted IoU > 0.88,
        stability >= 0.95, NMS 0.7, holes and islands under 100 pixels cleaned, and masks
        covering 95% of the image or more dropped."""
        return cls(
            crop_n_layers=2,
            crop_n_points_downscale_factor=2,
            min_mask_region_area=100,
            max_mask_region_area_ratio=0.95,
        )

    @classmethod
    def prefill(cls) -> AutomaticConfig:
        """Stage 2's pre-fill: only masks confident enough that annotators need not check them.

        In stage 2 the model fills in the salient objects and people annotate what is missing;
        a wrong pre-filled mask costs them more (find it, delete it, redraw) than a missing
        one, so precision matters more than recall: predicted IoU > 0.94 and stability >= 0.97
        instead of 0.88 / 0.95. No zoomed crops: they mostly add small, less salient objects,
        which are exactly what stage 2 asks people to add, and they cost 20 more encoder runs.
        """
        return cls(
            pred_iou_thresh=0.94,
            stability_score_thresh=0.97,
            crop_n_layers=0,
            min_mask_region_area=100,
            max_mask_region_area_ratio=0.95,
        )
