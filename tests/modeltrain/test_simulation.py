"""The simulated annotator of training (modeltrain.simulation): prompts land where they should
and the loss picks the best of the three masks."""

from __future__ import annotations

import torch

from modeltrain.simulation import (
    background_targets,
    corrective_points,
    earlier_clicks,
    first_points,
    make_targets,
    noisy_boxes,
    perturbed_logits,
    prediction_loss,
)


def square_targets():
    """One 400x400 square at input pixels (100..499, 200..599) in a 700x1024 image."""
    mask = torch.zeros((1, 700, 1024), dtype=torch.bool)
    mask[0, 200:600, 100:500] = True
    return make_targets(mask, (700, 1024))


def test_targets_are_the_mask_at_low_resolution_inside_the_image():
    targets = square_targets()

    assert targets.low_res.shape == (1, 1, 256, 256)
    assert targets.low_res[0, 0, 50:150, 25:125].all() and targets.low_res.sum() == 100 * 100
    assert targets.valid[0, 0, :175].all() and not targets.valid[0, 0, 175:].any()
    assert targets.boxes.tolist() == [[100.0, 200.0, 499.0, 599.0]]


def test_first_points_fall_inside_and_corrective_points_on_the_error():
    targets = square_targets()
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        coords, labels = first_points(targets, gen)
        x, y = coords[0, 0].tolist()
        assert 100 <= x < 500 and 200 <= y < 600 and labels.item() == 1

    # A prediction covering the left half of the square plus a strip beyond its right edge.
    logits = torch.full((1, 1, 256, 256), -5.0)
    logits[0, 0, 50:150, 25:75] = 5.0
    logits[0, 0, 50:150, 130:140] = 5.0
    for _ in range(20):
        coords, labels = corrective_points(logits, targets, gen)
        x, y = coords[0, 0].tolist()
        if labels.item() == 1:  # a miss: the right half of the square
            assert 300 <= x < 500 and 200 <= y < 600
        else:  # a wrong pixel: the strip
            assert 520 <= x < 560 and 200 <= y < 600


def test_noisy_boxes_stay_near_the_object_and_inside_the_frame():
    targets = square_targets()
    gen = torch.Generator().manual_seed(1)

    boxes = torch.cat([noisy_boxes(targets, gen, 0.1, 20.0, 1024) for _ in range(50)])

    assert (boxes - targets.boxes).abs().max() <= 20.0
    assert (boxes[:, 0] <= boxes[:, 2]).all() and (boxes >= 0).all() and (boxes <= 1023).all()


def test_perturbed_masks_are_mostly_right():
    targets = square_targets()
    gen = torch.Generator().manual_seed(2)
    for _ in range(10):
        damaged = perturbed_logits(targets, gen) > 0
        truth = targets.low_res > 0
        inter = (damaged & truth).sum().item()
        union = (damaged | truth).sum().item()
        assert 0.3 < inter / union < 1.0
        assert not (damaged & (targets.valid == 0)).any()


def test_the_loss_follows_the_best_of_three_masks():
    targets = square_targets()
    good = torch.where(targets.low_res > 0, 10.0, -10.0)
    logits = torch.cat([-good, good, torch.zeros_like(good)], dim=1)  # (1, 3, 256, 256)
    iou_pred = torch.tensor([[0.0, 1.0, 0.0]])  # the IoUs these masks really have

    loss = prediction_loss(logits, iou_pred, targets, 20.0, 1.0, 1.0)

    assert loss.best.tolist() == [1]
    assert loss.total.item() < 0.01  # the best mask is right and so is the IoU head


def test_background_target_is_the_image_outside_the_masks():
    targets = square_targets()

    background = background_targets(targets)

    expected = targets.valid * (1 - targets.low_res)
    assert torch.equal(background.low_res, expected)
    assert background.boxes.tolist() == [[0.0, 0.0, 1023.0, 699.0]]


def test_earlier_clicks_are_labelled_by_where_they_fall():
    targets = square_targets()
    gen = torch.Generator().manual_seed(3)

    coords, labels = earlier_clicks(targets, gen, 12)

    assert coords.shape == (1, 12, 2) and labels[0, 0] == 1
    for (x, y), label in zip(coords[0].tolist(), labels[0].tolist(), strict=True):
        inside = 100 <= x < 500 and 200 <= y < 600
        assert inside == (label == 1)
