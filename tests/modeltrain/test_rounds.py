"""A training round from launch to version: what it records, which version is active after it
(promotion policies), and that a failed, cancelled or interrupted round leaves no version and
the active one unchanged."""

from __future__ import annotations

import pytest

from annotation.services.errors import Conflict, InvalidInput
from engine import build_sam
from engine.registry import read_checkpoint_metadata
from modeltrain import round_pipeline, rounds
from modeltrain.models import TrainingRound
from registry.active import get_active_version
from registry.models import ModelVersion
from tests.modeltrain.conftest import HELDOUT_METRICS

FAST = {"iterations": 1, "masks_per_image": 1}
HELDOUT_KEYS = {"images", "masks", *HELDOUT_METRICS}


@pytest.fixture
def run_round(masked_dataset, django_capture_on_commit_callbacks):
    """Launch a round and let Celery (inline) run it; returns the round re-read."""

    def run(promotion: str = "always", **options) -> TrainingRound:
        with django_capture_on_commit_callbacks(execute=True):
            launched = rounds.launch_training_round(
                masked_dataset, promotion=promotion, options={**FAST, **options}
            )
        launched.refresh_from_db()
        return launched

    return run


@pytest.mark.django_db
def test_a_promoted_round_makes_the_active_version_with_its_record(run_round, tiny_model):
    done = run_round("always")

    version = get_active_version()
    assert done.status == "done" and done.promoted and done.result == version
    assert version.parent == tiny_model and version.round == tiny_model.round + 1
    assert set(version.metrics["heldout"]) == HELDOUT_KEYS
    assert version.metrics["heldout"]["masks"] == done.heldout_masks > 0
    assert version.config["data"]["train_masks"] == done.train_masks > 0
    assert version.config["train"]["mode"] == "decoder"
    # Decoder-only: the encoder, and so every cached embedding, is the parent's.
    assert version.encoder_key == tiny_model.encoder_key
    assert version.checkpoint_path.is_file()
    build_sam("vit_tiny", version.checkpoint_path)  # loads with strict keys
    assert read_checkpoint_metadata(version.checkpoint_path)["round"] == version.round
    assert done.step == done.total_steps == 2 and done.loss is not None
    assert set(done.baseline_metrics) == HELDOUT_KEYS
    # The version that was active gets its held-out numbers too (round 0 of a comparison).
    tiny_model.refresh_from_db()
    assert tiny_model.metrics["heldout"] == done.baseline_metrics


@pytest.mark.django_db
def test_never_keeps_the_active_version_and_an_admin_promotes_then_rolls_back(
    run_round, tiny_model, admin_user
):
    from modeltrain.versions import promote_version, rollback_version

    done = run_round("never")
    assert get_active_version() == tiny_model
    assert not done.promoted and "never" in done.decision

    promote_version(done.result)
    assert get_active_version() == done.result
    rollback_version()
    assert get_active_version() == tiny_model
    with pytest.raises(Conflict, match="no parent"):
        rollback_version()


@pytest.mark.django_db
def test_only_staff_promote_or_roll_back(run_round, annotator, tiny_model, client_for):
    from modeltrain.versions import promote_version

    done = run_round("never")
    client = client_for(annotator)
    promote = client.post(f"/api/model-versions/{done.result.pk}/promote/")
    assert promote.status_code == 403 and "staff" in promote.json()["detail"]
    promote_version(done.result)  # so that there is a version to roll back from
    rollback = client.post("/api/model-versions/rollback/")
    assert rollback.status_code == 403 and "staff" in rollback.json()["detail"]
    assert get_active_version() == done.result


@pytest.mark.django_db
def test_auto_promotes_only_a_better_version(run_round, tiny_model, monkeypatch):
    worse = {"masks": 3, "noc90": 3.0, "miou_1click_top": 0.1}
    good = {"masks": 3, "noc90": 2.0, "miou_1click_top": 0.5}
    results = iter([worse, good])  # the new version first, then the active one
    monkeypatch.setattr(round_pipeline, "evaluate_heldout", lambda *args: dict(next(results)))

    done = run_round("auto")

    assert not done.promoted and done.decision.startswith("not promoted")
    assert get_active_version() == tiny_model
    assert done.result.metrics["heldout"] == worse


@pytest.mark.django_db
def test_a_failing_round_leaves_no_version_and_the_active_one(run_round, tiny_model, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(round_pipeline, "train", broken)
    before = set(ModelVersion.objects.values_list("pk", flat=True))

    failed = run_round("always")

    assert failed.status == "failed" and "out of memory" in failed.error
    assert failed.finished_at is not None and failed.result is None
    assert set(ModelVersion.objects.values_list("pk", flat=True)) == before
    assert get_active_version() == tiny_model


@pytest.mark.django_db
def test_a_cancelled_round_stops_at_its_next_step(run_round, tiny_model, monkeypatch):
    real_train = round_pipeline.train

    def train_then_cancel(model, data, config, on_progress):
        def cancel_at_step_one(progress):
            if progress.step == 1:  # an admin cancels from another process
                TrainingRound.objects.update(status="cancelled")
            on_progress(progress)

        return real_train(model, data, config, on_progress=cancel_at_step_one)

    monkeypatch.setattr(round_pipeline, "train", train_then_cancel)

    cancelled = run_round("always", steps=5)

    assert cancelled.status == "cancelled" and cancelled.result is None
    assert cancelled.step < 5
    assert get_active_version() == tiny_model
    assert ModelVersion.objects.count() == 1


@pytest.mark.django_db
def test_an_interrupted_round_is_marked_failed_and_the_interruption_goes_on(
    masked_dataset, tiny_model, monkeypatch
):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # what a worker's shutdown raises in the task

    monkeypatch.setattr(round_pipeline, "train", interrupted)
    run = rounds.launch_training_round(masked_dataset, promotion="always", queue=False)

    with pytest.raises(KeyboardInterrupt):
        round_pipeline.run_training_round(run.pk)

    run.refresh_from_db()
    assert run.status == "failed" and "KeyboardInterrupt" in run.error
    assert get_active_version() == tiny_model and ModelVersion.objects.count() == 1
    # Delivered again (the worker died before acknowledging): a finished round stays as it is.
    assert round_pipeline.run_training_round(run.pk) == "failed"


@pytest.mark.django_db
def test_launch_refuses_a_second_round_bad_options_and_empty_datasets(
    masked_dataset, other_dataset, tiny_model
):
    rounds.launch_training_round(masked_dataset, queue=False)
    with pytest.raises(Conflict, match="already queued or running"):
        rounds.launch_training_round(masked_dataset, queue=False)
    with pytest.raises(InvalidInput, match="unknown training option"):
        rounds.launch_training_round(other_dataset, options={"speed": 3}, queue=False)
    with pytest.raises(InvalidInput, match="promotion must be one of"):
        rounds.launch_training_round(other_dataset, promotion="maybe", queue=False)
    with pytest.raises(InvalidInput, match="no masks to train on"):
        rounds.launch_training_round(other_dataset, queue=False)
