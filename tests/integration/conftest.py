"""Real Redis, real Celery worker processes, the real engine with a tiny model.

A worker here is ``celery -A deploy worker -Q gpu,cpu`` started as a subprocess with the same
environment as the test process, plus what makes it see what the test sees: the test database
(pytest-django's, by name), the same data directory (images, embeddings, checkpoints) and the
same broker. Tests that use it need ``django_db(transaction=True)``, so that the rows they write
are committed where the worker can read them.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
WORKER_READY_SECONDS = 90
PR_SET_PDEATHSIG = 1


def _die_with_this_process() -> None:
    """Run in a child before exec: the kernel kills it if the test process dies first (an
    interrupted run must not leave workers or servers behind; Linux's PR_SET_PDEATHSIG)."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The Redis server for these tests: SADE_TEST_REDIS_URL (scripts/test.sh starts one), else a
    throwaway redis-server started here. Without either the tests fail: they are the proof that
    the production broker works, and a skip would hide that they did not run."""
    url = os.environ.get("SADE_TEST_REDIS_URL")
    process = None
    if not url:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail(
                "the redis tests need a Redis server: set SADE_TEST_REDIS_URL=redis://host:port/db "
                "or install redis-server (scripts/install.sh does; `make test` runs it)"
            )
        port = _free_port()
        workdir = tmp_path_factory.mktemp("redis")
        options = f"--bind 127.0.0.1 --port {port} --appendonly no --dir {workdir}".split()
        process = subprocess.Popen(
            [binary, *options, "--save", ""],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_this_process,
        )
        url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                pytest.fail(f"Redis at {url} does not answer PING")
            time.sleep(0.1)
    yield url
    if process is not None:
        process.terminate()
        process.wait(timeout=10)


def database_url() -> str:
    """A URL for the database this test process uses, which is pytest-django's test database
    once a test has database access (its NAME is then the test database's)."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        name = str(db["NAME"])
        if name == ":memory:" or name.startswith("file:"):
            pytest.fail(
                f"the SQLite test database is {name!r}; a worker process cannot open it "
                "(settings give it a file: DATABASES['default']['TEST']['NAME'])"
            )
        return f"sqlite:///{Path(name).resolve()}"
    if db["ENGINE"] == "django.db.backends.postgresql":
        auth = quote(db["USER"] or "", safe="")
        if db["PASSWORD"]:
            auth += ":" + quote(db["PASSWORD"], safe="")
        host = db["HOST"] or "localhost"
        port = f":{db['PORT']}" if db["PORT"] else ""
        return f"postgres://{auth}@{host}{port}/{quote(db['NAME'], safe='')}"
    pytest.fail(f"no worker database URL for engine {db['ENGINE']}")


class Worker:
    """One ``celery worker`` process (and its pool children, in their own process group)."""

    def __init__(
        self, env: dict[str, str], log_path: Path, name: str, queues: str = "gpu,cpu"
    ) -> None:
        self.env, self.log_path, self.name, self.queues = env, log_path, name, queues
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        # No gossip, mingle or heartbeat: nothing to talk to, and startup is faster without.
        options = f"worker -Q {self.queues} --concurrency 1 --loglevel INFO --without-gossip "
        options += "--without-mingle --without-heartbeat"
        command = [sys.executable, "-m", "celery", "-A", "deploy", *options.split()]
        command += ["--hostname", f"{self.name}@%h"]
        log = open(self.log_path, "ab")  # the child keeps its own copy of the descriptor
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, so kill() reaches the pool too
            preexec_fn=_die_with_this_process,
        )
        log.close()
        deadline = time.monotonic() + WORKER_READY_SECONDS
        while " ready." not in self.log():
            if self.process.poll() is not None:
                code = self.process.returncode
                pytest.fail(f"worker {self.name} exited with {code}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.kill()
                wait = WORKER_READY_SECONDS
                pytest.fail(f"worker {self.name} not ready in {wait}s:\n{self.log_tail()}")
            time.sleep(0.1)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL to the worker and its pool children at once: no warm shutdown, no ack."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)

    def stop(self, timeout: float = 15) -> None:
        """Warm shutdown (SIGTERM to the main process, which stops its pool), then SIGKILL to
        the whole group for whatever is left after ``timeout`` seconds."""
        if self.alive:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        self.kill()


@pytest.fixture
def worker_env(transactional_db, settings, tmp_path: Path, tiny_checkpoint: Path) -> dict[str, str]:
    """The environment of a worker for this test, with this process's settings made to match:
    one data directory (media, embeddings, checkpoints, cache, broker folders), the tiny model
    (tests/conftest.py's seeded vit_tiny checkpoint), the test database. The broker is added by
    ``start_worker``."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    settings.DATA_DIR = data_dir
    settings.MEDIA_ROOT = data_dir / "media"
    settings.EMBEDDING_DIR = data_dir / "embeddings"
    settings.CHECKPOINT_DIR = data_dir / "checkpoints"
    settings.SAM_MODEL_TYPE = "vit_tiny"
    settings.SAM_CHECKPOINT = str(tiny_checkpoint)
    settings.SAM_DEVICE = "cpu"
    settings.CACHES = {
        "default": {
            "BACKEND": "deploy.cache.UncompressedFileCache",
            "LOCATION": str(data_dir / "cache"),
        }
    }
    from registry.predictors import clear_predictor_cache

    clear_predictor_cache()
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="deploy.settings",
        DATABASE_URL=database_url(),
        SADE_DATA_DIR=str(data_dir),
        SADE_EMBEDDING_DIR=str(settings.EMBEDDING_DIR),
        SADE_CHECKPOINT_DIR=str(settings.CHECKPOINT_DIR),
        SAM_MODEL_TYPE="vit_tiny",
        SAM_CHECKPOINT=str(tiny_checkpoint),
        SAM_DEVICE="cpu",
        CELERY_TASK_ALWAYS_EAGER="0",
        PYTHONUNBUFFERED="1",
    )
    # Set while the browser tests run; a worker has no asyncio loop to be unsafe about.
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    return env


class Broker:
    """Which broker this test's Celery traffic goes through. ``redis()`` or ``filesystem()``
    points this process's Celery app (where the code under test queues tasks) at it, and
    ``start_worker`` gives workers the same one."""

    def __init__(self, request: pytest.FixtureRequest, settings, data_dir: Path) -> None:
        self._request, self._settings, self._data_dir = request, settings, data_dir
        self.url: str | None = None
        self.worker_env: dict[str, str] = {}

    def redis(self, visibility_timeout: int = 6 * 3600, url: str | None = None) -> redis.Redis:
        """The test Redis (or the one at ``url``), emptied of anything an earlier test left;
        returns a client."""
        url = url or self._request.getfixturevalue("redis_url")
        client = redis.Redis.from_url(url)
        client.flushdb()
        self._use(url, {"visibility_timeout": visibility_timeout})
        self.worker_env = {"SADE_VISIBILITY_TIMEOUT": str(visibility_timeout)}
        return client

    def filesystem(self) -> Path:
        """kombu's filesystem transport in the data directory, the folders a worker's settings
        derive from its SADE_DATA_DIR; returns the queue folder."""
        folders = self._data_dir / "broker"
        for folder in ("queue", "control"):
            (folders / folder).mkdir(parents=True, exist_ok=True)
        options = {
            "data_folder_in": str(folders / "queue"),
            "data_folder_out": str(folders / "queue"),
            "control_folder": str(folders / "control"),
            "store_processed": False,
        }
        self._use("filesystem://", options)
        self.worker_env = {}
        return folders / "queue"

    def _use(self, url: str, transport_options: dict) -> None:
        from deploy.celery import app

        app.conf.broker_url = url
        app.conf.broker_transport_options = transport_options
        app.conf.task_always_eager = False
        self._settings.CELERY_BROKER_URL = url
        self._settings.CELERY_BROKER_TRANSPORT_OPTIONS = transport_options
        self._settings.CELERY_TASK_ALWAYS_EAGER = False
        drop_broker_connections(app)
        self.url = url


@pytest.fixture
def broker(request: pytest.FixtureRequest, settings, worker_env) -> Iterator[Broker]:
    """The test's broker switch; this process's Celery configuration comes back afterwards."""
    from deploy.celery import app

    keys = ("broker_url", "broker_transport_options", "task_always_eager")
    saved = {key: app.conf[key] for key in keys}
    yield Broker(request, settings, Path(worker_env["SADE_DATA_DIR"]))
    for key, value in saved.items():
        app.conf[key] = value
    drop_broker_connections(app)


def drop_broker_connections(app) -> None:
    """Make the app look its broker connection and producer pools up again, so the next task is
    published to the broker configured now. Celery has no public call for this (``app.close()``
    keeps the producer pool); these are the two attributes its own after-fork handler resets.
    The pools themselves stay open: kombu shares them process-wide per broker URL and options,
    and a later test may use the same broker again."""
    app._pool = None
    amqp = app.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None


@pytest.fixture
def start_worker(
    worker_env: dict[str, str], broker: Broker, tmp_path: Path
) -> Iterator[Callable[..., Worker]]:
    """``start_worker(queues="gpu,cpu", **env)`` starts a worker of those queues on the test's
    broker (the test Redis unless the test chose one) and waits until it is ready; the workers a
    test started are stopped when it ends."""
    workers: list[Worker] = []

    def start(queues: str = "gpu,cpu", **overrides: str) -> Worker:
        if broker.url is None:
            broker.redis()
        env = {**worker_env, **broker.worker_env, **overrides, "CELERY_BROKER_URL": broker.url}
        name = f"itest-{len(workers) + 1}-{uuid.uuid4().hex[:6]}"
        worker = Worker(env, tmp_path / f"{name}.log", name, queues)
        workers.append(worker)
        return worker.start()

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture
def wait_for() -> Callable[..., None]:
    """``wait_for(condition, timeout, what, workers)`` polls ``condition`` every 0.2 s and fails
    with the workers' logs after ``timeout`` seconds."""

    def wait(condition: Callable[[], bool], timeout: float, what: str, workers=()) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                logs = "\n\n".join(f"--- {w.name} ---\n{w.log_tail()}" for w in workers)
                pytest.fail(f"timed out after {timeout}s waiting for {what}\n{logs}")
            time.sleep(0.2)

    return wait
