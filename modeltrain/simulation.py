"""Simulated annotation for training, as the SAM paper trains (its appendix A): a first prompt
(a point drawn uniformly inside the mask, or its box with noise), then corrective points drawn
uniformly from the error region of the previous prediction (positive on a missed pixel,
negative on a wrong one), with the previous low-resolution logits fed back as a mask prompt.
Plus the losses: focal + dice (20:1) on the best of the three masks, MSE on the IoU head.

Everything works in the padded 1024x1024 input frame for prompts and in the 256x256 low-res
frame for targets and losses (one low-res cell = 4x4 input pixels). Pure torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

LOW_RES = 256
CELL = 4  # input pixels per low-res cell (1024 / 256)


@dataclass(frozen=True)
class Targets:
    """Ground truth of B masks on one image, ready for the loss.

    Attributes:
        low_res: float (B, 1, 256, 256), 1 inside the mask (the mask average-pooled to the low-res
            frame, thresholded at one half).
        valid: float (1, 1, 256, 256), 1 on cells of the image, 0 on the padding.
        boxes: float (B, 4) inclusive XYXY of each mask in input-frame pixels.
    """

    low_res: torch.Tensor
    valid: torch.Tensor
    boxes: torch.Tensor


def make_targets(masks: torch.Tensor, input_size: tuple[int, int], img_size: int = 1024) -> Targets:
    """``masks`` bool/float (B, h, w) already resized to the input frame's unpadded ``input_size``
    (h, w). Masks that vanish at low resolution keep an all-zero target; callers drop them
    with ``present``."""
    h, w = input_size
    full = F.pad(masks.float(), (0, img_size - w, 0, img_size - h))[:, None]
    low = (F.avg_pool2d(full, CELL) > 0.5).float()
    valid = torch.zeros((1, 1, LOW_RES, LOW_RES), device=masks.device)
    valid[..., : -(-h // CELL), : -(-w // CELL)] = 1.0
    rows, cols = masks.any(dim=2), masks.any(dim=1)
    ys = torch.arange(h, device=masks.device)
    xs = torch.arange(w, device=masks.device)
    boxes = torch.stack(
        [
            torch.where(cols, xs, w).amin(dim=1),
            torch.where(rows, ys, h).amin(dim=1),
            torch.where(cols, xs, -1).amax(dim=1),
            torch.where(rows, ys, -1).amax(dim=1),
        ],
        dim=1,
    ).float()
    return Targets(low_res=low, valid=valid, boxes=boxes)


def present(targets: Targets) -> torch.Tensor:
    """bool (B,): masks with at least one low-res cell (only those can be prompted)."""
    return targets.low_res.flatten(1).sum(dim=1) > 0


def background_targets(targets: Targets) -> Targets:
    """The image's background as one target: the valid cells outside every mask (what a click
    on the background asks for), with the whole image as its box. Unchanged when the masks
    leave no background."""
    rest = targets.valid * (1 - targets.low_res.amax(dim=0, keepdim=True))
    if not bool(rest.any()):
        return targets
    rows, cols = rest[0, 0].any(dim=1), rest[0, 0].any(dim=0)
    ys, xs = rows.nonzero()[:, 0], cols.nonzero()[:, 0]
    box = torch.stack([xs.min(), ys.min(), xs.max(), ys.max()]).float() * CELL
    return Targets(low_res=rest, valid=targets.valid, boxes=box[None] + torch.tensor([0, 0, 3, 3]))


def sample_cells(region: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One cell drawn uniformly from each of B regions (float (B, 1, 256, 256), each non-empty)
    -> input-frame (x, y) float (B, 2), jittered inside the cell."""
    flat = region.flatten(1)
    index = torch.multinomial(flat, 1, generator=generator)[:, 0]
    row = torch.div(index, LOW_RES, rounding_mode="floor")
    col = index % LOW_RES
    jitter = torch.rand((flat.shape[0], 2), generator=generator, device=region.device) - 0.5
    centre = torch.stack([col, row], dim=1).float() * CELL + (CELL - 1) / 2
    return centre + jitter * (CELL - 1)


def first_points(targets: Targets, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A positive point inside each mask: coords (B, 1, 2), labels (B, 1)."""
    coords = sample_cells(targets.low_res, generator)
    labels = torch.ones((coords.shape[0], 1), dtype=torch.long, device=coords.device)
    return coords[:, None], labels


def earlier_clicks(
    targets: Targets, generator: torch.Generator, count: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The clicks of an interaction under way: a positive first click inside each mask, then
    ``count - 1`` more, each inside (positive) or outside (negative) the mask at random.
    Returns coords (B, count, 2), labels (B, count)."""
    coords, labels = first_points(targets, generator)
    inside = targets.low_res
    outside = (1 - inside) * targets.valid
    for _ in range(count - 1):
        positive = torch.rand(inside.shape[0], generator=generator, device=inside.device) < 0.5
        has_outside = outside.flatten(1).sum(dim=1) > 0
        positive = positive | ~has_outside
        region = torch.where(positive[:, None, None, None], inside, outside)
        coords = torch.cat([coords, sample_cells(region, generator)[:, None]], dim=1)
        labels = torch.cat([labels, positive.long()[:, None]], dim=1)
    return coords, labels


def noisy_boxes(
    targets: Targets, generator: torch.Generator, noise: float, max_noise: float, limit: int
) -> torch.Tensor:
    """Each mask's box with every coordinate moved by Gaussian noise of std ``noise`` x the
    box's side, clipped to ``max_noise`` pixels (SAM: 10 %, 20 px) and to the frame."""
    boxes = targets.boxes
    side = torch.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]] * 2, dim=1).clamp(
        min=1.0
    )
    shift = torch.randn(boxes.shape, generator=generator, device=boxes.device) * noise * side
    noisy = boxes + shift.clamp(-max_noise, max_noise)
    noisy = noisy.clamp(0, limit - 1)
    x0, x1 = torch.minimum(noisy[:, 0], noisy[:, 2]), torch.maximum(noisy[:, 0], noisy[:, 2])
    y0, y1 = torch.minimum(noisy[:, 1], noisy[:, 3]), torch.maximum(noisy[:, 1], noisy[:, 3])
    return torch.stack([x0, y0, x1, y1], dim=1)


