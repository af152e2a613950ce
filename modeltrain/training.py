"""The training loop of a round (no Django): reads an exported round folder (modeltrain.data),
simulates annotation on its training masks (modeltrain.simulation) and updates the model.

Two modes:

* ``decoder``: the image encoder stays frozen; the prompt encoder and mask decoder learn from
  the embeddings exported with the round. Cheap (a CPU does it) and the embedding cache stays
  valid, since the encoder does not change.
* ``full``: every weight learns, from the pixels, with light augmentation (flips, colour and
  scale jitter). The GPU's job: each step runs the encoder forward and backward.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from itertools import islice
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from engine.sam import Sam
from engine.transforms import resized_shape
from modeltrain.data import ImageRecord, RoundData
from modeltrain.simulation import (
    Targets,
    background_targets,
    corrective_points,
    earlier_clicks,
    first_points,
    make_targets,
    noisy_boxes,
    perturbed_logits,
    prediction_loss,
    present,
)

MODES = ("decoder", "full")


@dataclass
class TrainConfig:
    """Everything a round's training depends on; stored with the model version.

    SAM's recipe, scaled down: ``iterations`` prompts per mask (SAM: 11), up to
    ``masks_per_image`` masks per image and step (SAM: 64), focal:dice 20:1, AdamW with warm-up
    and cosine decay to a tenth of ``lr``.
    """

    mode: str = "decoder"
    steps: int = 200
    lr: float = 1e-4
    weight_decay: float = 0.01
    warmup_steps: int = 10
    masks_per_image: int = 8
    iterations: int = 3
    box_probability: float = 0.5
    # Share of steps that start from a damaged ground-truth mask plus a corrective click
    # instead of a first prompt (simulation.perturbed_logits); 0 is SAM's recipe as published.
    refine_probability: float = 0.0
    # Share of point-prompted steps whose click lands on the background and asks for it: with
    # one object per image a model can ignore where the click is; this makes it look.
    background_probability: float = 0.0
    box_noise: float = 0.1
    box_noise_max: float = 20.0
    focal_weight: float = 20.0
    # The object's share of the focal loss. DETR's 0.25 (favouring the background) drives a
    # cold-start model to empty masks for hundreds of steps; 0.75 balances objects that cover
    # a quarter of the image.
    focal_alpha: float = 0.75
    dice_weight: float = 1.0
    iou_weight: float = 1.0
    grad_clip: float = 1.0
    augment: bool = True
    min_scale: float = 0.7
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        for name in ("steps", "masks_per_image", "iterations"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if not 0 < self.min_scale <= 1:
            raise ValueError(f"min_scale must be in (0, 1], got {self.min_scale}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """A config from plain data; unknown keys are a ValueError naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training option(s): {', '.join(unknown)}")
        return cls(**values)


@dataclass(frozen=True)
class Progress:
    step: int
    steps: int
    loss: float
    eta_seconds: float


@dataclass
class TrainResult:
    losses: list[float]
    seconds: float
    train_images: int
    train_masks: int


@dataclass(frozen=True)
class Sample:
    """One image's training input: encoder features (1, 256, 64, 64) (with grad in full mode)
    and the targets of the masks chosen this step."""

    features: torch.Tensor
    targets: Targets


def _resize_masks(masks: np.ndarray, size: tuple[int, int], device: str) -> torch.Tensor:
    tensor = torch.from_numpy(masks).to(device).float()[:, None]
    return F.interpolate(tensor, size=size, mode="bilinear", align_corners=False)[:, 0] > 0.5


