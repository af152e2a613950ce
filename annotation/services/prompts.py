"""The one check of click prompts (points with their labels, a box) against an image: what a
prediction answers (annotation.services.predict) and what is stored with a mask as the prompts
it came from (annotation.services.masks) pass the same rules with the same messages. The API's
serializers (annotation.api.serializers.PromptFields) take MAX_POINTS from here and check only
the JSON's shape before it."""

from __future__ import annotations

import math
from collections.abc import Sequence

from annotation.models import Image
from annotation.services.errors import InvalidInput

MAX_POINTS = 100


def check_prompts(
    image: Image,
    points: list[Sequence[float]],
    labels: list[int],
    box: Sequence[float] | None,
) -> None:
    """Raise InvalidInput for prompts the image cannot answer, with what is wrong."""
    if not points and box is None:
        raise InvalidInput("give at least one point or a box")
    if len(points) > MAX_POINTS:
        raise InvalidInput(f"at most {MAX_POINTS} points per prediction, got {len(points)}")
    if len(labels) != len(points):
        raise InvalidInput(f"{len(points)} points need {len(points)} labels, got {len(labels)}")
    for i, point in enumerate(points):
        if len(point) != 2 or not all(math.isfinite(v) for v in point):
            raise InvalidInput(f"point {i} must be [x, y] with finite numbers")
        x, y = point
        if not (0 <= x <= image.width and 0 <= y <= image.height):
            raise InvalidInput(
                f"point {i} ({x}, {y}) is outside the {image.width}x{image.height} image"
            )
    for i, label in enumerate(labels):
        if label not in (0, 1):
            raise InvalidInput(f"label {i} must be 1 (foreground) or 0 (background), got {label}")
    if box is not None:
        if len(box) != 4 or not all(math.isfinite(v) for v in box):
            raise InvalidInput("box must be [x0, y0, x1, y1] with finite numbers")
        x0, y0, x1, y1 = box
        if not (0 <= x0 < x1 <= image.width and 0 <= y0 < y1 <= image.height):
            raise InvalidInput(
                f"box {list(box)} must satisfy 0 <= x0 < x1 <= {image.width} and "
                f"0 <= y0 < y1 <= {image.height} (a box with an area)"
            )