def corrective_points(
    logits: torch.Tensor, targets: Targets, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """One point per mask drawn uniformly from the error of ``logits`` (B, 1, 256, 256): label 1
    on a missed cell, 0 on a wrong one. A mask with no error left gets a point drawn from the
    whole image with its true label. Returns coords (B, 1, 2), labels (B, 1)."""
    predicted = (logits.detach() > 0).float()
    error = (predicted != targets.low_res).float() * targets.valid
    none_left = error.flatten(1).sum(dim=1) == 0
    region = torch.where(none_left[:, None, None, None], targets.valid.expand_as(error), error)
    coords = sample_cells(region, generator)
    cell = (coords / CELL).long().clamp(0, LOW_RES - 1)
    batch = torch.arange(coords.shape[0], device=coords.device)
    labels = targets.low_res[batch, 0, cell[:, 1], cell[:, 0]].long()
    return coords[:, None], labels[:, None]


def perturbed_logits(targets: Targets, generator: torch.Generator) -> torch.Tensor:
    """Previous-mask logits (B, 1, 256, 256) that are the ground truth with mistakes: the
    boundary moved in or out by up to 4 cells and a rectangle of up to a sixth of the frame
    flipped. Starting an iteration from them teaches a model to keep a mask that is mostly
    right and fix it where the click is, long before its own predictions are that good."""
    masks = targets.low_res
    batch = masks.shape[0]
    device = masks.device
    radius = int(torch.randint(0, 5, (), generator=generator))
    if radius:
        size = 2 * radius + 1
        if bool(torch.rand((), generator=generator) < 0.5):
            masks = F.max_pool2d(masks, size, stride=1, padding=radius)
        else:
            masks = -F.max_pool2d(-masks, size, stride=1, padding=radius)
    rows = torch.arange(LOW_RES, device=device)
    flips = []
    for _ in range(batch):
        h, w = (int(v) for v in torch.randint(4, LOW_RES // 6, (2,), generator=generator))
        y, x = (int(v) for v in torch.randint(0, LOW_RES - 4, (2,), generator=generator))
        inside_rows = (rows >= y) & (rows < y + h)
        inside_cols = (rows >= x) & (rows < x + w)
        flips.append(inside_rows[:, None] & inside_cols[None, :])
    flip = torch.stack(flips)[:, None].float()
    masks = (masks + flip) % 2 * targets.valid
    smooth = F.avg_pool2d(masks, 3, stride=1, padding=1)
    return (smooth * 2 - 1) * 8.0


def focal_loss(
    logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, alpha: float = 0.25
) -> torch.Tensor:
    """Sigmoid focal loss (gamma 2) per mask, averaged over the image's cells: logits (B, M, H, W),
    target (B, 1, H, W), valid (1, 1, H, W) -> (B, M). ``alpha`` weighs the object's pixels
    against the background's (0.25 as in DETR; a negative alpha weighs them equally)."""
    target = target.expand_as(logits)
    prob = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = prob * target + (1 - prob) * (1 - target)
    loss = ce * (1 - p_t) ** 2
    if alpha >= 0:
        loss = loss * (alpha * target + (1 - alpha) * (1 - target))
    return (loss * valid).sum(dim=(-2, -1)) / valid.sum()


def dice_loss(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """1 - soft Dice per mask: (B, M, H, W) logits -> (B, M)."""
    prob = torch.sigmoid(logits) * valid
    target = target.expand_as(logits) * valid
    inter = (prob * target).sum(dim=(-2, -1))
    return 1 - (2 * inter + 1) / (prob.sum(dim=(-2, -1)) + target.sum(dim=(-2, -1)) + 1)


def mask_ious(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """IoU of each thresholded mask with its target, (B, M); the IoU head's regression target."""
    predicted = (logits.detach() > 0).float() * valid
    target = target.expand_as(predicted) * valid
    inter = (predicted * target).sum(dim=(-2, -1))
    union = predicted.sum(dim=(-2, -1)) + target.sum(dim=(-2, -1)) - inter
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


@dataclass(frozen=True)
class StepLoss:
    """The loss of one prediction: ``total`` to backpropagate, ``best`` (B,) index of the output
    whose mask loss was lowest (the mask fed back to the next iteration)."""

    total: torch.Tensor
    best: torch.Tensor


def prediction_loss(
    logits: torch.Tensor,
    iou_pred: torch.Tensor,
    targets: Targets,
    focal_weight: float,
    dice_weight: float,
    iou_weight: float,
    focal_alpha: float = 0.25,
) -> StepLoss:
    """SAM's loss: focal x 20 + dice x 1 on the output with the lowest such loss (so the three
    ambiguity-aware masks are not pushed toward one answer), plus MSE between each output's
    predicted IoU and its real IoU."""
    per_mask = focal_weight * focal_loss(logits, targets.low_res, targets.valid, focal_alpha)
    per_mask = per_mask + dice_weight * dice_loss(logits, targets.low_res, targets.valid)
    best_loss, best = per_mask.min(dim=1)
    iou_loss = F.mse_loss(iou_pred, mask_ious(logits, targets.low_res, targets.valid))
    return StepLoss(total=best_loss.mean() + iou_weight * iou_loss, best=best)
