"""An audit from start to report in the browser: a staff admin starts it on the dashboard, a
reviewer takes the sample from their home page into the annotation page, fixes one model mask
and deletes another, marks the images done, and the dashboard's report shows the IoU histogram
and the figures the database holds."""

from __future__ import annotations

import re

import pytest

from annotation.models import Audit, AuditItem, Mask, Role
from annotation.services.audit_metrics import iou
from engine import rle as rle_codec
from tests import factories
from tests.browser.annotate_fixtures import (
    PASSWORD,
    add_ready_image,
    console_errors,
    drag,
    sign_in,
    wait_ready,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def audited(tiny_model):
    reviewer = factories.make_user("rev", password=PASSWORD)
    dataset = factories.make_dataset("quality", [(reviewer, Role.REVIEWER)])
    images, masks = [], []
    for seed in (1, 2):
        image = add_ready_image(dataset, tiny_model, seed=seed, stage=3)
        images.append(image)
        for box in [(20, 20, 90, 80), (150, 100, 230, 180)]:
            masks.append(
                factories.add_mask(
                    image,
                    source="automatic",
                    model_version=tiny_model,
                    rle=factories.rect_rle(image, *box),
                )
            )
    return dataset, reviewer, images, masks


def item(page, mask):
    return page.locator(f"#mask-list li[data-id='{mask.pk}']")


def test_admin_starts_an_audit_a_reviewer_corrects_the_dashboard_reports(
    live_server, browser, page, login, audited, screenshot
):
    dataset, reviewer, images, masks = audited
    login(page)
    page.goto(f"{live_server.url}/admin/dashboard/datasets/{dataset.pk}/")
    page.locator("#audits-link").click()
    page.wait_for_url(f"**/admin/dashboard/datasets/{dataset.pk}/audits/")
    page.select_option("#audit-source", "automatic")
    page.fill("#audit-size", "2")
    page.locator("#audit-start").click()
    page.locator("#audit-list tr[data-audit]").wait_for()
    audit = Audit.objects.get()
    assert (audit.source, audit.sample_size, audit.images.count()) == ("automatic", 2, 2)
    assert page.locator(f"#audit-list tr[data-audit='{audit.pk}'] .status").inner_text() == "open"
    screenshot(page, "started")

    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(10_000)
    review = context.new_page()
    errors = console_errors(review)
    sign_in(review, live_server.url, "rev")
    review.locator(f"#open-audits tr[data-audit='{audit.pk}'] .review-audit").click()
    review.wait_for_url(re.compile(rf".*/annotate/\d+/\?audit={audit.pk}$"))
    wait_ready(review)
    assert review.locator("#audit-badge").inner_text() == f"audit #{audit.pk}"
    first = int(re.search(r"/annotate/(\d+)/", review.url).group(1))
    fixed, deleted = [m for m in masks if m.image_id == first]
    screenshot(review, "sample")

    # Fix: load the mask into the editor, paint past its right side, accept.
    item(review, fixed).locator("button[data-act='edit']").click()
    review.keyboard.press("b")
    drag(review, (95, 40), (115, 60))
    review.keyboard.press("Enter")
    review.wait_for_function(f"() => window.sade.masks.get({fixed.pk}).mask.version === 2")
    item(review, deleted).locator("button[data-act='delete']").click()
    review.wait_for_function(f"() => !window.sade.masks.get({deleted.pk})")
    screenshot(review, "corrected")
    review.locator("#done").click()
    review.locator("#finish-dialog").wait_for()
    review.locator("#finish-next").click()

    # The second image: kept as the model made it.
    review.wait_for_url(re.compile(rf".*/annotate/(?!{first}/)\d+/\?audit={audit.pk}$"))
    wait_ready(review)
    review.locator("#done").click()
    review.locator("#finish-dialog").wait_for()
    review.locator("#finish-next").click()
    review.wait_for_url(f"{live_server.url}/")
    assert errors() == []
    context.close()

    audit.refresh_from_db()
    assert audit.status == "done"
    assert not Mask.objects.filter(pk=deleted.pk).exists()
    now = rle_codec.decode(Mask.objects.get(pk=fixed.pk).rle)
    expected_iou = iou(rle_codec.decode(fixed.rle), now)
    assert 0.5 < expected_iou < 1.0
    item_row = AuditItem.objects.get(mask_id=fixed.pk)
    assert item_row.outcome == "fixed" and item_row.iou == pytest.approx(expected_iou)

    page.goto(f"{live_server.url}/admin/dashboard/audits/{audit.pk}/")
    bars = page.locator("#iou-histogram rect.bar")
    assert bars.count() == 20
    counts = [int(bars.nth(k).get_attribute("data-count")) for k in range(20)]
    assert counts[19] == 2 and sum(counts) == 3
    assert counts[min(19, int(expected_iou * 20))] >= 1
    cells = page.locator("#audit-figures tr[data-key='deleted'] td").all_inner_texts()
    assert cells[0] == "1"
    pairs = page.locator("#audit-figures tr[data-key='pairs'] td").all_inner_texts()
    assert pairs[0] == "3"
    share = page.locator("#audit-figures tr[data-key='share_iou_90'] td").all_inner_texts()
    assert share[0] == f"{100 * sum(v > 0.9 for v in [1, 1, expected_iou]) / 3:.1f}%"
    precision = page.locator("#audit-figures tr[data-key='precision'] td").all_inner_texts()
    assert precision[0] == "75.0%"
    screenshot(page, "report")
