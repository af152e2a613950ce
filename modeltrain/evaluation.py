"""Running the interactive protocol of modeltrain.metrics against a model (no Django): the
held-out evaluation of a training round, ``manage.py evaluate`` and the demonstration all call
``evaluate_object`` through ``evaluate_images``.

The first click asks for three masks (SAM's answer to an ambiguous click); the highest-scoring
one is kept ("top"), and the best of the three is reported too ("best", the paper's oracle
number). Every later click sends all clicks so far plus the kept mask's low-resolution logits
and asks for one mask, as an annotator's tool does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from engine import Embedding, SamPredictor
from modeltrain.metrics import (
    DEFAULT_MAX_CLICKS,
    DEFAULT_THRESHOLDS,
    ObjectResult,
    bounding_box,
    clicks_to_reach,
    first_click,
    iou,
    next_click,
    summarize,
)


@dataclass(frozen=True)
class GroundTruth:
    """One object to find on an image: ``mask`` bool (H, W); ``ignore`` bool (H, W) or None,
    pixels that count neither way (the boundary band of GrabCut's masks)."""

    mask: np.ndarray
    ignore: np.ndarray | None = None


@dataclass(frozen=True)
class EvalImage:
    """An image and its objects. ``load`` returns the uint8 RGB (H, W, 3) pixels; it is only
    called when ``embedding`` is None (so cached embeddings spare the encoder)."""

    name: str
    objects: list[GroundTruth]
    load: Callable[[], np.ndarray] | None = None
    embedding: Embedding | None = None


def evaluate_object(
    predictor: SamPredictor,
    embedding: Embedding,
    truth: GroundTruth,
    max_clicks: int = DEFAULT_MAX_CLICKS,
    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS,
) -> ObjectResult | None:
    """Click on one object until every threshold is reached or ``max_clicks`` were spent.
    None for an object with no pixel outside the ignored band."""
    gt, ignore = truth.mask.astype(bool), truth.ignore
    click = first_click(gt, ignore)
    if click is None:
        return None
    points, labels = [[click.x, click.y]], [click.label]
    first = predictor.decode(embedding, points=points, labels=labels, multimask=True)
    top = int(np.argmax(first.iou))
    first_ious = [iou(mask, gt, ignore) for mask in first.masks]
    pred, logits = first.masks[top], first.low_res_logits[top : top + 1]
    ious = [first_ious[top]]
    # Both NoC thresholds are settled once the best IoU so far passes the highest one.
    while len(ious) < max_clicks and max(ious) < max(thresholds):
        click = next_click(pred, gt, ignore)
        if click is None:
            break
        points.append([click.x, click.y])
        labels.append(click.label)
        answer = predictor.decode(
            embedding, points=points, labels=labels, mask_logits=logits, multimask=False
        )
        pred, logits = answer.masks[0], answer.low_res_logits[:1]
        ious.append(iou(pred, gt, ignore))
    box = bounding_box(gt & ~ignore if ignore is not None else gt)
    boxed = predictor.decode(embedding, box=box, multimask=False)
    return ObjectResult(
        ious=ious,
        iou_1click_top=first_ious[top],
        iou_1click_best=max(first_ious),
        iou_box=iou(boxed.masks[0], gt, ignore),
        noc={t: clicks_to_reach(ious, t, max_clicks) for t in thresholds},
    )


def iterate_results(
    predictor: SamPredictor,
    images: Iterable[EvalImage],
    max_clicks: int = DEFAULT_MAX_CLICKS,
) -> Iterator[tuple[EvalImage, list[ObjectResult]]]:
    """Each image with the results of its objects (embedding it first when needed)."""
    for image in images:
        embedding = image.embedding
        if embedding is None:
            if image.load is None:
                raise ValueError(f"image {image.name} has neither an embedding nor pixels")
            embedding = predictor.embed(image.load())
        results = [
            evaluate_object(predictor, embedding, truth, max_clicks) for truth in image.objects
        ]
        yield image, [r for r in results if r is not None]


def evaluate_images(
    predictor: SamPredictor,
    images: Iterable[EvalImage],
    max_clicks: int = DEFAULT_MAX_CLICKS,
    per_object: list[dict] | None = None,
) -> dict[str, float | int]:
    """The summary of ``modeltrain.metrics.summarize`` over every object of ``images``; when
    ``per_object`` is a list, one plain dict per object is appended to it."""
    results: list[ObjectResult] = []
    image_count = 0
    for image, found in iterate_results(predictor, images, max_clicks):
        if not found:
            continue
        image_count += 1
        results.extend(found)
        if per_object is not None:
            for index, result in enumerate(found):
                per_object.append(
                    {
                        "image": image.name,
                        "object": index,
                        "iou_1click_top": round(result.iou_1click_top, 4),
                        "iou_1click_best": round(result.iou_1click_best, 4),
                        "iou_box": round(result.iou_box, 4),
                        "noc85": result.noc[0.85],
                        "noc90": result.noc[0.90],
                    }
                )
    return summarize(results, image_count)
