"""A staff admin sees, on a dataset's dashboard, how many masks each label holds (and how many
have none), as the statistics count them."""

from __future__ import annotations

import pytest

from annotation.models import Label, Mask
from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_dashboard_lists_masks_per_label(
    live_server, page, login, screenshot, isolated_storage
):
    dataset = factories.make_dataset("labelled")
    cat = Label.objects.create(dataset=dataset, name="cat", color="#d62728", position=1)
    dog = Label.objects.create(dataset=dataset, name="dog", color="#1f77b4", position=2)
    Label.objects.create(dataset=dataset, name="bird", color="#2ca02c", position=3)
    image = factories.add_image(dataset, seed=1)
    for i, label in enumerate([cat, cat, cat, dog, None, None]):
        factories.add_mask(
            image, rle=factories.rect_rle(image, 2 * i, 0, 2 * i + 2, 4), label=label
        )

    login(page)
    page.goto(f"{live_server.url}/admin/dashboard/datasets/{dataset.pk}/")
    table = page.locator("#label-table")
    table.wait_for()
    rows = [
        (
            row.locator("input[name=name]").input_value(),
            row.locator("td").nth(3).inner_text().strip(),
        )
        for row in table.locator("tbody tr").all()
    ]
    assert rows == [("cat", "3"), ("dog", "1"), ("bird", "0")]
    unlabelled = page.locator("#label-unlabelled strong")
    assert unlabelled.inner_text().strip() == "2"
    assert Mask.objects.filter(image__dataset=dataset, label__isnull=True).count() == 2
    table.scroll_into_view_if_needed()
    screenshot(page)
