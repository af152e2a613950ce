"""An automatic pass survives a restart of Redis in the middle: the broker keeps its queues in
its append-only file (as deploy/docker-compose.yml runs it), the worker reconnects by itself, the
image that was in flight is finished or delivered again, and in the end every image is done
once, with exactly the masks a direct run of the generator gives: none lost, none doubled."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_client

from tests.integration.conftest import _die_with_this_process
from tests.integration.passes import assert_every_image_done_once, launch_pass_on_new_images

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

VISIBILITY_TIMEOUT = 3
IMAGES = 8
RECEIVED = re.compile(r"Task annotation\.automatic_pass_image\[([0-9a-f-]+)\] received")
SUCCEEDED = re.compile(r"Task annotation\.automatic_pass_image\[([0-9a-f-]+)\] succeeded")


class RestartableRedis:
    """A redis-server of this test's own (the shared test Redis must not be restarted under
    other tests), persisting to an append-only file in ``folder``."""

    def __init__(self, folder: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.folder = folder
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is needed (scripts/install.sh installs it)"
        options = f"--bind 127.0.0.1 --port {self.port} --dir {self.folder}"
        options += " --appendonly yes --appendfsync always"
        self.process = subprocess.Popen(
            [binary, *options.split(), "--save", ""],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_this_process,
        )
        client = redis_client.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis_client.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)

    def stop(self) -> None:
        """SHUTDOWN as a service manager's stop does: the append-only file is flushed."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            redis_client.Redis.from_url(self.url).shutdown()
        except redis_client.ConnectionError:
            pass  # it closes the connection as it goes
        self.process.wait(timeout=30)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RestartableRedis]:
    folder = tmp_path / "redis"
    folder.mkdir()
    server = RestartableRedis(folder)
    server.start()
    yield server
    server.stop()


def in_flight(log: str) -> bool:
    """The worker has finished an image and is in the middle of another."""
    received, succeeded = len(RECEIVED.findall(log)), len(SUCCEEDED.findall(log))
    return succeeded >= 1 and received > succeeded


def test_a_pass_survives_a_redis_restart_with_every_image_done_once(
    broker, start_worker, wait_for, own_redis
):
    redis = broker.redis(visibility_timeout=VISIBILITY_TIMEOUT, url=own_redis.url)
    run, ids, items = launch_pass_on_new_images(redis, "redis-restart", IMAGES)

    worker = start_worker()
    wait_for(lambda: in_flight(worker.log()), 120, "an image in flight", [worker])
    own_redis.stop()
    done_during_outage = items.filter(status="done").count()
    assert 1 <= done_during_outage < IMAGES, "restarted in the middle of the pass"
    time.sleep(1.0)
    own_redis.start()
    assert redis.llen("gpu") >= IMAGES - done_during_outage - 1, "the queue survived"

    wait_for(
        lambda: not items.exclude(status="done").exists(),
        300,
        "every image of the pass to be done after the restart",
        [worker],
    )
    wait_for(lambda: redis.hlen("unacked") == 0, 60, "the last ack", [worker])

    assert worker.alive, "the worker reconnected by itself"
    assert "Connection to broker lost" in worker.log()
    assert_every_image_done_once(run, items, ids, redis)
