"""The annotation page's other tools: Cut-out (the selected masks as a transparent PNG cropped to
their box), Everything (the model's masks for the whole image as proposals to take), and the
help panel listing every shortcut."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image as PILImage

from annotation.models import Mask
from annotation.services.storage import image_path
from engine import rle as rle_codec
from tests import factories
from tests.browser.annotate_fixtures import (
    HEIGHT,
    WIDTH,
    at,
    click_image,
    console_errors,
    drag,
    open_image,
    sign_in,
    state,
    wait_predicted,
    wait_ready,
    work_fixture,  # noqa: F401 (the fixture)
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def disc_rle(cx: int, cy: int, r: int) -> dict:
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    return rle_codec.encode((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r)


def test_cut_out_downloads_the_selected_masks_with_alpha_equal_to_the_mask(
    live_server, page, work, screenshot
):
    image = work.images[0]
    disc = factories.add_mask(image, rle=disc_rle(100, 90, 30), author=work.annotator)
    ring = np.zeros((HEIGHT, WIDTH), bool)
    ring[40:60, 150:230] = True
    ring[45:55, 170:200] = False  # a hole: it must be transparent
    bar = factories.add_mask(image, rle=rle_codec.encode(ring), author=work.annotator)
    sign_in(page, live_server.url)
    open_image(page, live_server.url, image.pk)

    page.keyboard.down("Control")  # Ctrl+click on the image selects the mask under the pointer
    click_image(page, 100, 90)
    page.keyboard.up("Control")
    page.locator(f"#mask-list li[data-id='{bar.pk}'] .label").click(modifiers=["Shift"])
    assert sorted(page.evaluate("() => window.sade.masks.selected().map((e) => e.mask.id)")) == [
        disc.pk,
        bar.pk,
    ]
    screenshot(page, "selected")
    with page.expect_download() as download:
        page.keyboard.press("x")
    data = open(download.value.path(), "rb").read()

    cut = np.asarray(PILImage.open(io.BytesIO(data)).convert("RGBA"))
    union = rle_codec.decode(disc.rle) | ring
    rows, cols = np.flatnonzero(union.any(1)), np.flatnonzero(union.any(0))
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    assert download.value.suggested_filename == "img-1-cutout.png"
    assert cut.shape[:2] == union[box].shape
    assert np.array_equal(cut[..., 3] == 255, union[box])
    assert set(np.unique(cut[..., 3])) == {0, 255}
    source = np.asarray(PILImage.open(image_path(image)).convert("RGB"))[box]
    inside = union[box]
    assert np.array_equal(cut[..., :3][inside], source[inside])


def run_everything(page) -> int:
    """Presses A and waits for the proposals (the generator takes seconds on a busy CPU)."""
    page.evaluate("() => { window.sade.proposals.answer = null; }")
    page.keyboard.press("a")
    page.wait_for_function("() => window.sade.proposals.answer !== null", timeout=90_000)
    return page.evaluate("() => window.sade.proposals.items.length")


def test_everything_proposes_masks_to_take_one_by_one_or_all(live_server, page, work, screenshot):
    errors = console_errors(page)
    sign_in(page, live_server.url)
    open_image(page, live_server.url, work.images[0].pk)
    page.select_option("#everything-grid", "8")
    page.select_option("#everything-confidence", "all")
    page.evaluate("() => window.sade.toggleHover()")

    count = run_everything(page)
    assert count > 0
    screenshot(page, "proposals")

    # Clicking inside a proposal takes it into the editor; Enter saves it with its grid point.
    x, y, proposal = page.evaluate(
        """() => {
            const item = window.sade.proposals.items[0];
            const c = item.crop;
            const i = c.data.indexOf(1);
            const w = c.x1 - c.x0;
            return [c.x0 + (i % w), c.y0 + Math.floor(i / w), item.mask];
        }"""
    )
    # The hover preview shown over it goes when it is taken (it would hide the proposal).
    page.evaluate("() => window.sade.toggleHover()")
    page.mouse.move(*at(page, x, y))
    page.wait_for_function("() => window.sade.hover.visible")
    click_image(page, x, y)
    assert state(page)["candidates"] == 1
    assert page.evaluate("() => window.sade.hover.visible") is False
    page.evaluate("() => window.sade.toggleHover()")
    assert page.evaluate("() => window.sade.proposals.items.length") == count - 1
    page.keyboard.press("Enter")
    page.wait_for_function("() => window.sade.masks.entries.size === 1")
    taken = Mask.objects.select_related("prompt").get()
    assert taken.source == "model_assisted"
    assert taken.prompt.points == proposal["point_coords"]
    assert taken.point_coords == proposal["point_coords"]
    assert taken.predicted_iou == pytest.approx(proposal["predicted_iou"])
    assert taken.area == proposal["area"]

    # Shift+A accepts every proposal of a new run.
    count = run_everything(page)
    page.keyboard.press("Shift+A")
    page.wait_for_function(f"() => window.sade.masks.entries.size === {count + 1}")
    screenshot(page, "accepted")
    assert Mask.objects.filter(source="model_assisted").count() == count + 1
    assert page.evaluate("() => window.sade.proposals.items.length") == 0
    assert errors() == []


def test_everything_says_plainly_when_the_model_is_not_confident(live_server, page, work):
    sign_in(page, live_server.url)
    open_image(page, live_server.url, work.images[0].pk)
    page.select_option("#everything-grid", "8")

    page.locator("#everything").click()
    page.wait_for_function("() => window.sade.proposals.answer !== null", timeout=90_000)

    # The seeded untrained model's predicted IoUs are far below the paper's 0.88.
    assert page.evaluate("() => window.sade.proposals.items.length") == 0
    assert "no mask it is confident about" in page.locator("#status").inner_text()
    assert "not Meta's checkpoint" in page.locator("#status").inner_text()
    assert (
        "No proposal: the model kept no mask at 'paper'"
        in page.locator("#proposals-info").inner_text()
    )

    # With 'relaxed' chosen, the advice is the next setting, not 'relaxed' again.
    page.select_option("#everything-confidence", "relaxed")
    if run_everything(page) == 0:
        status = page.locator("#status").inner_text()
        assert "even at 'relaxed'" in status and "Choose 'all'" in status
        assert "'relaxed' or" not in status
    else:
        assert "No proposal" not in page.locator("#proposals-info").inner_text()


def test_got_it_hides_the_model_notice_and_it_stays_hidden_after_a_reload(
    live_server, page, work, screenshot
):
    sign_in(page, live_server.url)
    open_image(page, live_server.url, work.images[0].pk)
    assert page.locator("#model-note").is_visible()

    page.locator("#model-note-dismiss").click()
    assert not page.locator("#model-note").is_visible()
    page.reload()
    wait_ready(page)
    screenshot(page)
    assert not page.locator("#model-note").is_visible()
    assert page.locator("#model-badge").inner_text().startswith("model: ")


def test_enter_before_the_first_answer_saves_it_once_shown_and_the_box_is_outlined(
    live_server, page, work, screenshot
):
    sign_in(page, live_server.url)
    open_image(page, live_server.url, work.images[0].pk)
    page.evaluate("() => window.sade.toggleHover()")
    held = []

    def predictions(url: str) -> bool:
        return url.endswith("/predict/")

    page.route(predictions, lambda route: held.append(route))
    click_image(page, 100, 100)
    while not held:
        page.wait_for_timeout(20)
    page.keyboard.press("Enter")
    assert "still answering" in page.locator("#status").inner_text()
    held[0].continue_()
    page.unroute(predictions)
    page.wait_for_function("() => window.sade.masks.entries.size === 1")
    assert Mask.objects.count() == 1 and state(page)["empty"]

    # A box is outlined dark and light, so it shows on the blue mask it makes.
    drag(page, (60, 60), (200, 180))
    wait_predicted(page, 2)
    page.mouse.move(*at(page, 300, 230))
    edge = page.evaluate(
        """() => {
            const canvas = document.getElementById('canvas');
            const rect = canvas.getBoundingClientRect();
            const p = window.sade.view.toClient(60, 120);
            window.sade.canvasView.renderNow();
            const ctx = canvas.getContext('2d');
            const y = Math.round(p.y - rect.top);
            const px = (x) => Array.from(
                ctx.getImageData(Math.round(x - rect.left), y, 1, 1).data.slice(0, 3));
            return [px(p.x), px(p.x - 2), px(p.x + 2)];
        }"""
    )
    screenshot(page, "box")
    assert edge[0] == [255, 255, 255]
    assert [0, 0, 0] in edge[1:]


def test_help_lists_every_shortcut(live_server, page, work, screenshot):
    sign_in(page, live_server.url)
    open_image(page, live_server.url, work.images[0].pk)

    page.keyboard.press("?")
    help_panel = page.locator("#help")
    help_panel.wait_for()
    text = help_panel.inner_text()
    screenshot(page)

    for needle in ["Enter", "Ctrl+Z", "cycle", "brush", "eraser", "Everything", "cut-out", "pan"]:
        assert needle.lower() in text.lower()
    page.keyboard.press("Escape")
    assert not help_panel.is_visible()


def test_zoom_and_pan_keep_clicks_on_the_pixel_under_the_pointer(
    live_server, page, work, screenshot
):
    sign_in(page, live_server.url)
    open_image(page, live_server.url, work.images[0].pk)
    page.evaluate("() => window.sade.toggleHover()")
    view = "() => ({scale: window.sade.view.scale, tx: window.sade.view.tx})"
    before = page.evaluate(view)

    # The wheel zooms around the pointer: the pixel under it stays under it.
    page.mouse.move(*at(page, 100, 80))
    page.mouse.wheel(0, -400)
    page.wait_for_function(f"() => window.sade.view.scale > {before['scale'] * 1.5}")
    under = page.evaluate(
        "([x, y]) => window.sade.view.toImage({clientX: x, clientY: y})", list(at(page, 100, 80))
    )
    assert abs(under[0] - 100.5) < 0.01 and abs(under[1] - 80.5) < 0.01

    # Space + drag pans by the distance dragged.
    panned = page.evaluate(view)
    start = at(page, 150, 120)
    page.keyboard.down("Space")
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(start[0] - 120, start[1] - 60, steps=5)
    page.mouse.up()
    page.keyboard.up("Space")
    assert page.evaluate(view)["tx"] == pytest.approx(panned["tx"] - 120, abs=1)
    assert state(page)["empty"]  # panning made no prompt

    click_image(page, 170, 130)
    page.wait_for_function("() => window.sade.metrics.clickToMask.length === 1")
    screenshot(page)
    assert state(page)["points"] == [[170, 130]]

    page.keyboard.press("0")
    assert page.evaluate(view)["scale"] == pytest.approx(before["scale"])