def _augment(
    pixels: np.ndarray, masks: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
    """Horizontal flip; returns pixels, masks and a per-channel (gain, offset) colour jitter."""
    if rng.random() < 0.5:
        pixels, masks = pixels[:, ::-1], masks[:, :, ::-1]
    gain = torch.tensor(rng.uniform(0.75, 1.25, 3) * rng.uniform(0.8, 1.2), dtype=torch.float32)
    offset = torch.tensor(rng.uniform(-20, 20, 3) + rng.uniform(-20, 20), dtype=torch.float32)
    return np.ascontiguousarray(pixels), np.ascontiguousarray(masks), torch.stack([gain, offset])


def load_sample(
    model: Sam, record: ImageRecord, data: RoundData, config: TrainConfig, rng: np.random.Generator
) -> Sample | None:
    """Features and targets of up to ``masks_per_image`` of the record's masks; None when none
    of them survives at low resolution."""
    masks = record.load_masks()
    if len(masks) > config.masks_per_image:
        masks = masks[rng.choice(len(masks), config.masks_per_image, replace=False)]
    device, img_size = config.device, model.img_size
    if config.mode == "decoder":
        embedding = record.load_embedding(data.folder)
        features = embedding.features.to(device, torch.float32)[None]
        input_size = embedding.input_size
        resized = _resize_masks(masks, input_size, device)
    else:
        pixels = record.load_pixels()
        jitter = None
        if config.augment:
            pixels, masks, jitter = _augment(pixels, masks, rng)
        scale = rng.uniform(config.min_scale, 1.0) if config.augment else 1.0
        input_size = resized_shape(record.height, record.width, int(img_size * scale))
        image = torch.from_numpy(pixels).to(device).permute(2, 0, 1).float()[None]
        image = F.interpolate(image, size=input_size, mode="bilinear", antialias=True)
        if jitter is not None:
            image = (
                image * jitter[0].to(device)[:, None, None] + jitter[1].to(device)[:, None, None]
            )
        image = image.clamp(0, 255)
        features = model.image_encoder(model.preprocess(image))
        resized = _resize_masks(masks, input_size, device)
    targets = make_targets(resized, input_size, img_size)
    keep = present(targets)
    if not bool(keep.any()):
        return None
    targets = Targets(targets.low_res[keep], targets.valid, targets.boxes[keep])
    return Sample(features=features, targets=targets)


def simulate(model: Sam, sample: Sample, config: TrainConfig, gen: torch.Generator) -> torch.Tensor:
    """The interactive loop on one image's masks: the mean loss over ``iterations`` prompts."""
    targets = sample.targets
    dense_pe = model.prompt_encoder.dense_pe()
    use_box = bool(torch.rand((), generator=gen) < config.box_probability)
    refine = bool(torch.rand((), generator=gen) < config.refine_probability)
    if not (use_box or refine) and bool(
        torch.rand((), generator=gen) < config.background_probability
    ):
        targets = background_targets(targets)
    batch = targets.low_res.shape[0]
    boxes = points = labels = logits = None
    if refine:
        # Mid-interaction: the object's first click, some earlier clicks, a mask that is mostly
        # right, and the click on its mistakes that the loop below adds.
        use_box = False
        points, labels = earlier_clicks(targets, gen, int(torch.randint(1, 10, (), generator=gen)))
        logits = perturbed_logits(targets, gen)
    elif use_box:
        boxes = noisy_boxes(targets, gen, config.box_noise, config.box_noise_max, model.img_size)
    else:
        points, labels = first_points(targets, gen)
    total = torch.zeros((), device=sample.features.device)
    for iteration in range(config.iterations):
        if logits is not None:
            new_points, new_labels = corrective_points(logits, targets, gen)
            points = new_points if points is None else torch.cat([points, new_points], dim=1)
            labels = new_labels if labels is None else torch.cat([labels, new_labels], dim=1)
        # SAM asks for three masks only when one point alone leaves the object ambiguous.
        multimask = iteration == 0 and not use_box and not refine
        point_arg = (points, labels) if points is not None and labels is not None else None
        sparse, dense = model.prompt_encoder(point_arg, boxes, logits)
        low_res, iou_pred = model.mask_decoder(
            sample.features, dense_pe, sparse, dense, multimask_output=multimask
        )
        loss = prediction_loss(
            low_res,
            iou_pred,
            targets,
            config.focal_weight,
            config.dice_weight,
            config.iou_weight,
            config.focal_alpha,
        )
        total = total + loss.total
        logits = low_res[torch.arange(batch), loss.best][:, None].detach()
    return total / config.iterations


def _schedule(config: TrainConfig) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        done = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, done)))

    return factor


def train(
    model: Sam,
    data: RoundData,
    config: TrainConfig,
    on_progress: Callable[[Progress], None] | None = None,
) -> TrainResult:
    """Train ``model`` in place on ``data.train``; the held-out records are never read.

    ``on_progress`` is called after every step; an exception it raises (a cancelled round)
    stops training and propagates. Raises ValueError when there is nothing to train on."""
    usable = data.train.with_masks()  # read record by record: the round is never in memory
    if not usable:
        raise ValueError("the round has no training masks")
    if config.mode == "decoder":
        missing = list(islice((r.image_id for r in usable if r.embedding is None), 5))
        if missing:
            raise ValueError(f"decoder-only training needs embeddings; missing for {missing}")
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    gen = torch.Generator(device=config.device).manual_seed(config.seed)
    model.to(config.device).train()
    model.image_encoder.requires_grad_(config.mode == "full")
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(config))
    losses: list[float] = []
    started = time.monotonic()
    try:
        for step in range(config.steps):
            record = usable[int(rng.integers(len(usable)))]
            sample = load_sample(model, record, data, config, rng)
            if sample is not None:
                loss = simulate(model, sample, config, gen)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
                optimizer.step()
                losses.append(float(loss.detach()))
            scheduler.step()
            if on_progress is not None:
                elapsed = time.monotonic() - started
                eta = elapsed / (step + 1) * (config.steps - step - 1)
                recent = losses[-20:]
                mean = sum(recent) / len(recent) if recent else float("nan")
                on_progress(Progress(step + 1, config.steps, mean, eta))
    finally:
        model.requires_grad_(True)
        model.eval()
    return TrainResult(
        losses=losses,
        seconds=time.monotonic() - started,
        train_images=len(usable),
        train_masks=usable.masks,
    )
