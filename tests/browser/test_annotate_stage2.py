"""Stage 2: the masks the model pre-filled are shown apart (orange, striped, dashed box); the
annotator keeps, fixes or deletes each and adds what the model missed. A kept mask stays the
model's (no author, source prefilled, review kept); a fixed one is recorded as edited."""

from __future__ import annotations

import pytest

from annotation.models import AnnotatorSession, ImageStatus, Mask
from engine import rle as rle_codec
from tests import factories
from tests.automatic.conftest import RELAXED
from tests.browser.annotate_fixtures import (
    add_ready_image,
    click_image,
    console_errors,
    drag,
    sign_in,
    wait_predicted,
    wait_ready,
    work_fixture,  # noqa: F401 (the fixture)
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def prefilled(work):
    image = add_ready_image(work.dataset, work.model, seed=5, stage=2)
    masks = [
        factories.add_mask(
            image,
            source="prefilled",
            model_version=work.model,
            rle=factories.rect_rle(image, *box),
            predicted_iou=0.97,
            stability_score=0.98,
        )
        for box in [(10, 10, 60, 50), (100, 40, 160, 120), (200, 150, 290, 220)]
    ]
    return image, masks


def item(page, mask):
    return page.locator(f"#mask-list li[data-id='{mask.pk}']")


def keep_and_fix(page, kept, fixed) -> None:
    """Keep one pre-filled mask (select it in the list, K) and fix another (load it into the
    editor, paint a missing part, Enter), waiting for the server's answer to each."""
    item(page, kept).locator(".label").click()
    page.keyboard.press("k")
    page.wait_for_function(f"() => window.sade.masks.get({kept.pk}).mask.review === 'kept'")
    item(page, fixed).locator("button[data-act='edit']").click()
    page.keyboard.press("b")
    drag(page, (165, 60), (180, 70))
    page.keyboard.press("Enter")
    page.wait_for_function(f"() => window.sade.masks.get({fixed.pk}).mask.review === 'edited'")


def test_keep_fix_delete_prefilled_masks_then_add_a_missing_one(
    live_server, page, work, prefilled, screenshot
):
    errors = console_errors(page)
    image, (kept, fixed, deleted) = prefilled
    sign_in(page, live_server.url)
    page.locator(
        f"section[data-dataset='{work.dataset.pk}'] tr[data-stage='2'] .next-image"
    ).click()
    page.wait_for_url(f"**/annotate/{image.pk}/")
    wait_ready(page)

    assert page.locator("#mask-list li.prefilled").count() == 3
    assert "3 to review" in page.locator("#prefill-info").inner_text()
    screenshot(page, "prefilled")

    keep_and_fix(page, kept, fixed)

    # Delete.
    item(page, deleted).locator("button[data-act='delete']").click()
    page.wait_for_function(f"() => !window.sade.masks.get({deleted.pk})")

    # Add an object the model missed.
    page.keyboard.press("p")
    click_image(page, 250, 60)
    wait_predicted(page, 1)
    page.keyboard.press("Enter")
    page.wait_for_function("() => window.sade.masks.entries.size === 3")
    info = page.locator("#prefill-info").inner_text()
    assert "0 to review, 1 kept, 1 fixed, 1 deleted" in info
    screenshot(page, "reviewed")

    kept.refresh_from_db()
    assert (kept.source, kept.review, kept.reviewed_by, kept.author) == (
        "prefilled",
        "kept",
        work.annotator,
        None,
    )
    assert kept.rle == factories.rect_rle(image, 10, 10, 60, 50)
    fixed.refresh_from_db()
    assert (fixed.source, fixed.review, fixed.version) == ("prefilled", "edited", 2)
    pixels = rle_codec.decode(fixed.rle)
    assert pixels[80, 130] and pixels[65, 172] and not pixels[200, 20]
    added = Mask.objects.exclude(source="prefilled").get()
    assert (added.source, added.stage, added.author) == ("model_assisted", 2, work.annotator)

    # Done: the session closes, the image is done in stage 2, the summary is shown.
    page.locator("#done").click()
    page.locator("#finish-dialog").wait_for()
    summary = page.locator("#finish-details").inner_text()
    assert "3 mask(s) on this image, 1 made by you" in summary
    screenshot(page, "done")
    image.refresh_from_db()
    assert image.status == ImageStatus.DONE and image.held_by is None
    # The deletion was sent at Done at the latest (its undo window).
    assert not Mask.objects.filter(pk=deleted.pk).exists()
    session = AnnotatorSession.objects.get(image=image)
    assert session.ended_at is not None and session.masks_made == 1
    page.locator("#finish-next").click()
    page.wait_for_url(f"{live_server.url}/")
    assert errors() == []


def test_prefilled_masks_are_drawn_apart_from_the_annotators(
    live_server, page, work, prefilled, screenshot
):
    image, masks = prefilled
    sign_in(page, live_server.url)
    page.goto(f"{live_server.url}/annotate/{image.pk}/")
    wait_ready(page)
    page.evaluate("() => window.sade.toggleHover()")
    click_image(page, 250, 60)
    wait_predicted(page, 1)
    page.keyboard.press("Enter")
    page.wait_for_function("() => window.sade.masks.entries.size === 4")

    # A pre-filled mask's layer is orange; the annotator's mask has its own colour.
    colours = page.evaluate(
        """(ids) => ids.map((id) => {
            const {layer, crop} = window.sade.masks.get(id);
            const first = crop.data.indexOf(1);
            const width = crop.x1 - crop.x0;
            const ctx = layer.canvas.getContext('2d');
            const pixel = ctx.getImageData(first % width, Math.floor(first / width), 1, 1).data;
            return Array.from(pixel.slice(0, 3));
        })""",
        [masks[0].pk, Mask.objects.exclude(source="prefilled").get().pk],
    )
    screenshot(page)

    assert colours[0] == [255, 140, 0]
    assert colours[1] != [255, 140, 0]
    assert page.locator(f"#mask-list li[data-id='{masks[0].pk}'] button[data-act='keep']").count()


def test_fix_then_a_click_refines_the_prefilled_mask_and_undo_brings_it_back(
    live_server, page, work, prefilled, screenshot
):
    errors = console_errors(page)
    image, (_, fixed, _) = prefilled
    asked = []
    page.on(
        "request",
        lambda r: asked.append(r.post_data_json) if r.url.endswith("/predict/") else None,
    )
    sign_in(page, live_server.url)
    page.goto(f"{live_server.url}/annotate/{image.pk}/")
    wait_ready(page)
    page.evaluate("() => window.sade.toggleHover()")

    item(page, fixed).locator("button[data-act='edit']").click()
    loaded = page.evaluate("() => window.sade.editor.layer.bits.reduce((a, b) => a + b, 0)")
    assert loaded == 60 * 80
    screenshot(page, "loaded")
    click_image(page, 130, 80)
    wait_predicted(page, 1)

    # The stored mask went to the model as the mask prompt with the click: one refined answer.
    assert asked[-1]["refine_mask"] == fixed.pk and asked[-1]["multimask"] is False
    assert asked[-1]["points"] == [[130, 80]] and "mask_input_id" not in asked[-1]
    assert page.evaluate("() => window.sade.editor.state.candidates.length") == 1
    screenshot(page, "refined")

    # Undo: the loaded mask again, not an empty editor.
    page.keyboard.press("Control+z")
    back = page.evaluate(
        """() => ({base: Boolean(window.sade.editor.state.base),
                   candidates: window.sade.editor.state.candidates.length,
                   area: window.sade.editor.layer.bits.reduce((a, b) => a + b, 0)})"""
    )
    assert back == {"base": True, "candidates": 0, "area": 60 * 80}

    # Redo and accept; an Edit of the saved mask in this page then refines its own logits.
    page.keyboard.press("Control+Shift+z")
    logits_id = page.evaluate("() => window.sade.editor.state.candidates[0].logits_id")
    page.keyboard.press("Enter")
    page.wait_for_function(f"() => window.sade.masks.get({fixed.pk}).mask.review === 'edited'")
    item(page, fixed).locator("button[data-act='edit']").click()
    click_image(page, 140, 90)
    wait_predicted(page, 2)
    assert asked[-1]["mask_input_id"] == logits_id and "refine_mask" not in asked[-1]
    assert asked[-1]["points"] == [[140, 90]]
    screenshot(page, "edited-again")
    assert errors() == []


def test_a_prefill_run_again_keeps_what_the_annotator_reviewed_in_the_page(
    live_server, page, work, prefilled, screenshot
):
    from rest_framework.test import APIClient

    image, (kept, fixed, _) = prefilled
    sign_in(page, live_server.url)
    page.goto(f"{live_server.url}/annotate/{image.pk}/")
    wait_ready(page)
    keep_and_fix(page, kept, fixed)
    kept.refresh_from_db()
    fixed.refresh_from_db()
    before = {m.pk: (m.rle, m.version, m.review) for m in (kept, fixed)}

    # The dataset's admin runs the same pre-fill again (tasks run eagerly in tests).
    admin = APIClient()
    admin.force_authenticate(factories.make_user("boss", staff=True))
    config = {**RELAXED, "box_nms_thresh": 0.9}  # as tests/automatic/test_reviewed_work_kept.py
    answer = admin.post(
        f"/api/datasets/{work.dataset.pk}/automatic-passes/",
        {"kind": "prefill", "config": config},
        format="json",
    )
    assert answer.status_code == 202, answer.content
    assert answer.json()["left_alone"]["reviewed_masks"] == 2

    for mask in (kept, fixed):
        mask.refresh_from_db()
        assert (mask.rle, mask.version, mask.review) == before[mask.pk]
    page.reload()
    wait_ready(page)
    assert item(page, kept).count() == 1 and item(page, fixed).count() == 1
    assert "1 kept, 1 fixed" in page.locator("#prefill-info").inner_text()
    screenshot(page, "rerun-kept-reviews")
