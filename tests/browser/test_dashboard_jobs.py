"""An admin runs the data engine from the dataset dashboard: previews and launches a stage 2
pre-fill (and learns why the cold-start model pre-filled nothing), follows a training round's
phase, step, loss and ETA in the jobs panel as it moves and cancels it there, and moves images
between stages in bulk. Celery runs inline (tests/conftest.py), as in the other dashboard
tests."""

from __future__ import annotations

import pytest

from annotation.models import AutomaticPass, Image, Stage
from modeltrain.models import TrainingRound
from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def stage2(isolated_storage, tiny_model):
    """Three small stage 2 images, one of them marked done by a person."""
    dataset = factories.make_dataset("kitchens")
    images = [factories.add_image(dataset, 40, 32, seed=seed) for seed in range(3)]
    Image.objects.filter(dataset=dataset).update(stage=Stage.SEMI_AUTOMATIC)
    Image.objects.filter(pk=images[0].pk).update(status="done")
    return dataset


def open_dashboard(page, live_server, login, dataset):
    login(page)
    page.goto(f"{live_server.url}/admin/dashboard/datasets/{dataset.pk}/")
    page.locator("#updated").filter(has_text="Updated").wait_for()


def test_a_prefill_is_previewed_launched_and_says_why_it_made_nothing(
    live_server, page, login, screenshot, stage2
):
    open_dashboard(page, live_server, login, stage2)
    form = page.locator("#pass-form")
    assert form.locator("button[type=submit]").is_disabled()  # no launch before a preview
    form.locator("input[name=points_per_side]").fill("2")  # the preset's thresholds, fewer points
    assert "predicted IoU > 0.94 and stability ≥ 0.97" in page.locator("#pass-preset").inner_text()
    page.click("#pass-preview-button")
    preview = page.locator("#pass-preview")
    preview.filter(has_text="Would segment").wait_for()
    text = preview.inner_text()
    assert "Would segment 2 of the 3 images in stage 2." in text
    assert "1 images marked done" in text
    assert "untrained cold start" in text and "will most likely keep 0 masks" in text
    assert not AutomaticPass.objects.exists()
    screenshot(page, "preview")

    form.locator("button[type=submit]").click()
    message = page.locator("#pass-message")
    message.filter(has_text="done").wait_for()
    run = AutomaticPass.objects.get()
    assert (run.kind, run.stage, run.total_images, run.status) == ("prefill", 2, 2, "done")
    assert run.config["pred_iou_thresh"] == 0.94 and run.config["points_per_side"] == 2
    assert f"Pass #{run.pk} done: 2 / 2 images" in message.inner_text()
    assert "0 masks passed the thresholds" in message.inner_text()
    assert "try the 'relaxed' preset" in message.inner_text()
    row = page.locator(f"#jobs-table tr[data-job='automatic_pass-{run.pk}']")
    assert "done" in row.inner_text() and "2 / 2 images" in row.inner_text()
    assert "untrained cold start" in page.locator(f"#passes li[data-pass='{run.pk}']").inner_text()
    screenshot(page, "launched")

    # An automatic pass over a list of ids, relaxed: lower thresholds, no warning.
    ids = sorted(Image.objects.filter(dataset=stage2).values_list("pk", flat=True))
    form.locator("select[name=kind]").select_option("automatic")
    assert form.locator("button[type=submit]").is_disabled()  # the preview is of other settings
    form.locator("select[name=scope]").select_option("selection")
    # The first is the image marked done; one image keeps the paper's 21 crops quick.
    form.locator("input[name=image_ids]").fill(f"{ids[0]}-{ids[1]}")
    form.locator("select[name=preset]").select_option("relaxed")
    form.locator("input[name=points_per_side]").fill("4")  # 1 point in the 4x4 crops
    assert "predicted IoU > 0.5 and stability ≥ 0.8" in page.locator("#pass-preset").inner_text()
    page.click("#pass-preview-button")
    preview.filter(has_text="preset relaxed").wait_for()
    assert "Would segment 1 of the 2 images selected." in preview.inner_text()
    assert "keep 0 masks" not in preview.inner_text()
    form.locator("button[type=submit]").click()
    message.filter(has_text="Pass #").filter(has_text="done").filter(
        has_text=f"#{run.pk + 1}"
    ).wait_for(timeout=30_000)
    second = AutomaticPass.objects.exclude(pk=run.pk).get()
    assert (second.kind, second.stage, second.total_images) == ("automatic", None, 1)
    assert second.config["pred_iou_thresh"] == 0.5 and second.config["crop_n_layers"] == 2
    page.locator(f"#jobs-table tr[data-job='automatic_pass-{second.pk}']").wait_for()
    screenshot(page, "automatic")


def test_the_jobs_panel_follows_a_round_and_cancels_it(
    live_server, page, login, screenshot, stage2, tiny_model
):
    training = TrainingRound.objects.create(
        dataset=stage2, parent=tiny_model, status="running", phase="train", step=30,
        total_steps=120, loss=0.4375, eta_seconds=95.0, train_masks=40, heldout_masks=6,
    )  # fmt: skip
    open_dashboard(page, live_server, login, stage2)
    row = page.locator(f"#jobs-table tr[data-job='training_round-{training.pk}']")
    text = row.inner_text()
    assert "running" in text and "30 / 120 steps" in text
    assert "phase train · step 30 / 120 · loss 0.4375 · ETA 1 min 35 s" in text
    # The worker moves on: the panel, polling the API, follows.
    TrainingRound.objects.filter(pk=training.pk).update(step=90, loss=0.25, eta_seconds=20)
    row.filter(has_text="step 90 / 120 · loss 0.2500 · ETA 20 s").wait_for()
    screenshot(page, "progressed")

    row.locator("button", has_text="Cancel").click()
    row.filter(has_text="cancelled").wait_for()
    training.refresh_from_db()
    assert training.status == "cancelled"
    assert row.locator("button").count() == 0
    assert "cancelled" in page.locator("#jobs-message").inner_text()
    screenshot(page)


def test_images_move_between_stages_in_bulk(live_server, page, login, screenshot, stage2):
    open_dashboard(page, live_server, login, stage2)
    form = page.locator("#stage-form")
    form.locator("select[name=from_stage]").select_option("2")
    form.locator("select[name=from_status]").select_option("pending")
    form.locator("select[name=stage]").select_option("3")
    count = page.locator("#stage-count")
    assert count.inner_text() == "2 pending images in stage 2 would move to stage 3 (pending)."
    screenshot(page, "before")
    form.locator("button[type=submit]").click()
    page.locator("#stage-message").filter(has_text="moved").wait_for()
    assert page.locator("#stage-message").inner_text() == "2 images moved to stage 3 (pending)."
    stages = sorted(Image.objects.filter(dataset=stage2).values_list("stage", "status"))
    assert stages == [(2, "done"), (3, "pending"), (3, "pending")]
    # The count follows the stats the page re-read: none pending left in stage 2.
    count.filter(has_text="0 pending images").wait_for()
    assert form.locator("button[type=submit]").is_disabled()
    screenshot(page)

    # A round with no masks to learn from is refused, and the page says why.
    page.click("#round-form button[type=submit]")
    refused = page.locator("#round-message").filter(has_text="refused")
    refused.wait_for()
    assert "no masks to train on" in refused.inner_text()
    assert not TrainingRound.objects.exists()
