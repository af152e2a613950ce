"""An annotator signs in, opens the next image and makes masks the way the issue lists: hover,
click + and −, cycle the candidates, drag a box, brush, erase, undo, accept; the database then
holds the mask, its prompts and its time."""

from __future__ import annotations

import numpy as np
import pytest

from annotation.models import AnnotatorSession, Image, Mask
from engine import rle as rle_codec
from tests.browser.annotate_fixtures import (
    HEIGHT,
    WIDTH,
    at,
    click_image,
    console_errors,
    drag,
    set_brush,
    sign_in,
    state,
    wait_predicted,
    wait_ready,
    work_fixture,  # noqa: F401 (the fixture)
    working_bits,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def bit(bits: list[int], x: int, y: int) -> int:
    return bits[y * WIDTH + x]


def predict_requests(page) -> list[str]:
    urls: list[str] = []
    page.on("request", lambda r: urls.append(r.url) if r.url.endswith("/predict/") else None)
    return urls


def test_home_lists_the_queue_and_next_image_opens_the_oldest(live_server, page, work, screenshot):
    errors = console_errors(page)
    sign_in(page, live_server.url)
    row = page.locator(f"section[data-dataset='{work.dataset.pk}'] tr[data-stage='1']")
    assert row.locator(".available").inner_text() == "2"
    screenshot(page, "home")

    row.locator("button.next-image").click()
    page.wait_for_url(f"**/annotate/{work.images[0].pk}/")
    wait_ready(page)
    screenshot(page, "annotate")

    held = Image.objects.get(pk=work.images[0].pk)
    assert held.held_by == work.annotator
    assert "not Meta's checkpoint" in page.locator("#model-badge").inner_text()
    assert "untrained" in page.locator("#model-note-text").inner_text()
    page.goto(f"{live_server.url}/")
    assert row.locator(".mine").inner_text() == "1"
    assert errors() == []


def test_hover_click_plus_minus_cycle_box_brush_erase_undo_accept(
    live_server, page, work, screenshot
):
    errors = console_errors(page)
    requests = predict_requests(page)
    image = work.images[0]
    sign_in(page, live_server.url)
    page.locator("tr[data-stage='1'] button.next-image").click()
    wait_ready(page)

    # Hover: resting on the image previews the mask a click there would make ...
    page.mouse.move(*at(page, 100, 100))
    page.wait_for_function("() => window.sade.hover.visible")
    screenshot(page, "hover")
    asked = len(requests)
    # ... and the click on that very point uses the preview's answer at once.
    click_image(page, 100, 100)
    wait_predicted(page, 1)
    assert len(requests) == asked
    first = state(page)
    assert first["points"] == [[100, 100]] and first["labels"] == [1]
    assert first["candidates"] == 3

    # The three candidates' buttons run from the largest mask to the smallest, named whole,
    # part and sub-part, whatever order the model gave them in; the keys follow the buttons.
    buttons = page.locator("#candidates button")
    order = [int(i) for i in buttons.evaluate_all("bs => bs.map((b) => b.dataset.index)")]
    areas = page.evaluate("() => window.sade.editor.state.candidates.map((c) => c.area)")
    assert sorted(order) == [0, 1, 2]
    assert [areas[i] for i in order] == sorted(areas, reverse=True)
    assert [t.split(" · ")[0] for t in buttons.all_text_contents()] == [
        "1 whole",
        "2 part",
        "3 sub-part",
    ]
    page.keyboard.press("3")
    assert state(page)["chosen"] == order[2]
    # Cycling shows the next button's candidate, with its predicted IoU on its button.
    page.keyboard.press("c")
    assert state(page)["chosen"] == order[0]
    assert "IoU" in page.locator("#candidates button.active").inner_text()
    chosen = first["chosen"]
    page.locator(f"#candidates button[data-index='{chosen}']").click()
    assert state(page)["chosen"] == chosen

    # A right click adds a − point; the refinement sends the previous logits back.
    page.evaluate("() => window.sade.toggleHover()")
    bodies: list[dict] = []
    page.on(
        "request",
        lambda r: bodies.append(r.post_data_json) if r.url.endswith("/predict/") else None,
    )
    click_image(page, 200, 150, button="right")
    wait_predicted(page, 2)
    second = state(page)
    assert second["points"] == [[100, 100], [200, 150]] and second["labels"] == [1, 0]
    assert bodies[-1]["mask_input_id"] and bodies[-1]["multimask"] is False
    screenshot(page, "plus-minus")

    # A drag draws a box.
    drag(page, (40, 30), (260, 200))
    wait_predicted(page, 3)
    box = state(page)["box"]
    assert box is not None
    assert all(abs(a - b) <= 1 for a, b in zip(box, [40, 30, 261, 201], strict=True))

    # Brush adds pixels, the eraser removes them, undo brings them back.
    page.keyboard.press("b")
    set_brush(page, 10)
    drag(page, (300, 220), (310, 225), steps=4)
    bits = working_bits(page)
    assert bit(bits, 300, 220) == 1 and bit(bits, 310, 225) == 1
    page.keyboard.press("e")
    drag(page, (298, 220), (312, 222), steps=4)
    assert bit(working_bits(page), 305, 221) == 0
    screenshot(page, "erased")
    page.keyboard.press("Control+z")
    assert bit(working_bits(page), 305, 221) == 1
    page.keyboard.press("Control+Shift+z")
    assert bit(working_bits(page), 305, 221) == 0
    page.keyboard.press("Control+z")
    final = np.array(working_bits(page), dtype=bool).reshape(HEIGHT, WIDTH)
    shown_seconds = page.evaluate("() => window.sade.editor.secondsSoFar()")

    page.keyboard.press("Enter")
    page.wait_for_function("() => window.sade.masks.entries.size === 1")
    screenshot(page, "accepted")

    mask = Mask.objects.select_related("prompt").get()
    assert mask.image == image and mask.author == work.annotator
    assert mask.source == "model_assisted"
    assert np.array_equal(rle_codec.decode(mask.rle), final)
    assert mask.prompt.points == [[100.0, 100.0], [200.0, 150.0]]
    assert mask.prompt.labels == [1, 0]
    assert mask.prompt.box == [float(v) for v in box]
    assert mask.prompt.chosen_index == 0  # one mask per refinement after the first click
    assert 0 < mask.seconds_spent <= shown_seconds + 5
    assert mask.session == AnnotatorSession.objects.get(image=image, annotator=work.annotator)
    assert state(page)["empty"]
    assert errors() == []


def test_a_painted_mask_is_saved_as_manual_without_prompts(live_server, page, work, screenshot):
    sign_in(page, live_server.url)
    page.locator("tr[data-stage='1'] button.next-image").click()
    wait_ready(page)

    page.keyboard.press("b")
    set_brush(page, 8)
    drag(page, (50, 50), (120, 60))
    painted = np.array(working_bits(page), dtype=bool).reshape(HEIGHT, WIDTH)
    page.keyboard.press("Enter")
    page.wait_for_function("() => window.sade.masks.entries.size === 1")
    screenshot(page)

    mask = Mask.objects.get()
    assert mask.source == "manual" and mask.model_version is None
    assert not hasattr(mask, "prompt") or mask.prompt is None
    assert np.array_equal(rle_codec.decode(mask.rle), painted)
    assert painted[55, 85] and not painted[100, 200]


def test_re_edit_loads_the_mask_and_saves_a_new_version(live_server, page, work, screenshot):
    sign_in(page, live_server.url)
    page.locator("tr[data-stage='1'] button.next-image").click()
    wait_ready(page)
    page.keyboard.press("b")
    drag(page, (50, 50), (120, 60))
    page.keyboard.press("Enter")
    page.wait_for_function("() => window.sade.masks.entries.size === 1")
    mask = Mask.objects.get()

    page.locator(f"#mask-list li[data-id='{mask.pk}'] button[data-act='edit']").click()
    assert state(page)["area"] == mask.area
    drag(page, (200, 200), (230, 210))
    page.keyboard.press("Enter")
    page.wait_for_function(
        f"() => window.sade.masks.get({mask.pk}).mask.version === 2", timeout=10_000
    )
    screenshot(page)

    mask.refresh_from_db()
    decoded = rle_codec.decode(mask.rle)
    assert mask.version == 2 and decoded[55, 85] and decoded[205, 215]
    assert Mask.objects.count() == 1
