"""What goes wrong in real use: clicks outside the image, Enter pressed twice, the network failing
during a save (the mask waits and is sent again with the same client_id, never lost, even across
a reload), a refresh of the list overlapping a save or a delete (neither is undone by it), leaving
the page with a mask not accepted yet (the browser asks), and two tabs or two annotators on one
image (holds shown, masks shared, a stale edit refused with a plain message)."""

from __future__ import annotations

import pytest

from annotation.models import Mask, Role
from annotation.services.image_holds import claim_next_image
from tests import factories
from tests.browser.annotate_fixtures import (
    PASSWORD,
    click_image,
    drag,
    open_image,
    sign_in,
    wait_predicted,
    wait_ready,
    work_fixture,  # noqa: F401 (the fixture)
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def paint(page, start=(50, 50), end=(120, 60)) -> None:
    page.keyboard.press("b")
    drag(page, start, end)


def mask_posts(page) -> list[dict]:
    bodies: list[dict] = []
    page.on(
        "request",
        lambda r: (
            bodies.append(r.post_data_json)
            if r.method == "POST" and r.url.endswith("/api/masks/")
            else None
        ),
    )
    return bodies


def test_clicks_outside_the_image_send_nothing(live_server, page, work, screenshot):
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "/predict/" in r.url else None)
    sign_in(page, live_server.url)
    open_image(page, live_server.url, work.images[0].pk)
    page.evaluate("() => window.sade.toggleHover()")

    box = page.locator("#canvas").bounding_box()
    corner = page.evaluate("() => window.sade.view.toClient(0, 0)")
    assert corner["y"] - box["y"] > 20, "the fitted image leaves a margin above it"
    page.mouse.click(corner["x"] + 30, box["y"] + 5)  # above the image
    page.mouse.click(corner["x"] + 30, box["y"] + 5, button="right")
    screenshot(page)

    assert page.evaluate("() => window.sade.metrics.ignoredClicks") == 2
    assert "outside the image" in page.locator("#status").inner_text()
    assert requests == []
    assert page.evaluate("() => window.sade.editor.isEmpty()")


def test_double_enter_saves_once(live_server, page, work):
    posts = mask_posts(page)
    sign_in(page, live_server.url)
    open_image(page, live_server.url, work.images[0].pk)
    paint(page)

    page.keyboard.press("Enter")
    page.keyboard.press("Enter")
    page.wait_for_function("() => window.sade.masks.entries.size === 1")

    assert Mask.objects.count() == 1
    assert len(posts) == 1


def test_a_network_error_keeps_the_mask_and_retries_with_the_same_client_id(
    live_server, page, work, screenshot
):
    posts = mask_posts(page)
    failed: list[str] = []

    def fail_first(route):
        if route.request.method == "POST" and not failed:
            failed.append(route.request.url)
            route.abort("internetdisconnected")
        else:
            route.continue_()

    page.route("**/api/masks/", fail_first)
    sign_in(page, live_server.url)
    open_image(page, live_server.url, work.images[0].pk)
    page.evaluate("() => { window.sade.saves.retryBaseMs = 1500; }")
    paint(page)

    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelector('#pending-list .retrying') !== null")
    screenshot(page, "pending")
    assert "not saved yet" in page.locator("#pending-list").inner_text()
    page.wait_for_function("() => window.sade.masks.entries.size === 1")
    screenshot(page, "saved")

    assert len(failed) == 1 and len(posts) == 2
    assert posts[0]["client_id"] == posts[1]["client_id"]
    mask = Mask.objects.get()
    assert str(mask.client_id) == posts[0]["client_id"]
    assert page.locator("#pending-list li").count() == 0


def test_a_mask_not_saved_survives_a_reload_and_is_sent_once(live_server, page, work, screenshot):
    sign_in(page, live_server.url)
    open_image(page, live_server.url, work.images[0].pk)
    page.route("**/api/masks/", lambda route: route.abort("internetdisconnected"))
    paint(page)
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelector('#pending-list .retrying') !== null")

    page.unroute("**/api/masks/")
    page.reload()
    wait_ready(page)
    page.wait_for_function("() => window.sade.masks.entries.size === 1")
    screenshot(page)

    assert Mask.objects.count() == 1
    assert page.evaluate("() => localStorage.getItem('sade-pending-saves-v1')") == "[]"


