"""`make run`'s model step (deploy.official_model) against a local HTTP server serving a
generated checkpoint: download, checks, registration and activation over the cold start, a
resumed download, the offline fallback and the switches that turn it off. No test touches the
network: the "official" file is a seeded vit_tiny state dict, saved bare as Meta's are."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import io
import socket

import pytest
import torch

from annotation.models import Image
from deploy import official_model
from engine import build_sam
from engine.checkpoints import CheckpointFile
from registry.active import COLD_START_NAME, get_active_version
from registry.models import ModelVersion
from registry.predictors import get_predictor
from tests import factories
from tests.local_http import clear_proxies, serving

pytestmark = pytest.mark.django_db

NAME = "sam_vit_tiny_5eed42.pth"


def bare_state_dict() -> bytes:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(42)
        model = build_sam("vit_tiny")
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getvalue()


PAYLOAD = bare_state_dict()
FILES = {
    "vit_tiny": CheckpointFile(
        "vit_tiny",
        NAME,
        hashlib.md5(PAYLOAD).hexdigest(),
        hashlib.sha256(PAYLOAD).hexdigest(),
        len(PAYLOAD),
    )
}


class Handler(http.server.BaseHTTPRequestHandler):
    """/ckpt/NAME serves PAYLOAD, honouring a Range header; anything else is a 404."""

    ranges: list[str | None] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        Handler.ranges.append(self.headers.get("Range"))
        if self.path != f"/ckpt/{NAME}":
            self.send_error(404, "Not Found")
            return
        start = int((self.headers.get("Range") or "bytes=0-")[len("bytes=") : -1])
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
        self.send_header("Content-Length", str(len(PAYLOAD) - start))
        self.end_headers()
        self.wfile.write(PAYLOAD[start:])

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(autouse=True)
def _isolated(isolated_storage, monkeypatch):
    clear_proxies(monkeypatch)


@pytest.fixture(scope="module")
def server():
    with serving(Handler) as url:
        yield url + "/ckpt/"


@pytest.fixture
def cold_start(django_capture_on_commit_callbacks):
    """What a first `make run` had before: the cold start active, and a demo image waiting
    for annotation with its embedding under the cold start."""
    version = get_active_version()
    assert version.name == COLD_START_NAME
    with django_capture_on_commit_callbacks(execute=True):
        image = factories.add_image(factories.make_dataset("demo"), seed=1)
    image.refresh_from_db()
    assert image.encoder_key == version.embedding_key
    return version, image


def unreachable_url() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens here now: connecting is refused
    return f"http://127.0.0.1:{port}/segment_anything/"


def install(server: str) -> str | None:
    return official_model.install_official_model("vit_tiny", base_url=server, files=FILES)


def test_downloads_registers_and_activates_over_the_cold_start(
    server, settings, cold_start, django_capture_on_commit_callbacks
):
    _, image = cold_start
    with django_capture_on_commit_callbacks(execute=True):
        line = install(server)

    active = ModelVersion.objects.get(is_active=True)
    path = settings.CHECKPOINT_DIR / NAME
    assert line == f"Meta's vit_tiny checkpoint installed and active ({active.name}, {path})"
    assert path.read_bytes() == PAYLOAD
    assert active.checkpoint == NAME and active.model_type == "vit_tiny"
    assert active.is_official and "official checkpoint" in active.trained_on
    assert get_active_version() == active
    get_predictor(active.pk)  # loads with strict keys, as the web process will
    image.refresh_from_db()  # waiting images are re-embedded by the model that answers now
    assert image.encoder_key == active.embedding_key
    assert Image.objects.get(pk=image.pk).embedding_status == "done"


def test_a_second_run_says_nothing_and_downloads_nothing(server, cold_start):
    install(server)
    before = len(Handler.ranges)
    assert install(server) is None
    assert len(Handler.ranges) == before


def test_a_partial_download_is_resumed(server, settings, cold_start):
    settings.CHECKPOINT_DIR.mkdir(parents=True, exist_ok=True)
    half = len(PAYLOAD) // 2
    (settings.CHECKPOINT_DIR / f"{NAME}.part").write_bytes(PAYLOAD[:half])
    assert "installed and active" in install(server)
    assert Handler.ranges[-1] == f"bytes={half}-"
    assert (settings.CHECKPOINT_DIR / NAME).read_bytes() == PAYLOAD
    assert not (settings.CHECKPOINT_DIR / f"{NAME}.part").exists()


def test_a_version_trained_here_stays_active(server, cold_start):
    trained = factories.child_version(cold_start[0], name="round-3", round=3)
    ModelVersion.objects.update(is_active=False)
    ModelVersion.objects.filter(pk=trained.pk).update(is_active=True)
    line = install(server)
    assert "round-3 stays active" in line
    assert ModelVersion.objects.get(is_active=True).pk == trained.pk
    assert ModelVersion.objects.filter(checkpoint=NAME, is_official=True).exists()


def test_a_file_that_fails_its_checksum_is_not_installed(server, settings, cold_start):
    wrong = {"vit_tiny": dataclasses.replace(FILES["vit_tiny"], md5="0" * 32)}
    line = official_model.install_official_model("vit_tiny", base_url=server, files=wrong)
    assert line.startswith("Meta's vit_tiny checkpoint was not installed (checksum mismatch")
    assert "cold-start model answers" in line
    assert ModelVersion.objects.get(is_active=True).name == COLD_START_NAME
    assert not list(settings.CHECKPOINT_DIR.glob(f"{NAME}*"))


def test_offline_make_run_prints_one_line_and_keeps_the_cold_start(settings, cold_start, capsys):
    settings.CHECKPOINT_URL = unreachable_url()
    assert official_model.main([]) == 0
    out, err = capsys.readouterr()
    assert out.count("\n") == 1 and err == ""
    assert out.startswith("offline: 127.0.0.1:") and "cold-start model answers" in out
    assert ModelVersion.objects.get(is_active=True).name == COLD_START_NAME
    assert not list(settings.CHECKPOINT_DIR.glob("sam_vit_b_*"))


@pytest.mark.parametrize("switch", ["SADE_AUTO_DOWNLOAD=0", "SAM_CHECKPOINT set"])
def test_nothing_is_downloaded_when_turned_off(server, settings, cold_start, capsys, switch):
    settings.CHECKPOINT_URL = server
    if switch == "SADE_AUTO_DOWNLOAD=0":
        settings.AUTO_DOWNLOAD = False
    else:
        settings.SAM_CHECKPOINT = str(settings.CHECKPOINT_DIR / "chosen.pth")
    before = len(Handler.ranges)
    assert official_model.main([]) == 0
    assert capsys.readouterr() == ("", "")
    assert len(Handler.ranges) == before
