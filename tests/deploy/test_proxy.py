"""deploy/Caddyfile in front of gunicorn (deploy/gunicorn.conf.py) with production settings, as
docker-compose runs them, on loopback: static files from the proxy, media only after Django has
checked permissions (X-Accel-Redirect), uploads over the proxy's limit refused there."""

from __future__ import annotations

import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.conftest import _die_with_this_process

ROOT = Path(__file__).resolve().parents[2]
SETUP = """
import json, django
django.setup()
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from annotation.models import Dataset
from annotation.services.imports import Candidate, import_images
from tests.factories import image_bytes
user = get_user_model().objects.create_user("boss", password="x", is_staff=True)
dataset = Dataset.objects.create(name="proxied")
report = import_images(dataset, [Candidate("a.png", read=lambda: image_bytes(seed=3))])
image = dataset.images.get()
print(json.dumps({"token": Token.objects.create(user=user).key, "image": image.pk,
                  "file": image.file}))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, f"{what} exited with {process.returncode}"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < deadline, f"{what} did not listen on {port}"
            time.sleep(0.1)


@dataclass
class Stack:
    proxy: int
    web: int
    admin: int
    data: Path
    token: str
    image: int
    file: str

    def get(self, path: str, port: int | None = None, token: bool = True, **kwargs):
        conn = http.client.HTTPConnection("127.0.0.1", port or self.proxy, timeout=30)
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = f"Token {self.token}"
        conn.request(kwargs.pop("method", "GET"), path, headers=headers, **kwargs)
        response = conn.getresponse()
        return response, response.read()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data = tmp_path_factory.mktemp("proxied")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SADE_", "DJANGO_"))}
    env.pop("DATABASE_URL", None)  # its own SQLite database in ``data``
    env.update(
        DJANGO_SETTINGS_MODULE="deploy.settings",
        SADE_DATA_DIR=str(data),
        SADE_PRODUCTION="1",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        SADE_SSL_REDIRECT="0",  # no TLS on loopback
        SADE_MEDIA_ACCEL_REDIRECT="1",
        SADE_MAX_UPLOAD_BYTES="50000",
        CELERY_BROKER_URL="filesystem://",
    )
    for command in (["migrate", "--no-input"], ["collectstatic", "--no-input"]):
        subprocess.run(
            [sys.executable, "manage.py", *command, "-v", "0"], cwd=ROOT, env=env, check=True
        )
    out = subprocess.run(
        [sys.executable, "-c", SETUP], cwd=ROOT, env=env, check=True, capture_output=True
    )
    made = json.loads(out.stdout.decode().strip().splitlines()[-1])
    web, proxy, admin = free_port(), free_port(), free_port()
    gunicorn = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py"]
        + ["deploy.wsgi:application"],
        cwd=ROOT,
        env={**env, "SADE_WEB_BIND": f"127.0.0.1:{web}", "SADE_WEB_WORKERS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=open(data / "gunicorn.log", "wb"),
        preexec_fn=_die_with_this_process,
    )
    caddy_env = {
        **env,
        "HOME": str(data),  # Caddy keeps its state under $HOME
        "SADE_SITE_ADDRESS": f"http://127.0.0.1:{proxy}",
        "SADE_UPSTREAM": f"127.0.0.1:{web}",
        "SADE_STATIC_ROOT": str(data / "static"),
        "SADE_MEDIA_ROOT": str(data / "media"),
        "SADE_PROXY_MAX_BODY": "100KB",
        "SADE_CADDY_ADMIN": f"localhost:{admin}",
    }
    caddy = subprocess.Popen(
        ["caddy", "run", "--config", str(ROOT / "deploy" / "Caddyfile"), "--adapter", "caddyfile"],
        env=caddy_env,
        stdout=subprocess.DEVNULL,
        stderr=open(data / "caddy.log", "wb"),
        preexec_fn=_die_with_this_process,
    )
    try:
        wait_for_port(web, gunicorn, "gunicorn")
        wait_for_port(proxy, caddy, "caddy")
        yield Stack(proxy, web, admin, data, made["token"], made["image"], made["file"])
    finally:
        # SIGINT is gunicorn's quick shutdown: a worker still holding the body the proxy cut
        # off would keep a graceful one (SIGTERM) waiting for its full timeout.
        gunicorn.send_signal(signal.SIGINT)
        caddy.terminate()
        for process in (caddy, gunicorn):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_health_through_the_proxy_and_the_proxys_own(stack):
    response, body = stack.get("/healthz", token=False)
    assert response.status == 200 and json.loads(body) == {"status": "ok"}
    # What the compose health check of the proxy asks (Caddy's admin endpoint).
    response, _ = stack.get("/config/", port=stack.admin, token=False)
    assert response.status == 200


def test_the_web_containers_health_command(stack):
    url = f"http://127.0.0.1:{stack.web}/healthz"
    command = [sys.executable, "-m", "deploy.healthcheck", "web"]
    assert subprocess.run([*command, url], cwd=ROOT).returncode == 0
    down = f"http://127.0.0.1:{free_port()}/healthz"
    assert subprocess.run([*command, down], cwd=ROOT, capture_output=True).returncode == 1


def test_static_files_come_from_the_proxy(stack):
    static = stack.data / "static"
    css = next(static.rglob("*.css"))
    response, body = stack.get("/static/" + css.relative_to(static).as_posix(), token=False)

    assert response.status == 200 and body == css.read_bytes()
    assert response.getheader("Cache-Control") == "public, max-age=3600"


def test_an_image_is_sent_by_the_proxy_after_django_allowed_it(stack):
    stored = (stack.data / "media" / stack.file).read_bytes()

    direct, direct_body = stack.get(f"/api/images/{stack.image}/file/", port=stack.web)
    assert direct.status == 200 and direct_body == b"", "gunicorn only names the file"
    assert direct.getheader("X-Accel-Redirect") == "/" + stack.file

    response, body = stack.get(f"/api/images/{stack.image}/file/")
    assert response.status == 200 and body == stored
    assert response.getheader("Content-Type") == "image/png"
    assert response.getheader("X-Accel-Redirect") is None


def test_media_has_no_public_path(stack):
    stored = (stack.data / "media" / stack.file).read_bytes()
    for path in ("/" + stack.file, "/media/" + stack.file):
        response, body = stack.get(path)
        assert response.status == 404 and body != stored
    response, body = stack.get(f"/api/images/{stack.image}/file/", token=False)
    assert response.status in (401, 403) and body != stored


def post_upload(stack: Stack, size: int):
    boundary = "sadeboundary"
    body = (
        (
            f"--{boundary}\r\nContent-Disposition: form-data; name=files; filename=a.png\r\n"
            f"Content-Type: image/png\r\n\r\n"
        ).encode()
        + b"x" * size
        + f"\r\n--{boundary}--\r\n".encode()
    )
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    return stack.get("/api/datasets/1/images/", method="POST", body=body, headers=headers)


def test_an_upload_over_djangos_limit_gets_its_413_through_the_proxy(stack):
    response, body = post_upload(stack, 60_000)  # over SADE_MAX_UPLOAD_BYTES, under the proxy's

    assert response.status == 413
    assert "SADE_MAX_UPLOAD_BYTES" in json.loads(body)["detail"]


def test_a_body_over_the_proxys_limit_is_cut_off_by_the_proxy(stack):
    response, body = post_upload(stack, 200_000)

    # Caddy stops reading at SADE_PROXY_MAX_BODY (Debian's Caddy 2.6 then answers 502, not
    # 413); Django, seeing the Content-Length, may refuse it first with its own 413. Either
    # way the body is refused, never passed on whole.
    assert response.status in (413, 502)
    if response.status == 413 and body:
        assert "SADE_MAX_UPLOAD_BYTES" in json.loads(body)["detail"]
