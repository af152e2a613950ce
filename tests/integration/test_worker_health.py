"""The compose health command of a worker (python -m deploy.healthcheck worker NAME) pings the
real worker through Redis: healthy while it runs, unhealthy once it is gone."""

import os
import subprocess
import sys

import pytest

from tests.integration.conftest import ROOT

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def health(name: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "deploy.healthcheck", "worker", name],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_running_worker_is_healthy_and_a_killed_one_is_not(broker, start_worker, worker_env):
    broker.redis()
    worker = start_worker(queues="cpu")
    env = {**os.environ, **worker_env, "CELERY_BROKER_URL": broker.url}

    assert health(worker.name, env).returncode == 0

    worker.kill()
    gone = health(worker.name, env)
    assert gone.returncode == 1
    assert f"worker {worker.name}@" in gone.stderr and "did not answer" in gone.stderr


def test_healthz_reaches_the_real_redis_broker(broker, client):
    broker.redis()

    response = client.get("/healthz")

    assert response.status_code == 200 and response.json() == {"status": "ok"}
