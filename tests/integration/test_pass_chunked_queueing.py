"""A big automatic pass does not put one message per image on the broker up front: its first
step queues a chunk of images and itself behind them (kombu's filesystem transport here, whose
queue is a folder of message files one can count), and workers then go through the pass chunk
by chunk, every image written once."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from annotation.models import AutomaticPass, AutomaticPassImage, Dataset, Mask, Stage
from annotation.services import automatic
from annotation.services.image_holds import change_stage
from tests import factories
from tests.automatic.conftest import RELAXED

pytestmark = pytest.mark.django_db(transaction=True)


def messages(queue: Path) -> list[tuple[str, list]]:
    """(task name, args) of the messages waiting in the queue folder."""
    out = []
    for path in sorted(queue.iterdir()):
        message = json.loads(path.read_bytes())
        args = json.loads(base64.b64decode(message["body"]))[0]
        out.append((message["headers"]["task"], args))
    return out


def launch(queue: Path, count: int):
    dataset = Dataset.objects.create(name="chunked")
    images = [factories.add_image(dataset, 24, 20, seed=seed) for seed in range(count)]
    ids = sorted(image.pk for image in images)
    change_stage(dataset, ids, Stage.FULLY_AUTOMATIC)
    for path in queue.iterdir():  # the imports' embedding tasks: the pass computes them
        path.unlink()
    admin = factories.make_user("boss", staff=True)
    return automatic.launch_automatic_pass(dataset, admin, "automatic", config=RELAXED), ids


def test_the_first_step_puts_one_chunk_and_the_next_step_on_the_broker(broker, settings):
    queue = broker.filesystem()
    settings.AUTOMATIC_PASS_QUEUE_CHUNK = 3
    run, ids = launch(queue, 7)
    assert messages(queue) == [("annotation.run_automatic_pass", [run.pk])]

    assert automatic.run_automatic_pass(run.pk) == 3  # what a worker does with that message

    # (The launch's message stays: no worker took it here. Files of one millisecond have no
    # order among them, so the messages are compared as a set.)
    assert sorted(messages(queue)) == sorted(
        [
            ("annotation.run_automatic_pass", [run.pk]),
            ("annotation.automatic_pass_image", [run.pk, ids[0]]),
            ("annotation.automatic_pass_image", [run.pk, ids[1]]),
            ("annotation.automatic_pass_image", [run.pk, ids[2]]),
            ("annotation.run_automatic_pass", [run.pk, ids[2]]),
        ]
    )


def test_workers_go_through_a_pass_chunk_by_chunk(broker, start_worker, wait_for):
    queue = broker.filesystem()
    run, _ = launch(queue, 5)
    worker = start_worker(SADE_PASS_QUEUE_CHUNK="2")
    items = AutomaticPassImage.objects.filter(automatic_pass=run)
    wait_for(
        lambda: not items.exclude(status="done").exists(), 300, "the pass to be done", [worker]
    )
    wait_for(lambda: not list(queue.iterdir()), 30, "the queue to empty", [worker])
    # The broker's file is gone once a worker takes the last step; the step itself (which
    # closes the pass) may still be running then.
    wait_for(
        lambda: AutomaticPass.objects.get(pk=run.pk).status not in AutomaticPass.ACTIVE,
        60,
        "the pass to close",
        [worker],
    )
    run.refresh_from_db()
    assert run.status == "done"
    assert set(items.values_list("runs", flat=True)) == {1}, "each image written exactly once"
    assert Mask.objects.count() == sum(items.values_list("mask_count", flat=True)) == 60
    log = worker.log()
    assert log.count("Task annotation.run_automatic_pass[") >= 2 * 3  # received, succeeded
