"""An automatic pass survives a worker killed in the middle (SIGKILL: no warm shutdown, no
ack): the image it was on is redelivered to the next worker, every image ends up done once, and
no mask is duplicated: each image has exactly the masks a direct run of the generator gives."""

import re
import time

import pytest

from tests.integration.passes import assert_every_image_done_once, launch_pass_on_new_images

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

VISIBILITY_TIMEOUT = 3
IMAGES = 6
RECEIVED = re.compile(r"Task annotation\.automatic_pass_image\[([0-9a-f-]+)\] received")
SUCCEEDED = re.compile(r"Task annotation\.automatic_pass_image\[([0-9a-f-]+)\] succeeded")


def second_in_flight(log: str) -> bool:
    """The worker has received a second image task and not finished it."""
    received = len(RECEIVED.findall(log))
    return received >= 2 and received > len(SUCCEEDED.findall(log))


def test_a_pass_resumes_after_a_killed_worker_without_duplicating_a_mask(
    broker, start_worker, wait_for
):
    redis = broker.redis(visibility_timeout=VISIBILITY_TIMEOUT)
    run, ids, items = launch_pass_on_new_images(redis, "automatic-crash", IMAGES)
    assert len(ids) == IMAGES
    assert redis.llen("gpu") == 1, "the launch queues the fan-out task on the gpu queue"

    first = start_worker()
    # Killed while an image is in flight: after one is done and the next was received. (Killed
    # just as the worker pops the next message, before kombu records it as unacknowledged,
    # Redis loses that message: kombu's own at-most-once window, which resume covers.)
    wait_for(
        lambda: second_in_flight(first.log()),
        120,
        "the worker to start a second image",
        [first],
    )
    # Killed at once: the "received" line is logged after kombu put the message among the
    # unacknowledged, and a small image can be done within a fraction of a second.
    first.kill()
    killed_at = time.monotonic()
    done_before = items.filter(status="done").count()
    assert 1 <= done_before < IMAGES, "killed in the middle of the pass"
    assert redis.hlen("unacked") == 1, "the image in flight is unacknowledged"
    # Every image not done has its message, queued or in flight. The one in flight may already
    # have written its masks and status (the kill came between that commit and the ack): then its
    # redelivery must change nothing, which the end of the test checks.
    pending = IMAGES - done_before
    messages = redis.llen("gpu") + redis.hlen("unacked")
    assert messages in (pending, pending + 1), "the others are still queued"

    time.sleep(max(0.0, VISIBILITY_TIMEOUT + 0.5 - (time.monotonic() - killed_at)))
    second = start_worker()
    wait_for(
        lambda: not items.exclude(status="done").exists(),
        300,
        "every image of the pass to be done after the restart",
        [second],
    )
    wait_for(lambda: redis.hlen("unacked") == 0, 30, "the last ack", [second])

    assert_every_image_done_once(run, items, ids, redis)
