"""An admin edits a dataset's label set on its dashboard: adds labels (a refused name says why),
renames, recolours and reorders one, and deletes one whose masks stay, unlabelled. The database
holds what the page shows."""

from __future__ import annotations

import pytest

from annotation.models import Label, Mask
from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def dataset(isolated_storage, tiny_model):
    dataset = factories.make_dataset("parks")
    image = factories.add_image(dataset, 40, 32)
    bench = Label.objects.create(dataset=dataset, name="bench", color="#aa0000")
    factories.add_mask(image, label=bench)
    factories.add_mask(image, label=bench)
    return dataset


def names(page) -> list[str]:
    return page.locator("#label-table tbody input[name=name]").evaluate_all(
        "inputs => inputs.map((i) => i.value)"
    )


def test_an_admin_adds_renames_recolours_and_deletes_labels(
    live_server, page, login, screenshot, dataset
):
    login(page)
    page.goto(f"{live_server.url}/admin/dashboard/datasets/{dataset.pk}/")
    page.locator("#updated").filter(has_text="Updated").wait_for()
    assert names(page) == ["bench"]

    form = page.locator("#label-form")
    form.locator("input[name=name]").fill("tree")
    form.locator("input[name=color]").fill("#00aa00")
    form.locator("button[type=submit]").click()
    page.locator("#label-message").filter(has_text='Label "tree" added').wait_for()
    assert names(page) == ["bench", "tree"]
    tree = Label.objects.get(name="tree")
    assert tree.color == "#00aa00" and tree.position == 1

    form.locator("input[name=name]").fill("bench")
    form.locator("button[type=submit]").click()
    refused = page.locator("#label-message.error")
    refused.filter(has_text="already has a label named 'bench'").wait_for()
    assert Label.objects.filter(dataset=dataset).count() == 2
    screenshot(page, "added-and-refused")

    # Rename, recolour and move "tree" first.
    row = page.locator(f"#label-table tr[data-label-id='{tree.pk}']")
    row.locator("input[name=name]").fill("oak tree")
    row.locator("input[name=color]").fill("#336699")
    row.locator("input[name=position]").fill("0")
    row.locator("button[data-act=save]").click()
    page.locator("#label-message").filter(has_text='Label "oak tree" saved').wait_for()
    tree.refresh_from_db()
    assert (tree.name, tree.color, tree.position) == ("oak tree", "#336699", 0)
    # Both at position 0 now: the older label comes first until bench moves down.
    assert names(page) == ["bench", "oak tree"]
    bench = Label.objects.get(name="bench")
    bench_row = page.locator(f"#label-table tr[data-label-id='{bench.pk}']")
    bench_row.locator("input[name=position]").fill("1")
    bench_row.locator("button[data-act=save]").click()
    page.locator("#label-message").filter(has_text='Label "bench" saved').wait_for()
    assert names(page) == ["oak tree", "bench"]
    screenshot(page, "renamed")

    # Delete "bench": its two masks stay, without a label.
    page.once("dialog", lambda dialog: dialog.accept())
    bench_row.locator("button[data-act=delete]").click()
    page.locator("#label-message").filter(has_text="2 masks have no label now").wait_for()
    assert names(page) == ["oak tree"]
    assert not Label.objects.filter(pk=bench.pk).exists()
    assert Mask.objects.count() == 2 and not Mask.objects.filter(label__isnull=False).exists()
    screenshot(page, "deleted")
