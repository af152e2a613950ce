"""engine.checkpoints against a local HTTP server: verified downloads, bad content, resumed
downloads, offline."""

import hashlib
import http.server
import socket

import pytest

from engine import checkpoints
from engine.checkpoints import CheckpointError, CheckpointFile, HostUnreachableError
from tests.local_http import clear_proxies, serving

PAYLOAD = bytes(range(256)) * 300  # 76,800 bytes: several reads, well under a second
NAME = "sam_tiny_0123ab.pth"
SPEC = CheckpointFile(
    "tiny",
    NAME,
    hashlib.md5(PAYLOAD).hexdigest(),
    hashlib.sha256(PAYLOAD).hexdigest(),
    len(PAYLOAD),
)
FILES = {"tiny": SPEC}


class Handler(http.server.BaseHTTPRequestHandler):
    """/good/NAME serves PAYLOAD (whole, whatever Range asks); /ranged/ honours a Range
    header (206 with the rest); /corrupt/ a changed byte; /short/ and /unannounced/ stop
    halfway (with and without a Content-Length header); anything else is a 404."""

    requests: list[str] = []
    ranges: list[str | None] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        Handler.requests.append(self.path)
        Handler.ranges.append(self.headers.get("Range"))
        route, _, name = self.path.strip("/").partition("/")
        if name != NAME or route not in ("good", "ranged", "corrupt", "short", "unannounced"):
            self.send_error(404, "Not Found")
            return
        asked = self.headers.get("Range")
        if route == "ranged" and asked:
            start = int(asked.removeprefix("bytes=").removesuffix("-"))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
            self.send_header("Content-Length", str(len(PAYLOAD) - start))
            self.end_headers()
            self.wfile.write(PAYLOAD[start:])
            self.close_connection = True
            return
        body = PAYLOAD
        if route == "corrupt":
            body = PAYLOAD[:100] + bytes([PAYLOAD[100] ^ 0xFF]) + PAYLOAD[101:]
        self.send_response(200)
        if route != "unannounced":
            self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if route in ("short", "unannounced") else body)
        self.close_connection = True

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    clear_proxies(monkeypatch)


@pytest.fixture(scope="module")
def server():
    with serving(Handler) as url:
        yield url


def unreachable_url() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens here now: connecting is refused
    return f"http://127.0.0.1:{port}/segment_anything/"


def test_download_verifies_and_places_the_file(server, tmp_path):
    path = checkpoints.download_checkpoint(
        "tiny", tmp_path / "ckpt", base_url=f"{server}/good/", files=FILES, progress=False
    )
    assert path == (tmp_path / "ckpt" / NAME).absolute()
    assert path.read_bytes() == PAYLOAD
    assert sorted(p.name for p in path.parent.iterdir()) == [NAME]
    checkpoints.verify_file(path, FILES["tiny"])


def test_verified_file_is_not_downloaded_again_unless_forced(server, tmp_path):
    kwargs = {"base_url": f"{server}/good", "files": FILES, "progress": False}
    checkpoints.download_checkpoint("tiny", tmp_path, **kwargs)
    before = len(Handler.requests)
    checkpoints.download_checkpoint("tiny", tmp_path, **kwargs)
    assert len(Handler.requests) == before
    checkpoints.download_checkpoint("tiny", tmp_path, force=True, **kwargs)
    assert len(Handler.requests) == before + 1


def test_damaged_file_under_the_final_name_is_replaced(server, tmp_path):
    (tmp_path / NAME).write_bytes(b"not a checkpoint")
    path = checkpoints.download_checkpoint(
        "tiny", tmp_path, base_url=f"{server}/good", files=FILES, progress=False
    )
    assert path.read_bytes() == PAYLOAD


@pytest.mark.parametrize(
    ("route", "message"),
    [("corrupt", "checksum mismatch for .*: md5"), ("missing", "HTTP 404 Not Found")],
)
def test_bad_download_raises_and_leaves_nothing_behind(server, tmp_path, route, message):
    with pytest.raises(CheckpointError, match=message):
        checkpoints.download_checkpoint(
            "tiny", tmp_path, base_url=f"{server}/{route}/", files=FILES, progress=False
        )
    assert list(tmp_path.iterdir()) == []  # neither the file nor NAME.part


def test_a_sha256_mismatch_fails_even_when_the_md5_matches(server, tmp_path):
    other = {"tiny": CheckpointFile("tiny", NAME, SPEC.md5, "0" * 64, SPEC.size)}
    with pytest.raises(CheckpointError, match="checksum mismatch for .*: sha256"):
        checkpoints.download_checkpoint(
            "tiny", tmp_path, base_url=f"{server}/good/", files=other, progress=False
        )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("route", ["short", "unannounced"])
def test_a_download_that_breaks_off_keeps_its_part_and_the_next_try_resumes(
    server, tmp_path, route
):
    with pytest.raises(CheckpointError, match="ended after 38400 bytes, expected 76800"):
        checkpoints.download_checkpoint(
            "tiny", tmp_path, base_url=f"{server}/{route}/", files=FILES, progress=False
        )
    part = tmp_path / f"{NAME}.part"
    assert [p.name for p in tmp_path.iterdir()] == [part.name]
    assert part.read_bytes() == PAYLOAD[:38400]

    path = checkpoints.download_checkpoint(
        "tiny", tmp_path, base_url=f"{server}/ranged/", files=FILES, progress=False
    )
    assert Handler.ranges[-1] == "bytes=38400-"  # only the rest was asked for
    assert path.read_bytes() == PAYLOAD
    assert [p.name for p in tmp_path.iterdir()] == [NAME]


