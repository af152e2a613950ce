"""The SA-1B shard writer makes its tar headers from a template instead of through tarfile
for each member: a shard is byte for byte the one tarfile writes for the same members, and
names or sizes a plain ustar header cannot hold still go through tarfile."""

from __future__ import annotations

import errno
import io
import os
import tarfile

import pytest

from annotation.services.sa1b import COPY_BUFFER, _ShardWriter

NAMES = ["a", "sa_1.jpg", "sa_9223372036854775807.json", "x" * 99]
SIZES = [0, 1, 511, 512, 513, 70_000, 8**11 - 1]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("size", SIZES)
def test_each_header_is_the_one_tarfile_writes(tmp_path, name, size):
    writer = _ShardWriter(tmp_path, 10)
    expected = writer._info(name, size).tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    assert writer._header(name, size) == expected


@pytest.mark.parametrize("name,size", [("x" * 100, 5), ("é.json", 5), ("big", 8**11)])
def test_what_a_plain_header_cannot_hold_goes_through_tarfile(tmp_path, name, size):
    assert _ShardWriter(tmp_path, 10)._header(name, size) is None


def test_a_shard_is_the_tar_tarfile_writes(tmp_path):
    members = [
        ("sa_1.jpg", b"\xff\xd8" + bytes(range(256)) * 40),
        ("sa_1.json", b'{"image": {}, "annotations": []}'),
        ("y" * 120 + ".json", b"long name, pax header"),  # through tarfile
        ("sa_2.jpg", b""),
        ("sa_2.json", b"{}" * 300),
    ]
    writer = _ShardWriter(tmp_path, 10)
    writer.tar = tarfile.open(tmp_path / "fast.tar", "w", format=tarfile.PAX_FORMAT)
    writer.shards.append({"file": "fast.tar"})
    for i, (name, data) in enumerate(members):
        if i % 2:
            writer._member(name, len(data), data=data)
        else:
            writer._member(name, len(data), io.BytesIO(data))
    writer.close()

    with tarfile.open(
        tmp_path / "plain.tar", "w", format=tarfile.PAX_FORMAT, copybufsize=COPY_BUFFER
    ) as plain:
        for name, data in members:
            plain.addfile(writer._info(name, len(data)), io.BytesIO(data))
    assert (tmp_path / "fast.tar").read_bytes() == (tmp_path / "plain.tar").read_bytes()
    with tarfile.open(tmp_path / "fast.tar") as archive:
        assert [(m.name, archive.extractfile(m).read()) for m in archive] == members


def _shard_of_files(tmp_path, members, name="files.tar"):
    """A shard whose images are copied from files on disk, as an export copies them. Its
    members' mtime is fixed: shards compared byte for byte may be written seconds apart."""
    writer = _ShardWriter(tmp_path, 10)
    writer.mtime = 1_700_000_000
    writer.tar = tarfile.open(tmp_path / name, "w", format=tarfile.PAX_FORMAT)
    writer.shards.append({"file": name})
    for i, (member, data) in enumerate(members):
        source = tmp_path / f"source-{i}"
        source.write_bytes(data)
        with open(source, "rb") as fh:
            writer._member(member, len(data), fh)
        writer._member(member + ".json", 3, data=b"{ }")
    writer.close()
    return (tmp_path / name).read_bytes()


FILES = [("sa_1.jpg", bytes(range(256)) * 3000), ("sa_2.jpg", b""), ("sa_3.jpg", b"\xff" * 513)]


def _counted(monkeypatch, name: str) -> list:
    """Replace os.<name> by itself, recording each call's arguments."""
    calls: list = []
    real = getattr(os, name)

    def counting(*args):
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(os, name, counting)
    return calls


def test_files_copied_by_the_kernel_make_the_same_shard(tmp_path, monkeypatch):
    calls = _counted(monkeypatch, "copy_file_range")
    in_kernel = _shard_of_files(tmp_path, FILES, "kernel.tar")
    assert calls, "the images went through Python, not copy_file_range"
    monkeypatch.delattr(os, "copy_file_range")
    monkeypatch.delattr(os, "sendfile")
    through_python = _shard_of_files(tmp_path, FILES, "python.tar")
    assert in_kernel == through_python
    with tarfile.open(tmp_path / "kernel.tar") as archive:
        assert archive.extractfile("sa_1.jpg").read() == FILES[0][1]


def _refuse(*args):
    raise OSError(errno.EXDEV, "cross-device")


def test_across_file_systems_sendfile_copies(tmp_path, monkeypatch):
    """copy_file_range stays within one file system (EXDEV otherwise, as from the media to a
    tmpfs); sendfile copies between any two files."""
    expected = _shard_of_files(tmp_path, FILES, "expected.tar")
    monkeypatch.setattr(os, "copy_file_range", _refuse)
    sent = _counted(monkeypatch, "sendfile")
    assert _shard_of_files(tmp_path, FILES, "sent.tar") == expected
    assert sent, "the images went through Python, not sendfile"


def test_without_any_kernel_copy_python_copies(tmp_path, monkeypatch):
    expected = _shard_of_files(tmp_path, FILES, "expected.tar")
    monkeypatch.setattr(os, "copy_file_range", _refuse)
    monkeypatch.setattr(os, "sendfile", _refuse)
    assert _shard_of_files(tmp_path, FILES, "python.tar") == expected

    def sockets_only(*args):  # macOS's sendfile
        raise OSError(errno.ENOTSOCK, "Socket operation on non-socket")

    monkeypatch.delattr(os, "copy_file_range")
    monkeypatch.setattr(os, "sendfile", sockets_only)
    assert _shard_of_files(tmp_path, FILES, "macos.tar") == expected
    monkeypatch.delattr(os, "sendfile")
    assert _shard_of_files(tmp_path, FILES, "neither.tar") == expected


@pytest.mark.parametrize("ways", [("copy_file_range",), ("sendfile",), ()])
def test_an_image_that_shrinks_during_the_copy_is_an_error(tmp_path, monkeypatch, ways):
    for name in {"copy_file_range", "sendfile"} - set(ways):
        monkeypatch.setattr(os, name, _refuse)
    source = tmp_path / "image.jpg"
    source.write_bytes(b"\xff" * 100)
    writer = _ShardWriter(tmp_path, 10)
    writer.tar = tarfile.open(tmp_path / "s.tar", "w", format=tarfile.PAX_FORMAT)
    with open(source, "rb") as fh, pytest.raises(OSError, match="unexpected end of data"):
        writer._member("sa_1.jpg", 1000, fh)  # its size was read as 1000 bytes