def test_a_refresh_overlapping_a_save_and_a_delete_undoes_neither(
    live_server, page, work, screenshot
):
    image = work.images[0]
    old = factories.add_mask(
        image, author=work.annotator, rle=factories.rect_rle(image, 5, 5, 30, 30)
    )
    sign_in(page, live_server.url)
    open_image(page, live_server.url, image.pk)
    held = []

    def the_list(url: str) -> bool:
        return "/api/masks/?image=" in url

    page.route(the_list, lambda route: held.append((route, route.fetch())))
    # A refresh starts; the server answers it at once (the list without the new mask, with the
    # old one), but the answer reaches the page only after the save and the delete below.
    page.evaluate("() => { window.sade.masks.load(); }")
    page.wait_for_function("() => window.sade.masks.loadsAsked > 0")
    while not held:
        page.wait_for_timeout(20)
    paint(page)
    page.keyboard.press("Enter")
    page.wait_for_function("() => window.sade.masks.entries.size === 2")
    page.locator(f"#mask-list li[data-id='{old.pk}'] button[data-act='delete']").click()
    new = Mask.objects.exclude(pk=old.pk).get()

    route, response = held[0]
    route.fulfill(response=response)
    page.wait_for_function("() => window.sade.masks.loadsApplied === window.sade.masks.loadsAsked")
    page.unroute(the_list)
    screenshot(page)

    ids = page.evaluate("() => [...window.sade.masks.entries.keys()]")
    assert ids == [new.pk]
    assert page.locator("#image-masks").inner_text() == "1 (1 yours)"


def test_leaving_with_a_mask_not_accepted_asks_first(live_server, page, work):
    sign_in(page, live_server.url)
    open_image(page, live_server.url, work.images[0].pk)
    asked = []

    def answer(dialog):
        asked.append(dialog.type)
        dialog.dismiss()

    page.on("dialog", answer)
    click_image(page, 100, 100)
    wait_predicted(page, 1)
    page.close(run_before_unload=True)
    page.wait_for_timeout(300)

    assert asked == ["beforeunload"] and not page.is_closed()
    page.keyboard.press("Escape")  # nothing left to lose: it closes without asking
    with page.expect_event("close"):
        page.close(run_before_unload=True)
    assert asked == ["beforeunload"]


def test_two_tabs_share_masks_and_a_stale_edit_is_refused(live_server, page, work, screenshot):
    image = work.images[0]
    sign_in(page, live_server.url)
    claim_next_image(work.dataset, work.annotator, 1)
    open_image(page, live_server.url, image.pk)
    second = page.context.new_page()
    open_image(second, live_server.url, image.pk)
    page.wait_for_function("() => !document.getElementById('hold-banner').hidden")
    assert "another tab" in second.locator("#hold-banner").inner_text()

    # A mask saved in the first tab appears in the second.
    paint(page)
    page.keyboard.press("Enter")
    page.wait_for_function("() => window.sade.masks.entries.size === 1")
    second.wait_for_function("() => window.sade.masks.entries.size === 1")
    mask = Mask.objects.get()

    # Both start editing it; the first saves; the second's save is refused, not applied.
    item = f"#mask-list li[data-id='{mask.pk}'] button[data-act='edit']"
    second.locator(item).click()
    page.locator(item).click()
    drag(page, (200, 200), (230, 210))
    page.keyboard.press("Enter")
    page.wait_for_function(f"() => window.sade.masks.get({mask.pk}).mask.version === 2")
    second.keyboard.press("b")
    drag(second, (20, 200), (40, 210))
    second.keyboard.press("Enter")
    second.wait_for_function("() => document.getElementById('status').classList.contains('error')")
    screenshot(second, "conflict")

    assert "Someone else changed mask" in second.locator("#status").inner_text()
    second.wait_for_function(f"() => window.sade.masks.get({mask.pk}).mask.version === 2")
    mask.refresh_from_db()
    assert mask.version == 2
    assert mask.area == page.evaluate(f"() => window.sade.masks.get({mask.pk}).mask.area")
    second.close()


def test_another_annotators_hold_is_shown(live_server, page, work, screenshot):
    other = factories.make_user("bob", password=PASSWORD)
    work.dataset.memberships.create(user=other, role=Role.ANNOTATOR)
    claim_next_image(work.dataset, work.annotator, 1)
    sign_in(page, live_server.url, username="bob")

    open_image(page, live_server.url, work.images[0].pk)
    banner = page.locator("#hold-banner")
    screenshot(page)

    assert banner.is_visible()
    assert f"Annotator #{work.annotator.pk} holds this image" in banner.inner_text()
