"""Labels on the annotation page: the annotator picks the label of the mask being made with the
mouse and with Shift+digit keys, the last label chosen is applied to the next mask (also on the
next image), the mask list shows each mask's label, filters by label and changes a saved mask's
label; the database holds what the page shows. A dataset without labels shows none of it."""

from __future__ import annotations

import pytest

from annotation.models import Label, Mask
from tests.browser.annotate_fixtures import (
    click_image,
    console_errors,
    drag,
    open_image,
    set_brush,
    sign_in,
    wait_predicted,
    work_fixture,  # noqa: F401 (the fixture)
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def labels(work) -> dict[str, Label]:
    rows = [("car", "#e41a1c"), ("person", "#377eb8"), ("tree", "#4daf4a")]
    return {
        name: Label.objects.create(dataset=work.dataset, name=name, color=color, position=i)
        for i, (name, color) in enumerate(rows)
    }


def paint(page, start: tuple[int, int], end: tuple[int, int]) -> None:
    page.keyboard.press("b")
    set_brush(page, 12)
    drag(page, start, end)


def accept_and_wait(page, count: int) -> None:
    """Enter, then waits until the page lists ``count`` saved masks and nothing is pending."""
    page.keyboard.press("Enter")
    page.wait_for_function(
        f"() => window.sade.masks.entries.size === {count} && window.sade.saves.items.length === 0"
    )


def listed_labels(page) -> list[str]:
    return page.locator("#mask-list li .mask-label").all_inner_texts()


def active_choice(page) -> str:
    return page.locator("#label-choices button.active").inner_text()


def wait_label(page, mask_id: int, label_id: int | None) -> None:
    js_label = "null" if label_id is None else str(label_id)
    page.wait_for_function(
        f"() => {{ const e = window.sade.masks.get({mask_id}); "
        f"return e && e.mask.label === {js_label} && window.sade.saves.items.length === 0; }}"
    )


def test_labels_by_mouse_and_shift_digits_list_filter_and_memory(
    live_server, page, work, labels, screenshot
):
    errors = console_errors(page)
    car, person, tree = labels["car"], labels["person"], labels["tree"]
    image, next_image = work.images
    sign_in(page, live_server.url)
    open_image(page, live_server.url, image.pk)

    choices = page.locator("#label-choices button")
    assert [t.split("\n")[-1].strip() for t in choices.all_inner_texts()] == [
        "no label",
        "car",
        "person",
        "tree",
    ]
    assert active_choice(page).endswith("no label")

    # With the mouse: a click on the object, then the label "person" in the picker.
    click_image(page, 100, 100)
    wait_predicted(page, 1)
    page.locator(f"#label-choices button[data-label-id='{person.pk}']").click()
    assert active_choice(page).endswith("person")
    assert page.locator("#current-label").inner_text().strip() == "person"
    screenshot(page, "picked-with-the-mouse")
    accept_and_wait(page, 1)
    first = Mask.objects.get()
    assert first.label == person

    # The next mask starts with the label chosen last; Shift+1 picks the first label instead.
    paint(page, (20, 20), (80, 30))
    assert active_choice(page).endswith("person")
    page.keyboard.press("Shift+Digit1")
    assert active_choice(page).endswith("car")
    accept_and_wait(page, 2)
    # ... and the one after keeps "car" without a key.
    paint(page, (20, 200), (90, 210))
    accept_and_wait(page, 3)
    # Shift+0: no label.
    paint(page, (200, 40), (260, 50))
    page.keyboard.press("Shift+Digit0")
    assert active_choice(page).endswith("no label")
    accept_and_wait(page, 4)
    masks = list(Mask.objects.order_by("id"))
    assert [m.label_id for m in masks] == [person.pk, car.pk, car.pk, None]
    assert listed_labels(page) == ["person", "car", "car", "no label"]
    screenshot(page, "list-shows-labels")

    # The filter lists (and draws) only the masks with one label, or with none.
    page.select_option("#label-filter", str(car.pk))
    rows = page.locator("#mask-list li")
    assert [int(i) for i in rows.evaluate_all("ls => ls.map((l) => l.dataset.id)")] == [
        masks[1].pk,
        masks[2].pk,
    ]
    assert page.locator("#mask-count").inner_text() == "(2 of 4)"
    assert page.evaluate("() => window.sade.masks.visible().length") == 2
    screenshot(page, "filtered-by-car")
    page.select_option("#label-filter", "none")
    assert listed_labels(page) == ["no label"]
    page.select_option("#label-filter", "")
    assert len(listed_labels(page)) == 4

    # A saved mask's label changes from its row, and with Shift+digit on the selected mask.
    row = page.locator(f"#mask-list li[data-id='{masks[3].pk}']")
    row.locator("select.label-select").select_option(str(tree.pk))
    wait_label(page, masks[3].pk, tree.pk)
    page.locator(f"#mask-list li[data-id='{masks[0].pk}'] .label").click()
    page.keyboard.press("Shift+Digit3")
    wait_label(page, masks[0].pk, tree.pk)
    relabelled = {m.pk: (m.label_id, m.version) for m in Mask.objects.all()}
    assert relabelled[masks[3].pk] == (tree.pk, 2) and relabelled[masks[0].pk] == (tree.pk, 2)
    assert relabelled[masks[1].pk] == (car.pk, 1)
    assert listed_labels(page) == ["tree", "car", "car", "tree"]
    # Relabelling saved masks leaves the label remembered for new ones alone.
    assert active_choice(page).endswith("no label")
    screenshot(page, "relabelled-from-the-list")

    # Re-editing a saved mask shows its label in the picker; a key there changes it with the edit.
    page.locator(f"#mask-list li[data-id='{masks[1].pk}'] button[data-act='edit']").click()
    assert active_choice(page).endswith("car")
    page.keyboard.press("Shift+Digit2")
    assert active_choice(page).endswith("person")
    page.keyboard.press("Enter")
    wait_label(page, masks[1].pk, person.pk)
    edited = Mask.objects.get(pk=masks[1].pk)
    assert (edited.label, edited.version) == (person, 2)
    assert listed_labels(page) == ["tree", "person", "car", "tree"]

    # The label chosen last (person, in the edit) is remembered on the next image (per dataset,
    # in the browser).
    page.keyboard.press("Escape")  # nothing selected, no mask in the making
    assert active_choice(page).endswith("person")
    open_image(page, live_server.url, next_image.pk)
    assert active_choice(page).endswith("person")
    paint(page, (30, 30), (90, 40))
    accept_and_wait(page, 1)
    assert Mask.objects.get(image=next_image).label == person
    screenshot(page, "remembered-on-the-next-image")
    assert errors() == []


def test_a_dataset_without_labels_stays_class_agnostic(live_server, page, work, screenshot):
    errors = console_errors(page)
    sign_in(page, live_server.url)
    open_image(page, live_server.url, work.images[0].pk)

    assert page.locator("#label-picker").is_hidden()
    assert page.locator("#label-filter").is_hidden()
    paint(page, (20, 20), (80, 30))
    page.keyboard.press("Shift+Digit1")
    assert "no labels" in page.locator("#status").inner_text()
    accept_and_wait(page, 1)
    assert Mask.objects.get().label is None
    assert page.locator("#mask-list .mask-label").count() == 0
    screenshot(page)
    assert errors() == []
