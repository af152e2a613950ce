"""A real server process for hostile-input tests: gunicorn serving deploy.wsgi on a free loopback
port, against pytest-django's test database (tests using it need
``django_db(transaction=True)`` so that the rows they write are committed where the server reads
them), with the tiny seeded model and tasks run eagerly inside the request (an export started
through the API has finished when its answer comes).

A crash must not hide behind gunicorn's supervisor, which would quietly start a new worker:
``ServerProcess.worker_pids`` records the worker processes at start, and ``still_healthy``
asserts that the same ones still run and that the server answers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.integration.conftest import _die_with_this_process, _free_port, database_url

ROOT = Path(__file__).resolve().parents[2]
READY_SECONDS = 60


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces, so split after its ")".
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.add(int(entry.name))
    return found


@dataclass
class ServerProcess:
    url: str
    process: subprocess.Popen
    log_path: Path
    worker_pids: set[int]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def still_healthy(self) -> None:
        """The master and the very workers it started still run, and the server answers."""
        assert self.process.poll() is None, f"the server exited:\n{self.log()[-3000:]}"
        workers = _children(self.process.pid)
        assert workers == self.worker_pids, (
            f"gunicorn's workers changed from {self.worker_pids} to {workers}: one died "
            f"(crash, or killed for memory):\n{self.log()[-3000:]}"
        )
        assert requests.get(f"{self.url}/healthz", timeout=10).status_code in (200, 503)
        assert "WORKER TIMEOUT" not in self.log() and "SIGSEGV" not in self.log()


@pytest.fixture
def server_process(
    transactional_db, settings, isolated_storage: Path, tiny_checkpoint: Path
) -> Iterator[ServerProcess]:
    """gunicorn with one worker (two threads) on this test's database and files (the data
    directory of ``isolated_storage``: media, cache, checkpoints), sign-in limited to 5 a minute
    and uploads to 3 files."""
    tmp_path = isolated_storage
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "SADE_DATA_DIR": str(tmp_path),
        "SADE_CHECKPOINT_DIR": str(settings.CHECKPOINT_DIR),
        "SADE_EMBEDDING_DIR": str(settings.EMBEDDING_DIR),
        "SAM_MODEL_TYPE": "vit_tiny",
        "SAM_CHECKPOINT": str(tiny_checkpoint),
        "SAM_DEVICE": "cpu",
        "CELERY_TASK_ALWAYS_EAGER": "1",
        "SADE_SIGNIN_RATE": "5/min",
        "SADE_MAX_UPLOAD_FILES": "3",
        "SADE_LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }
    log_path = tmp_path / "server.log"
    command = [
        sys.executable, "-m", "gunicorn", "deploy.wsgi:application",
        "--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "2",
        "--timeout", "120", "--graceful-timeout", "5",
    ]  # fmt: skip
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_this_process,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + READY_SECONDS
    while True:
        try:
            requests.get(f"{url}/healthz", timeout=10)
            break
        except requests.RequestException:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"the server did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
    server = ServerProcess(url, process, log_path, _children(process.pid))
    assert len(server.worker_pids) == 1
    yield server
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)
