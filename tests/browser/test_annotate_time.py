"""Time on the annotation page: active time pauses after a minute without input, the per-mask
timer runs from the first prompt to accept, a gentle hint appears after 30 seconds on one mask,
heartbeats count active time on the server, and finishing shows the session's summary. The
figures (masks on this image, yours, seconds per mask, the summary's) are counted from the
server's list of the image's masks: right after a reload, after a delete and its undo, and once
however often Done is pressed."""

from __future__ import annotations

import pytest

from annotation.models import AnnotatorSession, ImageStatus, Mask
from tests import factories
from tests.browser.annotate_fixtures import (
    drag,
    open_image,
    sign_in,
    work_fixture,  # noqa: F401 (the fixture)
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_gaps_over_a_minute_without_input_are_not_counted(live_server, page):
    page.goto(f"{live_server.url}/login/")

    total = page.evaluate(
        """async () => {
            const {ActivityClock} = await import('/static/frontend/annotate/timing.js');
            let now = 0;
            const clock = new ActivityClock(() => now);
            for (const t of [10_000, 20_000, 110_000, 115_000, 120_000]) {
                now = t;
                clock.touch();
            }
            const atLastInput = clock.totalMs();
            now = 200_000;  // idle for 80 s: a pause
            return [atLastInput, clock.totalMs(), clock.idle()];
        }"""
    )

    # 0-10-20 s active, 20-110 s a pause, 110-115-120 s active.
    assert total == [30_000, 30_000, True]


def test_mask_timer_hint_heartbeat_and_summary(live_server, page, work, screenshot):
    image = work.images[0]
    sign_in(page, live_server.url)
    page.locator("tr[data-stage='1'] button.next-image").click()
    page.wait_for_url(f"**/annotate/{image.pk}/")
    open_image(page, live_server.url, image.pk)

    page.keyboard.press("b")
    drag(page, (50, 50), (120, 60))
    # Thirty seconds on one mask: pretend the first stroke was 31 active seconds ago.
    page.evaluate("() => { window.sade.editor.startMs -= 31_000; }")
    hint = page.locator("#hint")
    hint.wait_for()
    assert "move on" in hint.inner_text()
    screenshot(page, "hint")
    page.keyboard.press("Enter")
    page.wait_for_function("() => window.sade.masks.entries.size === 1")
    first = Mask.objects.get()
    assert 31 <= first.seconds_spent < 60

    drag(page, (150, 150), (180, 170))
    page.wait_for_timeout(300)
    page.keyboard.press("Enter")
    page.wait_for_function("() => window.sade.masks.entries.size === 2")
    second = Mask.objects.exclude(pk=first.pk).get()
    assert 0 < second.seconds_spent < 20

    page.evaluate("() => window.sade.session.heartbeat()")
    session = AnnotatorSession.objects.get(image=image)
    assert session.active_seconds > 0 and session.ended_at is None

    page.keyboard.press("n")
    page.locator("#finish-dialog").wait_for()
    summary = page.locator("#finish-details").inner_text()
    screenshot(page, "summary")
    session.refresh_from_db()
    assert session.ended_at is not None and session.masks_made == 2
    assert "2 mask(s) on this image, 2 made by you" in summary
    per_mask = (first.seconds_spent + second.seconds_spent) / 2
    assert f"{per_mask:.1f} s per mask of yours" in summary
    assert page.locator("#seconds-per-mask").inner_text() == f"{per_mask:.1f} s"

    # The next image opens (it was prefetched and its embedding is ready).
    page.locator("#finish-next").click()
    page.wait_for_url(f"**/annotate/{work.images[1].pk}/")


def test_figures_follow_the_servers_masks_through_reload_delete_undo_and_double_done(
    live_server, page, work, screenshot
):
    image = work.images[0]
    mine = [
        factories.add_mask(
            image, author=work.annotator, seconds_spent=s, rle=factories.rect_rle(image, *box)
        )
        for s, box in [(10, (10, 10, 40, 40)), (20, (60, 10, 90, 40))]
    ]
    other = factories.make_user("other")
    factories.add_mask(
        image, author=other, seconds_spent=7, rle=factories.rect_rle(image, 100, 100, 140, 140)
    )
    completes = []
    page.on("request", lambda r: completes.append(r.url) if r.url.endswith("/complete/") else None)
    sign_in(page, live_server.url)
    page.locator("tr[data-stage='1'] button.next-image").click()
    page.wait_for_url(f"**/annotate/{image.pk}/")
    open_image(page, live_server.url, image.pk)  # a reload: the figures come from the server

    assert page.locator("#mask-count").inner_text() == "(3)"
    assert page.locator("#image-masks").inner_text() == "3 (2 yours)"
    assert page.locator("#seconds-per-mask").inner_text() == "15.0 s"
    # Today's work as the server counts it (GET /api/me/today/), not this tab's.
    page.wait_for_function(
        "() => document.getElementById('browser-session').textContent.startsWith('2 masks')"
    )
    assert page.locator("#browser-session").inner_text() == "2 masks on 0 images, 15.0 s per mask"
    screenshot(page, "reloaded")

    # Delete one of mine: the figures drop at once; Ctrl+Z brings it back; delete it again.
    page.locator(f"#mask-list li[data-id='{mine[1].pk}'] button[data-act='delete']").click()
    assert page.locator("#image-masks").inner_text() == "2 (1 yours)"
    assert page.locator("#seconds-per-mask").inner_text() == "10.0 s"
    page.keyboard.press("Control+z")
    assert page.locator("#image-masks").inner_text() == "3 (2 yours)"
    assert "is back" in page.locator("#status").inner_text()
    screenshot(page, "undone")
    assert Mask.objects.filter(pk=mine[1].pk).exists()
    page.locator(f"#mask-list li[data-id='{mine[1].pk}'] button[data-act='delete']").click()
    assert page.locator("#image-masks").inner_text() == "2 (1 yours)"

    # Done pressed twice: one complete, the deleted mask not counted, the image counted once.
    page.locator("#done").dblclick()
    page.locator("#finish-dialog").wait_for()
    summary = page.locator("#finish-details").inner_text()
    screenshot(page, "done")
    assert "2 mask(s) on this image, 1 made by you" in summary
    assert "Today (UTC, all your work): 1 masks on 1 images, 10.0 s per mask." in summary
    assert len(completes) == 1
    assert not Mask.objects.filter(pk=mine[1].pk).exists()
    image.refresh_from_db()
    assert image.status == ImageStatus.DONE

    # Esc closes the summary and stays; Done again shows it again without marking again.
    page.keyboard.press("Escape")
    page.wait_for_function("() => !document.getElementById('finish-dialog').open")
    assert page.url.endswith(f"/annotate/{image.pk}/")
    page.locator("#done").click()
    page.locator("#finish-dialog").wait_for()
    assert len(completes) == 1
    assert "on 1 images" in page.locator("#finish-details").inner_text()
