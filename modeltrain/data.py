"""The files a training round runs on (no Django): a round first exports what it needs from the
database into a folder, then training and evaluation read only that folder.

    <folder>/manifest.jsonl      JSON lines: first {"format": 2, "model_type", "encoder_key"},
                                  then one line per image, {"train": record} or
                                  {"heldout": record} (``ImageRecord``), and one per stored
                                  mask the export refused, {"left_out": {...}}; last
                                  {"end": {"train_images", "train_masks", "heldout_images",
                                  "heldout_masks", "left_out"}}
    <folder>/embeddings/<sha>.emb  Embedding.to_bytes() of the frozen encoder (decoder-only
                                  rounds); hard links into the embedding cache where possible

Masks are COCO RLE in the image's own pixel frame; ``path`` is the stored image file.

Neither side holds the round in memory, whatever its size: the export writes a line per image
as it goes (``ManifestWriter``), and the reader keeps only each record's place in the file and
its mask count (``RecordList``, 16 bytes an image), reading a record when it is asked for.
"""

from __future__ import annotations

import json
import os
import shutil
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, overload

import numpy as np

from engine import Embedding
from engine import rle as rle_codec
from engine.images import load_image

MANIFEST = "manifest.jsonl"
FORMAT = 2
SPLITS = ("train", "heldout")


@dataclass(frozen=True)
class MaskRecord:
    id: int
    rle: dict[str, Any]


@dataclass(frozen=True)
class ImageRecord:
    """One image of a round: its database id, stored file, content hash, size, masks and (for
    a decoder-only round) the embedding file relative to the round's folder."""

    image_id: int
    path: str
    sha256: str
    height: int
    width: int
    masks: list[MaskRecord] = field(default_factory=list)
    embedding: str | None = None

    def load_pixels(self, max_pixels: int = 64_000_000) -> np.ndarray:
        """uint8 (H, W, 3) RGB; raises ValueError when the file no longer matches the record."""
        pixels = load_image(self.path, max_pixels=max(max_pixels, self.height * self.width)).array
        if pixels.shape[:2] != (self.height, self.width):
            raise ValueError(
                f"image {self.image_id}: file {self.path} is {pixels.shape[1]}x{pixels.shape[0]}, "
                f"the export says {self.width}x{self.height}"
            )
        return pixels

    def load_masks(self) -> np.ndarray:
        """bool (N, H, W), one plane per mask; RLEError (a ValueError) when a mask in the file
        does not fit the image."""
        if not self.masks:
            return np.zeros((0, self.height, self.width), bool)
        size = (self.height, self.width)
        return np.stack([rle_codec.decode(m.rle, expected_size=size) for m in self.masks])

    def load_embedding(self, folder: Path) -> Embedding:
        if self.embedding is None:
            raise ValueError(f"image {self.image_id} was exported without an embedding")
        return Embedding.from_bytes((folder / self.embedding).read_bytes())


class RecordList(Sequence[ImageRecord]):
    """The image records of one split of a manifest, read from the file when asked for: only
    their offsets and mask counts are held (16 bytes an image)."""

    def __init__(self, path: Path, offsets: array, mask_counts: array) -> None:
        self.path, self._offsets, self._counts = path, offsets, mask_counts

    def __len__(self) -> int:
        return len(self._offsets)

    @overload
    def __getitem__(self, index: int) -> ImageRecord: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[ImageRecord]: ...
    def __getitem__(self, index: int | slice) -> ImageRecord | Sequence[ImageRecord]:
        if isinstance(index, slice):
            return RecordList(self.path, self._offsets[index], self._counts[index])
        with open(self.path, "rb") as fh:
            return self._read(fh, self._offsets[index])

    def __iter__(self) -> Iterator[ImageRecord]:
        with open(self.path, "rb") as fh:
            for offset in self._offsets:
                yield self._read(fh, offset)

    @property
    def masks(self) -> int:
        return sum(self._counts)

    def with_masks(self) -> RecordList:
        """The records that have at least one mask."""
        offsets, counts = array("q"), array("q")
        for offset, count in zip(self._offsets, self._counts, strict=True):
            if count:
                offsets.append(offset)
                counts.append(count)
        return RecordList(self.path, offsets, counts)

    @staticmethod
    def _read(fh: IO[bytes], offset: int) -> ImageRecord:
        fh.seek(offset)
        ((_, raw),) = json.loads(fh.readline()).items()
        return _record(raw)


@dataclass(frozen=True)
class RoundData:
    """The contents of an exported round folder; ``left_out``: the stored masks the export
    refused ({"mask_id", "image_id", "reason"}: an RLE that does not fit its image)."""

    folder: Path
    model_type: str
    encoder_key: str
    train: RecordList
    heldout: RecordList
    left_out: list[dict[str, Any]] = field(default_factory=list)

    @property
    def train_masks(self) -> int:
        return self.train.masks

    @property
    def heldout_masks(self) -> int:
        return self.heldout.masks


