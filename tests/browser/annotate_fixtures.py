"""Fixtures and helpers of the annotation page's browser tests: an annotator with a dataset whose
images have their embeddings computed before the page opens (the seeded vit_tiny answers), a
sign-in through our login page, and the page's own coordinates to click at.

Test modules import the ``work`` fixture from here as ``work_fixture`` (it registers under the
name ``work``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from annotation.models import Dataset, Image, Role
from annotation.services.embeddings import get_or_compute_embedding
from tests import factories

PASSWORD = "annotate-pass-123"
WIDTH, HEIGHT = 320, 240


@dataclass
class Work:
    dataset: Dataset
    images: list[Image]
    annotator: Any
    model: Any


def add_ready_image(dataset: Dataset, model, seed: int, stage: int = 1) -> Image:
    """An imported image in ``stage`` whose embedding is stored (the first click never waits)."""
    image = factories.add_image(dataset, WIDTH, HEIGHT, seed=seed)
    if stage != image.stage:
        Image.objects.filter(pk=image.pk).update(stage=stage)
        image.refresh_from_db()
    get_or_compute_embedding(image, model)
    image.refresh_from_db()
    return image


@pytest.fixture(name="work")
def work_fixture(tiny_model) -> Work:
    """Dataset "streets" with two stage-1 images and the annotator "ann" (password PASSWORD)."""
    annotator = factories.make_user("ann", password=PASSWORD)
    dataset = factories.make_dataset("streets", [(annotator, Role.ANNOTATOR)])
    images = [add_ready_image(dataset, tiny_model, seed) for seed in (1, 2)]
    return Work(dataset, images, annotator, tiny_model)


def sign_in(page, base_url: str, username: str = "ann", password: str = PASSWORD) -> None:
    page.goto(f"{base_url}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/")


def open_image(page, base_url: str, image_id: int) -> None:
    """Opens the annotation page of an image and waits until it is ready to be clicked."""
    page.goto(f"{base_url}/annotate/{image_id}/")
    wait_ready(page)


def wait_ready(page) -> None:
    page.wait_for_function("() => document.body.dataset.ready === '1'")
    page.wait_for_function("() => document.body.dataset.embedding === 'ready'")


def at(page, x: float, y: float) -> tuple[float, float]:
    """Page coordinates of image pixel (x, y) in the current view (centre of the pixel)."""
    point = page.evaluate("([x, y]) => window.sade.view.toClient(x, y)", [x + 0.5, y + 0.5])
    return point["x"], point["y"]


def click_image(page, x: float, y: float, **options) -> None:
    page.mouse.click(*at(page, x, y), **options)


def wait_predicted(page, count: int) -> None:
    """Waits until the page has drawn the answer of its ``count``-th click or box."""
    page.wait_for_function(f"() => window.sade.metrics.clickToMask.length >= {count}")


def state(page) -> dict:
    return page.evaluate(
        """() => {
            const s = window.sade.editor.state;
            return {points: s.points, labels: s.labels, box: s.box,
                    candidates: s.candidates.length, chosen: s.chosen,
                    strokes: s.strokes.length, empty: window.sade.editor.isEmpty(),
                    area: window.sade.editor.layer.bits.reduce((a, b) => a + b, 0)};
        }"""
    )


def working_bits(page) -> list[int]:
    return page.evaluate("() => Array.from(window.sade.editor.layer.bits)")


def drag(page, start: tuple[float, float], end: tuple[float, float], steps: int = 8, **down):
    page.mouse.move(*at(page, *start))
    page.mouse.down(**down)
    page.mouse.move(*at(page, *end), steps=steps)
    page.mouse.up(**down)


def set_brush(page, size: int) -> None:
    """Sets the brush size slider as a person dragging it would (an input event)."""
    page.evaluate(
        """(size) => {
            const input = document.getElementById('brush-size');
            input.value = String(size);
            input.dispatchEvent(new Event('input', {bubbles: true}));
        }""",
        size,
    )


def console_errors(page) -> Callable[[], list[str]]:
    """Collects the page's console errors and uncaught exceptions; call the result to read."""
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return lambda: list(errors)
