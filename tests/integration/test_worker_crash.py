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
IMAGES = 3
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
    wait_for(
        lambda: Image.objects.filter(embedding_status=EmbeddingStatus.RUNNING).exists(),
        60,
        "the first worker to start an embedding",
        [first],
    )
    first.kill()
    killed_at = time.monotonic()

    # Killed mid-task: the image it held is still "running" and its message is unacknowledged.
    in_flight = Image.objects.get(embedding_status=EmbeddingStatus.RUNNING)
    assert redis.hlen("unacked") == 1
    assert SUCCEEDED.search(first.log()) is None
    (killed_task,) = RECEIVED.findall(first.log())
    assert redis.llen("gpu") == IMAGES - 1

    # Only messages older than the visibility timeout are restored, when a worker starts polling.
    time.sleep(max(0.0, VISIBILITY_TIMEOUT + 0.5 - (time.monotonic() - killed_at)))
    second = start_worker()
    wait_for(
        lambda: Image.objects.filter(embedding_status=EmbeddingStatus.DONE).count() == IMAGES,
        120,
        "every image to be embedded after the restart",
        [second],
    )

    succeeded = SUCCEEDED.findall(second.log())
    assert killed_task in succeeded, "the killed task was redelivered to the new worker"
    assert len(succeeded) == len(set(succeeded)) == IMAGES, "each task completed exactly once"
    in_flight.refresh_from_db()
    assert in_flight.embedding_status == EmbeddingStatus.DONE
    key = get_active_version().encoder_key
    store = embedding_store()
    files = sorted(p for p in store.root.rglob("*") if p.is_file())
    expected = sorted(store.path(image.content_sha256, key) for image in Image.objects.all())
    assert files == expected, "one embedding file per image, nothing else"
    assert redis.hlen("unacked") == 0
    assert redis.llen("gpu") == 0
