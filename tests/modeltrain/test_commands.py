"""manage.py evaluate and train_round."""

from __future__ import annotations

import json

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from PIL import Image as PILImage

from modeltrain.models import TrainingRound
from registry.active import get_active_version
from tests.modeltrain.conftest import HELDOUT_METRICS


def write_pair(images, masks, stem: str, values: np.ndarray, ext: str = "jpg"):
    pixels = np.zeros((*values.shape, 3), np.uint8)
    pixels[values > 0] = 200
    PILImage.fromarray(pixels).save(images / f"{stem}.{ext}")
    PILImage.fromarray(values.astype(np.uint8)).save(masks / f"{stem}.png")


@pytest.fixture
def folders(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    one = np.zeros((32, 40), np.uint8)
    one[8:24, 10:30] = 255
    one[7, 10:30] = 128  # an ignored band above the object
    write_pair(images, masks, "one", one)
    two = np.zeros((32, 40), np.uint8)
    two[2:10, 2:10], two[20:30, 25:38] = 1, 2  # two objects in one PNG
    write_pair(images, masks, "two", two, "png")
    PILImage.new("RGB", (8, 8)).save(images / "lonely.png")  # no mask
    return images, masks


@pytest.mark.django_db
def test_evaluate_prints_the_summary_as_json(folders, tiny_model, capsys):
    images, masks = folders

    call_command(
        "evaluate",
        "--images",
        str(images),
        "--masks",
        str(masks),
        "--max-clicks",
        "2",
        "--per-object",
    )

    out = capsys.readouterr()
    answer = json.loads(out.out)
    assert answer["images"] == 2 and answer["masks"] == 3
    assert HELDOUT_METRICS <= set(answer)
    assert 1 <= answer["noc90"] <= 2 and answer["max_clicks"] == 2
    assert answer["model"]["id"] == tiny_model.pk
    assert sorted(o["image"] for o in answer["objects"]) == ["one", "two", "two"]
    assert "lonely.png has no mask" in out.err


@pytest.mark.django_db
def test_evaluate_names_the_model_by_id_or_name_and_refuses_unknown_ones(folders, tiny_model):
    images, masks = folders
    args = ["--images", str(images), "--masks", str(masks), "--max-clicks", "1", "--limit", "1"]

    call_command("evaluate", *args, "--model", str(tiny_model.pk))
    call_command("evaluate", *args, "--model", tiny_model.name)
    with pytest.raises(CommandError, match="no model version named 'nope'"):
        call_command("evaluate", *args, "--model", "nope")


@pytest.mark.django_db
def test_evaluate_reports_bad_folders_and_masks(folders, tmp_path, tiny_model):
    images, masks = folders
    with pytest.raises(CommandError, match="does not exist"):
        call_command("evaluate", "--images", str(tmp_path / "x"), "--masks", str(masks))
    PILImage.fromarray(np.zeros((5, 5), np.uint8)).save(masks / "one.png")
    with pytest.raises(CommandError, match="one.png: mask is 5x5, its image is 40x32"):
        call_command("evaluate", "--images", str(images), "--masks", str(masks))


@pytest.mark.django_db
def test_train_round_runs_here_and_reports(masked_dataset, tiny_model, capsys):
    call_command(
        "train_round",
        masked_dataset.name,
        "--steps",
        "1",
        "--mode",
        "decoder",
        "--promotion",
        "always",
        "--option",
        "iterations=1",
        "--option",
        "masks_per_image=1",
    )

    out = capsys.readouterr().out
    run = TrainingRound.objects.get()
    assert run.status == "done" and run.config["iterations"] == 1
    assert get_active_version() == run.result
    assert "step 1/1" in out
    assert json.loads(out[out.index("{") :])["promoted"] is True


@pytest.mark.django_db
def test_train_round_refuses_unknown_datasets_and_options(masked_dataset, tiny_model):
    with pytest.raises(CommandError, match="no dataset named 'nope'"):
        call_command("train_round", "nope")
    with pytest.raises(CommandError, match="unknown training option"):
        call_command("train_round", masked_dataset.name, "--option", "speed=3")
    with pytest.raises(CommandError, match="KEY=VALUE"):
        call_command("train_round", masked_dataset.name, "--option", "speed")
    call_command("train_round", masked_dataset.name, "--queue")  # Celery runs it at commit
    assert TrainingRound.objects.get().status == "queued"