def embedding_name(sha256: str) -> str:
    return f"embeddings/{sha256}.emb"


def place_embedding(folder: Path, sha256: str, source: Path | None, embedding: Embedding) -> str:
    """Put an image's embedding into the round folder: a hard link to the cache file when there
    is one on the same file system (free, and safe from the cache's eviction), else a copy or a
    fresh write. Returns the name relative to ``folder``."""
    name = embedding_name(sha256)
    target = folder / name
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        return name
    if source is not None and source.is_file():
        try:
            os.link(source, target)
            return name
        except OSError:
            try:
                shutil.copyfile(source, target)
                return name
            except OSError:
                pass
    target.write_bytes(embedding.to_bytes())
    return name


class ManifestWriter:
    """Writes a round's manifest a line at a time into a hidden file, renamed into place when
    the ``with`` block ends without an error (a reader never sees half a manifest)."""

    def __init__(self, folder: Path, *, model_type: str, encoder_key: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path, self._tmp = folder / MANIFEST, folder / f".{MANIFEST}.tmp"
        self._fh = open(self._tmp, "w", encoding="utf-8")
        self._line({"format": FORMAT, "model_type": model_type, "encoder_key": encoder_key})
        self.counts = dict.fromkeys(
            ("train_images", "train_masks", "heldout_images", "heldout_masks", "left_out"), 0
        )

    def add(self, split: str, record: ImageRecord) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self._line({split: asdict(record)})
        self.counts[f"{split}_images"] += 1
        self.counts[f"{split}_masks"] += len(record.masks)

    def left_out(self, entry: dict[str, Any]) -> None:
        self._line({"left_out": entry})
        self.counts["left_out"] += 1

    def _line(self, payload: dict[str, Any]) -> None:
        self._fh.write(json.dumps(payload, separators=(",", ":")))
        self._fh.write("\n")

    def __enter__(self) -> ManifestWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if kind is None:
                self._line({"end": self.counts})
        finally:
            self._fh.close()
        if kind is None:
            os.replace(self._tmp, self.path)
        else:
            self._tmp.unlink(missing_ok=True)


def write_manifest(
    folder: Path,
    *,
    model_type: str,
    encoder_key: str,
    train: Iterable[ImageRecord],
    heldout: Iterable[ImageRecord],
    left_out: Iterable[dict[str, Any]] = (),
) -> Path:
    """Write a whole manifest at once (``ManifestWriter`` writes one as records come)."""
    with ManifestWriter(folder, model_type=model_type, encoder_key=encoder_key) as writer:
        for split, records in (("train", train), ("heldout", heldout)):
            for record in records:
                writer.add(split, record)
        for entry in left_out:
            writer.left_out(entry)
    return writer.path


def _record(raw: dict[str, Any]) -> ImageRecord:
    masks = [MaskRecord(id=int(m["id"]), rle=m["rle"]) for m in raw.get("masks", [])]
    return ImageRecord(
        image_id=int(raw["image_id"]),
        path=str(raw["path"]),
        sha256=str(raw["sha256"]),
        height=int(raw["height"]),
        width=int(raw["width"]),
        masks=masks,
        embedding=raw.get("embedding"),
    )


def read_round(folder: str | os.PathLike) -> RoundData:
    """Read an exported round folder's manifest in one pass, line by line, keeping the place of
    each record; ValueError when it is missing, of another format or cut short."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise ValueError(f"{folder} holds no {MANIFEST}: export the round first")
    places = {split: (array("q"), array("q")) for split in SPLITS}
    left_out: list[dict[str, Any]] = []
    ended = False
    with open(path, "rb") as fh:
        header = json.loads(fh.readline() or b"{}")
        if header.get("format") != FORMAT:
            raise ValueError(f"{path} has format {header.get('format')!r}, expected {FORMAT}")
        offset = fh.tell()
        for line in fh:
            ((key, value),) = json.loads(line).items()
            if key in places:
                places[key][0].append(offset)
                places[key][1].append(len(value.get("masks", [])))
            elif key == "left_out":
                left_out.append(value)
            elif key == "end":
                ended = True
            offset += len(line)
    if not ended:
        raise ValueError(f"{path} is cut short: export the round again")
    train, heldout = (RecordList(path, *places[split]) for split in SPLITS)
    return RoundData(
        folder=folder,
        model_type=str(header["model_type"]),
        encoder_key=str(header["encoder_key"]),
        train=train,
        heldout=heldout,
        left_out=left_out,
    )
