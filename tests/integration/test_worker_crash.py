"""A worker killed in the middle of an embedding (SIGKILL: no warm shutdown, no ack) loses no
image: with late acknowledgement the message stays unacknowledged in Redis, a restarted worker
gets it back once the visibility timeout has passed, and every image ends up embedded once."""

import re
import time

import pytest

from annotation.models import Dataset, EmbeddingStatus, Image
from annotation.services.embeddings import embedding_store
from annotation.services.imports import Candidate, import_images
from registry.active import get_active_version
from tests.factories import image_bytes

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

VISIBILITY_TIMEOUT = 3
IMAGES = 4
RECEIVED = re.compile(r"Task annotation\.embed_image\[([0-9a-f-]+)\] received")
SUCCEEDED = re.compile(r"Task annotation\.embed_image\[([0-9a-f-]+)\] succeeded")


def test_killed_worker_loses_no_image_and_a_restarted_one_embeds_each_once(
    broker, start_worker, wait_for
):
    redis = broker.redis(visibility_timeout=VISIBILITY_TIMEOUT)
    dataset = Dataset.objects.create(name="crash")
    report = import_images(
        dataset,
        [Candidate(f"{i}.png", read=lambda i=i: image_bytes(seed=i)) for i in range(IMAGES)],
    )
    assert len(report.imported) == IMAGES
    assert redis.llen("gpu") == IMAGES, "each import queues one embedding on the gpu queue"

    first = start_worker()
    # Killed at once when a task is received and not yet finished: the "received" line is logged
    # after kombu put the message among the unacknowledged, and a small image is embedded within
    # a fraction of a second, so the first worker may already have finished one or more others.
    wait_for(lambda: _in_flight(first.log()), 60, "the first worker to start an embedding", [first])
    first.kill()
    killed_at = time.monotonic()

    # Killed mid-task: its message is unacknowledged; the ones it never took are still queued.
    received, done_by_first = RECEIVED.findall(first.log()), SUCCEEDED.findall(first.log())
    (killed_task,) = _in_flight(first.log())
    assert len(done_by_first) < IMAGES
    assert redis.hlen("unacked") == 1
    assert redis.llen("gpu") == IMAGES - len(received)

    # Only messages older than the visibility timeout are restored, when a worker starts polling.
    time.sleep(max(0.0, VISIBILITY_TIMEOUT + 0.5 - (time.monotonic() - killed_at)))
    second = start_worker()
    wait_for(
        lambda: Image.objects.filter(embedding_status=EmbeddingStatus.DONE).count() == IMAGES,
        120,
        "every image to be embedded after the restart",
        [second],
    )
    wait_for(lambda: redis.hlen("unacked") == 0, 30, "the last ack", [second])

    succeeded = SUCCEEDED.findall(second.log())
    assert killed_task in succeeded, "the killed task was redelivered to the new worker"
    assert len(succeeded) == len(set(succeeded)), "each task completed once by the new worker"
    assert not set(succeeded) & set(done_by_first), "nothing the first worker finished ran again"
    assert len(succeeded) + len(done_by_first) == IMAGES
    key = get_active_version().encoder_key
    store = embedding_store()
    files = sorted(p for p in store.root.rglob("*") if p.is_file())
    expected = sorted(store.path(image.content_sha256, key) for image in Image.objects.all())
    assert files == expected, "one embedding file per image, nothing else"
    assert redis.hlen("unacked") == 0
    assert redis.llen("gpu") == 0


def _in_flight(log: str) -> list[str]:
    """The tasks a worker's log shows received and not (yet) succeeded."""
    done = set(SUCCEEDED.findall(log))
    return [task for task in RECEIVED.findall(log) if task not in done]
