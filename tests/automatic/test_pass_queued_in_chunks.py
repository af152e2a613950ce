"""A pass queues its images a chunk at a time, then its own next step behind them, so the broker
never holds one message per image of a big pass; a cancel stops the queueing at the next chunk
and a resume picks up from the first image not done. (Tasks run inline here, in the order a
first-in-first-out queue hands them out; tests/integration/test_pass_chunked_queueing.py counts
the messages on a real broker.)"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from celery import signals

from annotation.models import AutomaticPass, Mask, Stage
from annotation.services import automatic
from annotation.services.image_holds import change_stage
from annotation.services.queueing import queue_task
from tests import factories
from tests.automatic.conftest import RELAXED

pytestmark = pytest.mark.django_db

DRIVER, IMAGE = "annotation.run_automatic_pass", "annotation.automatic_pass_image"


@pytest.fixture
def five_images(dataset, tiny_model):
    images = [factories.add_image(dataset, 24, 20, seed=seed) for seed in range(5)]
    change_stage(dataset, [image.pk for image in images], Stage.FULLY_AUTOMATIC)
    return sorted(image.pk for image in images)


@pytest.fixture
def tasks_run() -> Iterator[list[tuple]]:
    """(task name, args) of every task as it starts."""
    seen: list[tuple] = []

    def record(sender=None, args=None, **_) -> None:
        seen.append((sender.name, tuple(args)))

    signals.task_prerun.connect(record, weak=False)
    yield seen
    signals.task_prerun.disconnect(record)


def test_a_pass_over_more_images_than_a_chunk_is_queued_chunk_by_chunk(
    settings, dataset, dataset_admin, five_images, tasks_run
):
    settings.AUTOMATIC_PASS_QUEUE_CHUNK = 2
    run = automatic.launch_automatic_pass(dataset, dataset_admin, "automatic", config=RELAXED)
    queue_task(DRIVER, run.pk, after_commit=False)

    a, b, c, d, e = five_images
    assert tasks_run == [
        (DRIVER, (run.pk,)),
        (IMAGE, (run.pk, a)),
        (IMAGE, (run.pk, b)),
        (DRIVER, (run.pk, b)),  # queued behind the first chunk
        (IMAGE, (run.pk, c)),
        (IMAGE, (run.pk, d)),
        (DRIVER, (run.pk, d)),
        (IMAGE, (run.pk, e)),  # the last chunk: no step after it
    ]
    run = automatic.with_progress(AutomaticPass.objects.filter(pk=run.pk)).get()
    assert (run.status, run.done_images, run.mask_count) == ("done", 5, 60)
    assert set(run.items.values_list("runs", flat=True)) == {1}
    assert Mask.objects.count() == 60


def test_a_pass_as_large_as_a_chunk_queues_no_step_after_it(
    settings, dataset, dataset_admin, five_images, tasks_run
):
    settings.AUTOMATIC_PASS_QUEUE_CHUNK = 5
    run = automatic.launch_automatic_pass(dataset, dataset_admin, "automatic", config=RELAXED)
    assert automatic.run_automatic_pass(run.pk) == 5
    assert [name for name, _ in tasks_run] == [IMAGE] * 5
    assert AutomaticPass.objects.get(pk=run.pk).status == "done"


def test_a_cancel_stops_the_queueing_at_the_next_chunk_and_resume_goes_on(
    settings, dataset, dataset_admin, five_images, tasks_run
):
    settings.AUTOMATIC_PASS_QUEUE_CHUNK = 2
    run = automatic.launch_automatic_pass(dataset, dataset_admin, "automatic", config=RELAXED)

    def cancel_after_the_first_image(sender=None, args=None, **_) -> None:
        if sender.name == IMAGE and AutomaticPass.objects.get(pk=run.pk).status == "running":
            automatic.cancel_automatic_pass(run)

    signals.task_postrun.connect(cancel_after_the_first_image, weak=False)
    try:
        queue_task(DRIVER, run.pk, after_commit=False)
    finally:
        signals.task_postrun.disconnect(cancel_after_the_first_image)

    a, b, *rest = five_images
    # The chunk already queued is handed out and skipped; no later chunk is queued at all.
    assert tasks_run == [
        (DRIVER, (run.pk,)),
        (IMAGE, (run.pk, a)),
        (IMAGE, (run.pk, b)),
        (DRIVER, (run.pk, b)),
    ]
    statuses = dict(run.items.values_list("image_id", "status"))
    assert statuses == {a: "done", b: "pending", **{i: "pending" for i in rest}}
    assert AutomaticPass.objects.get(pk=run.pk).status == "cancelled"

    tasks_run.clear()
    with_progress = automatic.resume_automatic_pass(run)  # queued on commit: run it here
    assert with_progress.status == "running"
    queue_task(DRIVER, run.pk, after_commit=False)
    assert [args[1] for name, args in tasks_run if name == IMAGE] == [b, *rest]
    run = automatic.with_progress(AutomaticPass.objects.filter(pk=run.pk)).get()
    assert (run.status, run.done_images) == ("done", 5)
    assert set(run.items.values_list("runs", flat=True)) == {1}


def test_a_step_delivered_again_queues_only_images_not_done(
    settings, dataset, dataset_admin, five_images, tasks_run
):
    """A worker killed inside a step: its message comes back and the step runs again."""
    settings.AUTOMATIC_PASS_QUEUE_CHUNK = 2
    run = automatic.launch_automatic_pass(dataset, dataset_admin, "automatic", config=RELAXED)
    a, b, c, d, e = five_images
    run.items.filter(image_id__in=[a, c]).update(status="done")  # done before the kill

    assert automatic.run_automatic_pass(run.pk, a) == 2  # b and d: c is done, e is next
    assert [args for name, args in tasks_run if name == IMAGE][:2] == [(run.pk, b), (run.pk, d)]
    assert (DRIVER, (run.pk, d)) in tasks_run
    assert AutomaticPass.objects.get(pk=run.pk).status == "done"