def test_a_server_that_ignores_the_range_sends_the_whole_file_again(server, tmp_path):
    (tmp_path / f"{NAME}.part").write_bytes(PAYLOAD[:1000])
    path = checkpoints.download_checkpoint(
        "tiny", tmp_path, base_url=f"{server}/good/", files=FILES, progress=False
    )
    assert Handler.ranges[-1] == "bytes=1000-"
    assert path.read_bytes() == PAYLOAD
    assert [p.name for p in tmp_path.iterdir()] == [NAME]


def test_a_damaged_part_fails_the_checksum_and_the_next_try_starts_over(server, tmp_path):
    (tmp_path / f"{NAME}.part").write_bytes(b"x" * 1000)
    kwargs = {"base_url": f"{server}/ranged/", "files": FILES, "progress": False}
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        checkpoints.download_checkpoint("tiny", tmp_path, **kwargs)
    assert list(tmp_path.iterdir()) == []
    path = checkpoints.download_checkpoint("tiny", tmp_path, **kwargs)
    assert Handler.ranges[-1] is None
    assert path.read_bytes() == PAYLOAD


def test_a_complete_part_is_checked_and_renamed_without_a_request(server, tmp_path):
    (tmp_path / f"{NAME}.part").write_bytes(PAYLOAD)
    before = len(Handler.requests)
    path = checkpoints.download_checkpoint(
        "tiny", tmp_path, base_url=f"{server}/good/", files=FILES, progress=False
    )
    assert len(Handler.requests) == before
    assert path.read_bytes() == PAYLOAD and [p.name for p in tmp_path.iterdir()] == [NAME]


def test_wrong_announced_size_is_refused_before_downloading(server, tmp_path):
    bigger = {"tiny": CheckpointFile("tiny", NAME, SPEC.md5, SPEC.sha256, len(PAYLOAD) + 1)}
    with pytest.raises(CheckpointError, match="is 76800 bytes, expected 76801"):
        checkpoints.download_checkpoint(
            "tiny", tmp_path, base_url=f"{server}/good/", files=bigger, progress=False
        )
    assert list(tmp_path.iterdir()) == []


def test_unknown_model_type_names_the_choices(tmp_path):
    with pytest.raises(CheckpointError, match="choose one of vit_h, vit_l, vit_b"):
        checkpoints.download_checkpoint("vit_x", tmp_path)


def test_unreachable_host_raises_with_instructions(tmp_path):
    url = unreachable_url()
    with pytest.raises(HostUnreachableError) as info:
        checkpoints.download_checkpoint("tiny", tmp_path, base_url=url, files=FILES)
    assert f"{url}{NAME}" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_main_offline_exits_2_explaining_cold_start_and_manual_copy(tmp_path, capsys):
    url = unreachable_url()
    status = checkpoints.main(["download", "vit_b", "--dir", str(tmp_path), "--base-url", url])
    err = capsys.readouterr().err
    assert status == 2
    assert "could not be reached" in err and "cold start" in err
    assert f"{url}sam_vit_b_01ec64.pth" in err
    assert str((tmp_path / "sam_vit_b_01ec64.pth").absolute()) in err


def test_main_default_dir_comes_from_the_environment(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SADE_CHECKPOINT_DIR", str(tmp_path / "from-env"))
    status = checkpoints.main(["download", "vit_l", "--base-url", unreachable_url()])
    assert status == 2
    assert str(tmp_path / "from-env" / "sam_vit_l_0b3195.pth") in capsys.readouterr().err


def test_main_names_an_http_error(server, tmp_path, capsys):
    status = checkpoints.main(
        ["download", "vit_b", "--dir", str(tmp_path), "--base-url", f"{server}/good/"]
    )
    assert status == 1
    assert "HTTP 404" in capsys.readouterr().err


def test_main_list_names_the_three_models(capsys):
    assert checkpoints.main(["list"]) == 0
    out = capsys.readouterr().out
    for model, name in [
        ("vit_h", "sam_vit_h_4b8939.pth"),
        ("vit_l", "sam_vit_l_0b3195.pth"),
        ("vit_b", "sam_vit_b_01ec64.pth"),
    ]:
        assert model in out and name in out


def test_official_table_md5s_extend_the_names():
    for spec in checkpoints.OFFICIAL_FILES.values():
        assert spec.filename == f"sam_{spec.model_type}_{spec.md5[:6]}.pth"


def test_main_verify_rejects_a_file_that_is_not_a_checkpoint(tmp_path, capsys):
    path = tmp_path / "sam_vit_b_01ec64.pth"
    path.write_bytes(b"tiny")
    assert checkpoints.main(["verify", str(path)]) == 1
    assert "4 bytes, expected 375042383" in capsys.readouterr().err
    assert checkpoints.main(["verify", str(tmp_path / "other.bin")]) == 1
