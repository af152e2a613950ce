"""get_active_version: the cold start, registering a configured checkpoint, one active version."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch
from django.db import IntegrityError, connection, transaction

from engine import CheckpointError, build_sam, encoder_key, save_checkpoint
from registry.active import (
    COLD_START_FILE,
    COLD_START_SEED,
    activate_version,
    get_active_version,
)
from registry.models import ModelVersion
from registry.predictors import model_status


def seeded_tiny(seed: int):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_sam("vit_tiny")


@pytest.mark.django_db
def test_cold_start_saves_a_seeded_vit_tiny_under_checkpoint_dir(settings):
    version = get_active_version()

    path = Path(settings.CHECKPOINT_DIR) / COLD_START_FILE
    assert path.is_file()
    assert version.model_type == "vit_tiny"
    assert version.checkpoint == COLD_START_FILE  # relative to CHECKPOINT_DIR
    assert version.checkpoint_path == path
    assert version.is_active and not version.is_official
    assert "untrained" in version.trained_on or "random initialisation" in version.trained_on
    # The file holds the seeded weights, so every process computes the same embeddings.
    assert version.encoder_key == encoder_key(seeded_tiny(COLD_START_SEED))
    assert version.encoder_key == encoder_key(build_sam("vit_tiny", path))


@pytest.mark.django_db
def test_second_call_returns_the_same_version_without_rewriting(settings):
    first = get_active_version()
    mtime = first.checkpoint_path.stat().st_mtime_ns

    again = get_active_version()

    assert again.pk == first.pk
    assert ModelVersion.objects.count() == 1
    assert first.checkpoint_path.stat().st_mtime_ns == mtime


@pytest.mark.django_db
def test_configured_bare_state_dict_registers_as_official(settings, tmp_path):
    path = tmp_path / "sam_vit_tiny_meta_style.pth"
    torch.save(seeded_tiny(7).state_dict(), path)  # Meta's files are bare state dicts
    settings.SAM_MODEL_TYPE, settings.SAM_CHECKPOINT = "vit_tiny", str(path)

    version = get_active_version()

    assert version.is_official and version.is_active
    assert version.trained_on == "Meta's SA-1B (official checkpoint sam_vit_tiny_meta_style.pth)"
    assert version.checkpoint == str(path.resolve())  # outside CHECKPOINT_DIR: absolute
    assert model_status()["hint"] is None


@pytest.mark.django_db
def test_configured_checkpoint_replaces_an_active_cold_start(settings, tiny_checkpoint):
    cold = get_active_version()
    settings.SAM_MODEL_TYPE, settings.SAM_CHECKPOINT = "vit_tiny", str(tiny_checkpoint)

    configured = get_active_version()

    assert configured.pk != cold.pk and configured.is_active
    assert not configured.is_official  # our own file says what it was trained on
    assert configured.trained_on == "nothing: random initialisation (test model)"
    cold.refresh_from_db()
    assert not cold.is_active


@pytest.mark.django_db
def test_a_promotion_sticks_once_the_configured_checkpoint_is_registered(settings, tiny_model):
    other = ModelVersion.objects.create(
        name="round-1",
        model_type="vit_tiny",
        checkpoint="round1.pt",
        encoder_key="k",
        trained_on="round 1",
        round=1,
        parent=tiny_model,
    )
    activate_version(other)

    assert get_active_version().pk == other.pk


@pytest.mark.django_db
def test_a_missing_configured_file_falls_back_to_the_cold_start(settings, tmp_path):
    settings.SAM_MODEL_TYPE, settings.SAM_CHECKPOINT = "vit_b", str(tmp_path / "nope.pth")

    assert get_active_version().model_type == "vit_tiny"


@pytest.mark.django_db
def test_a_corrupt_configured_checkpoint_raises_checkpoint_error(settings, tmp_path):
    path = tmp_path / "broken.pth"
    path.write_bytes(b"not a checkpoint at all")
    settings.SAM_MODEL_TYPE, settings.SAM_CHECKPOINT = "vit_tiny", str(path)

    with pytest.raises(CheckpointError, match="broken.pth"):
        get_active_version()
    assert not ModelVersion.objects.exists()


@pytest.mark.django_db
def test_the_database_refuses_two_active_versions(tiny_model):
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersion.objects.create(
            name="second",
            model_type="vit_tiny",
            checkpoint="x.pt",
            encoder_key="k",
            trained_on="x",
            is_active=True,
        )


@pytest.mark.django_db
def test_model_status_explains_the_cold_start_and_how_to_install_meta_checkpoint():
    status = model_status()

    assert status["model_type"] == "vit_tiny" and status["is_official"] is False
    assert "untrained" in status["hint"]
    assert "python -m engine.checkpoints download vit_b" in status["hint"]
    assert "SAM_CHECKPOINT=" in status["hint"] and "SAM_MODEL_TYPE=vit_b" in status["hint"]


@pytest.mark.django_db(transaction=True)
def test_two_processes_starting_at_once_end_with_one_active_version(settings):
    results, errors = [], []
    barrier = threading.Barrier(2)

    def start():
        try:
            barrier.wait(timeout=10)
            results.append(get_active_version().pk)
        except Exception as exc:  # reported below with the test's assertion
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=start) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert not errors, errors
    assert len(set(results)) == 1
    assert ModelVersion.objects.filter(is_active=True).count() == 1
    assert ModelVersion.objects.count() == 1


def test_save_checkpoint_round_trip_keeps_metadata(tmp_path):
    from engine.registry import read_checkpoint_metadata

    path = save_checkpoint(seeded_tiny(3), tmp_path / "m.pt", round=2, trained_on="x")
    assert read_checkpoint_metadata(path)["round"] == 2
