"""Before launching a pass or a pre-fill, an admin sees what it would touch: the images it
segments, what it leaves as people reviewed it, the masks it replaces, and a warning when the
active model (the untrained cold start) will not pass the preset's thresholds; a pass that wrote
no mask says why. Presets (paper, relaxed) and the whole dataset as the selection."""

from __future__ import annotations

import pytest

from annotation.models import AutomaticPass, Image, MaskSource, Stage
from annotation.services import automatic
from annotation.services.stats import dataset_stats
from tests import factories
from tests.automatic.conftest import RELAXED

pytestmark = pytest.mark.django_db


def preview_url(dataset) -> str:
    return f"/api/datasets/{dataset.pk}/automatic-passes/preview/"


@pytest.fixture
def stage2(dataset, dataset_admin, tiny_model):
    """Three stage 2 images: one a person marked done, one with a pre-fill a person kept and a
    mask they drew, one with an earlier pre-fill's unreviewed masks."""
    images = [factories.add_image(dataset, 40, 32, seed=seed) for seed in (1, 2, 3)]
    Image.objects.filter(pk__in=[i.pk for i in images]).update(stage=Stage.SEMI_AUTOMATIC)
    Image.objects.filter(pk=images[0].pk).update(status="done")
    prefilled = dict(source=MaskSource.PREFILLED, model_version=tiny_model, stage=2)
    factories.add_mask(images[1], review="kept", **prefilled)
    factories.add_mask(images[1], source=MaskSource.MANUAL, stage=2)
    for _ in range(2):
        factories.add_mask(images[2], **prefilled)
    return images


def test_the_preview_counts_what_the_pass_would_touch_and_records_nothing(
    client_for, dataset_admin, dataset, stage2
):
    answer = client_for(dataset_admin).post(
        preview_url(dataset), {"kind": "prefill"}, format="json"
    )
    assert answer.status_code == 200, answer.content
    preview = answer.json()
    assert (preview["kind"], preview["preset"], preview["stage"]) == ("prefill", "paper", 2)
    assert preview["selected_images"] == 3 and preview["images_to_process"] == 2
    assert preview["left_alone"] == {"done_images": 1, "reviewed_masks": 1, "people_masks": 1}
    assert preview["masks_replaced"] == 2
    assert preview["config"]["pred_iou_thresh"] == 0.94
    assert preview["model"]["untrained"] is True
    [warning] = preview["warnings"]
    assert "untrained cold start" in warning and "will most likely keep 0 masks" in warning
    assert "'relaxed'" in warning and "engine.checkpoints download vit_b" in warning
    assert not AutomaticPass.objects.exists()


def test_the_relaxed_preset_lowers_the_thresholds_and_drops_the_warning(
    client_for, dataset_admin, dataset, stage2
):
    body = {"kind": "automatic", "preset": "relaxed", "whole_dataset": True}
    preview = client_for(dataset_admin).post(preview_url(dataset), body, format="json").json()
    assert preview["config"]["pred_iou_thresh"] == 0.5
    assert preview["config"]["stability_score_thresh"] == 0.8
    assert preview["config"]["crop_n_layers"] == 2  # the rest is the paper's recipe
    assert preview["selected_images"] == 3 and preview["stage"] is None
    assert preview["warnings"] == []


def test_a_selection_of_only_done_images_is_previewed_with_a_warning(
    client_for, dataset_admin, dataset, stage2
):
    body = {"kind": "prefill", "image_ids": [stage2[0].pk], "preset": "relaxed"}
    preview = client_for(dataset_admin).post(preview_url(dataset), body, format="json").json()
    assert preview["images_to_process"] == 0
    assert "marked done by people: there is nothing to segment" in preview["warnings"][0]


@pytest.mark.parametrize(
    ("who", "status"),
    [(None, (401, 403)), ("annotator", (403,)), ("outsider", (404,)), ("admin_user", (200,))],
)
def test_only_the_dataset_admins_preview(
    who, status, request, client_for, dataset, stage2, other_dataset
):
    user = request.getfixturevalue(who) if who else None
    answer = client_for(user).post(preview_url(dataset), {"kind": "prefill"}, format="json")
    assert answer.status_code in status


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"kind": "prefill", "preset": "lax"}, "preset"),
        ({"kind": "prefill", "stage": 2, "whole_dataset": True}, "only one of them"),
        ({"kind": "prefill", "stage": 1}, "no image in stage 1"),
        ({"kind": "prefill", "image_ids": [999999]}, "not in dataset"),
    ],
)
def test_a_bad_preview_answers_400_saying_why(
    client_for, dataset_admin, dataset, stage2, body, words
):
    answer = client_for(dataset_admin).post(preview_url(dataset), body, format="json")
    assert answer.status_code == 400
    assert words in str(answer.json())


def test_a_prefill_that_wrote_nothing_says_why(
    client_for, dataset_admin, dataset, stage2, django_capture_on_commit_callbacks
):
    client = client_for(dataset_admin)
    # The preset's thresholds on a 2x2 grid: the full 32x32 grid only takes longer.
    body = {"kind": "prefill", "config": {"points_per_side": 2}}
    with django_capture_on_commit_callbacks(execute=True):
        launched = client.post(f"/api/datasets/{dataset.pk}/automatic-passes/", body, format="json")
    assert launched.status_code == 202
    run = client.get(f"/api/automatic-passes/{launched.json()['id']}/").json()
    assert (run["status"], run["mask_count"], run["done_images"]) == ("done", 0, 2)
    assert run["note"].startswith("0 masks passed the thresholds (predicted IoU > 0.94")
    assert "untrained cold start; try the 'relaxed' preset" in run["note"]
    [listed] = dataset_stats(dataset)["automatic_passes"]
    assert listed["note"] == run["note"]


def test_a_pass_that_wrote_masks_has_no_note(
    dataset, dataset_admin, stage2, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        run = automatic.launch_automatic_pass(
            dataset, dataset_admin, "automatic", config=RELAXED, whole_dataset=True
        )
    [listed] = dataset_stats(dataset)["automatic_passes"]
    assert listed["masks"] > 0 and listed["note"] == ""
    assert run.total_images == 2  # the done image is left out
