"""The SA-1B shard writer makes its tar headers from a template instead of through tarfile
for each member: a shard is byte for byte the one tarfile writes for the same members, and
names or sizes a plain ustar header cannot hold still go through tarfile."""

from __future__ import annotations

import io
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
