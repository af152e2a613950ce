"""The interactive evaluation protocol (modeltrain.evaluation) on crafted masks: which clicks it
sends, which masks it keeps, and the numbers it reports, all worked out by hand. A scripted
model answers with chosen masks so the numbers are known; the last test uses the real engine."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine import Prediction, SamPredictor, build_sam
from modeltrain.evaluation import EvalImage, GroundTruth, evaluate_images, evaluate_object

SHAPE = (20, 20)


def box_mask(rows, cols):
    mask = np.zeros(SHAPE, bool)
    mask[rows[0] : rows[1], cols[0] : cols[1]] = True
    return mask


GT = box_mask((4, 16), (4, 16))  # 12x12 = 144 pixels
WHOLE = GT
LEFT_HALF = box_mask((4, 16), (4, 10))  # IoU 72 / 144 = 0.5
EMPTY = np.zeros(SHAPE, bool)
MISSING_LAST_COLUMN = box_mask((4, 16), (4, 15))  # IoU 132 / 144 = 0.9167
ONE_COLUMN_TOO_MANY = box_mask((4, 16), (4, 17))  # IoU 144 / 156 = 0.9231


class ScriptedModel:
    """Answers the first (three-mask) click, each later click and the box with given masks,
    and records every call. Low-res logits carry the mask's index so feedback can be checked."""

    def __init__(self, first, first_scores, later, box):
        self.first, self.first_scores, self.later, self.box = first, first_scores, later, box
        self.calls: list[dict] = []

    def decode(
        self, embedding, points=None, labels=None, box=None, mask_logits=None, multimask=True
    ):
        self.calls.append(
            {
                "points": None if points is None else [list(p) for p in points],
                "labels": None if labels is None else list(labels),
                "box": box,
                "mask_logits": None if mask_logits is None else float(mask_logits.flat[0]),
                "multimask": multimask,
            }
        )
        if box is not None:
            masks = [self.box]
        elif multimask:
            masks = self.first
        else:
            masks = [self.later[min(len(self.calls) - 2, len(self.later) - 1)]]
        logits = np.stack(
            [np.full((256, 256), float(i + 10 * len(self.calls))) for i in range(len(masks))]
        )
        scores = self.first_scores if multimask and box is None else [0.5]
        return Prediction(
            np.stack(masks), np.asarray(scores, np.float32), logits.astype(np.float32)
        )


def test_keeps_the_top_scoring_first_mask_and_clicks_on_the_largest_miss():
    model = ScriptedModel(
        first=[WHOLE, LEFT_HALF, EMPTY],
        first_scores=[0.2, 0.9, 0.5],
        later=[MISSING_LAST_COLUMN],
        box=ONE_COLUMN_TOO_MANY,
    )

    result = evaluate_object(model, None, GroundTruth(GT))

    assert result.iou_1click_top == pytest.approx(0.5)  # the 0.9-scored left half
    assert result.iou_1click_best == 1.0  # the first of the three was perfect
    assert result.ious == pytest.approx([0.5, 132 / 144])
    assert result.noc == {0.85: 2, 0.90: 2}
    assert result.iou_box == pytest.approx(144 / 156)
    first, second, boxed = model.calls
    # The object's centre: rows and columns 9-10 are 6 pixels inside; the first in row order.
    assert first["points"] == [[9, 9]] and first["multimask"] is True
    # The missed right half (columns 10-15): columns 12-13, rows 6-13 are 3 pixels inside.
    assert second["points"] == [[9, 9], [12, 6]] and second["labels"] == [1, 1]
    assert second["multimask"] is False
    assert second["mask_logits"] == 11.0  # the kept (second) mask's logits of call 1
    assert boxed["box"] == [4.0, 4.0, 15.0, 15.0]


def test_the_ignore_band_decides_when_the_object_is_reached():
    band = box_mask((0, 20), (15, 16))  # the last column of the object is ignored
    model = ScriptedModel(
        first=[LEFT_HALF, LEFT_HALF, LEFT_HALF],
        first_scores=[0.9, 0.1, 0.1],
        later=[MISSING_LAST_COLUMN],
        box=MISSING_LAST_COLUMN,
    )

    result = evaluate_object(model, None, GroundTruth(GT, band))

    # Without the band the left half is 72/144; the band leaves 132 object pixels.
    assert result.iou_1click_top == pytest.approx(72 / 132)
    assert result.ious[-1] == 1.0 and result.noc == {0.85: 2, 0.90: 2}
    assert result.iou_box == 1.0


def test_an_object_never_reached_costs_max_clicks_and_stops_there():
    model = ScriptedModel(
        first=[LEFT_HALF] * 3, first_scores=[0.9, 0.1, 0.1], later=[LEFT_HALF], box=LEFT_HALF
    )

    result = evaluate_object(model, None, GroundTruth(GT), max_clicks=4)

    assert result.noc == {0.85: 4, 0.90: 4}
    assert len(result.ious) == 4
    assert len(model.calls) == 5  # four clicks and the box
    # The same miss each time: the annotator keeps clicking the centre of the right half.
    assert model.calls[3]["points"][-1] == [12, 6]


def test_summary_over_images_and_per_object_rows():
    reached = ScriptedModel([WHOLE] * 3, [0.9, 0.1, 0.1], [WHOLE], WHOLE)
    images = [
        EvalImage("a", [GroundTruth(GT)], embedding=object()),
        EvalImage("b", [GroundTruth(GT), GroundTruth(EMPTY)], embedding=object()),
    ]
    rows: list[dict] = []

    summary = evaluate_images(reached, images, per_object=rows)

    # An empty object has nothing to find and is left out.
    assert summary == {
        "images": 2,
        "masks": 2,
        "miou_1click_top": 1.0,
        "miou_1click_best": 1.0,
        "miou_5clicks": 1.0,
        "miou_10clicks": 1.0,
        "miou_box": 1.0,
        "noc85": 1.0,
        "noc90": 1.0,
    }
    assert [(r["image"], r["noc90"]) for r in rows] == [("a", 1), ("b", 1)]


def test_the_real_engine_gives_numbers_in_range():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        predictor = SamPredictor(build_sam("vit_tiny"))
    pixels = np.zeros((*SHAPE, 3), np.uint8)
    pixels[GT] = 200
    rows: list[dict] = []

    summary = evaluate_images(
        predictor, [EvalImage("x", [GroundTruth(GT)], load=lambda: pixels)], 3, rows
    )

    assert summary["masks"] == 1
    assert 0 <= summary["miou_1click_top"] <= summary["miou_1click_best"] <= 1
    assert 1 <= summary["noc85"] <= summary["noc90"] <= 3
