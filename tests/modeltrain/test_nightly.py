"""The nightly schedule launches a round only where there are enough new masks."""

from __future__ import annotations

import pytest
from django.utils import timezone

from modeltrain.models import TrainingRound
from modeltrain.round_export import assign_splits
from modeltrain.rounds import nightly_training_rounds

from .conftest import add_masked_image


@pytest.fixture
def threshold(settings):
    settings.TRAINING_NIGHTLY_MIN_NEW_MASKS = 2
    return 2


@pytest.mark.django_db
def test_skips_when_there_is_nothing_to_train_on(dataset, tiny_model, threshold):
    assert nightly_training_rounds() == []
    assert not TrainingRound.objects.exists()


@pytest.mark.django_db
def test_launches_a_nightly_round_on_a_dataset_with_enough_new_masks(
    masked_dataset, other_dataset, threshold
):
    launched = nightly_training_rounds()

    (run,) = TrainingRound.objects.all()
    assert launched == [run.pk]
    assert run.dataset == masked_dataset and run.trigger == "nightly"
    assert run.status == "queued" and run.created_by is None


@pytest.mark.django_db
def test_skips_when_nothing_is_new_since_the_last_round(masked_dataset, tiny_model, threshold):
    TrainingRound.objects.create(
        dataset=masked_dataset, parent=tiny_model, status="done", data_until=timezone.now()
    )

    assert nightly_training_rounds() == []

    # Two new training masks; a held-out one would not count, so add until two are training.
    added = 0
    seed = 100
    while added < threshold:
        image = add_masked_image(masked_dataset, seed)
        assign_splits(masked_dataset)
        image.refresh_from_db()
        added += not image.training_split.heldout
        seed += 1
    assert len(nightly_training_rounds()) == 1


@pytest.mark.django_db
def test_skips_a_dataset_whose_round_is_still_running(masked_dataset, tiny_model, threshold):
    TrainingRound.objects.create(dataset=masked_dataset, parent=tiny_model, status="running")

    assert nightly_training_rounds() == []


def test_the_beat_schedule_runs_it_nightly(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["nightly-training-rounds"]

    assert entry["task"] == "modeltrain.nightly_training_rounds"
    assert entry["schedule"].hour == {settings.TRAINING_NIGHTLY_HOUR}
    assert entry["schedule"].minute == {0}
