"""The files a training round runs on (no Django): a round first exports what it needs from the
database into a folder, then training and evaluation read only that folder.

    <folder>/manifest.json       {"format": 1, "model_type", "encoder_key", "train": [...],
                                  "heldout": [...], "left_out": [...]}, one record per image
                                  (``ImageRecord``), and the stored masks the export refused
    <folder>/embeddings/<sha>.emb  Embedding.to_bytes() of the frozen encoder (decoder-only
                                  rounds); hard links into the embedding cache where possible

Masks are COCO RLE in the image's own pixel frame; ``path`` is the stored image file.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine import Embedding
from engine import rle as rle_codec
from engine.images import load_image

MANIFEST = "manifest.json"
FORMAT = 1


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


@dataclass(frozen=True)
class RoundData:
    """The contents of an exported round folder; ``left_out``: the stored masks the export
    refused ({"mask_id", "image_id", "reason"}: an RLE that does not fit its image)."""

    folder: Path
    model_type: str
    encoder_key: str
    train: list[ImageRecord]
    heldout: list[ImageRecord]
    left_out: list[dict[str, Any]] = field(default_factory=list)

    @property
    def train_masks(self) -> int:
        return sum(len(r.masks) for r in self.train)

    @property
    def heldout_masks(self) -> int:
        return sum(len(r.masks) for r in self.heldout)


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


def write_manifest(
    folder: Path,
    *,
    model_type: str,
    encoder_key: str,
    train: list[ImageRecord],
    heldout: list[ImageRecord],
    left_out: list[dict[str, Any]] | None = None,
) -> Path:
    """Write manifest.json atomically (a reader never sees half a manifest)."""
    folder.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "model_type": model_type,
        "encoder_key": encoder_key,
        "train": [asdict(r) for r in train],
        "heldout": [asdict(r) for r in heldout],
        "left_out": left_out or [],
    }
    tmp = folder / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(payload))
    os.replace(tmp, folder / MANIFEST)
    return folder / MANIFEST


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
    """Read an exported round folder; ValueError when it is missing or of another format."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise ValueError(f"{folder} holds no {MANIFEST}: export the round first")
    raw = json.loads(path.read_text())
    if raw.get("format") != FORMAT:
        raise ValueError(f"{path} has format {raw.get('format')!r}, expected {FORMAT}")
    return RoundData(
        folder=folder,
        model_type=str(raw["model_type"]),
        encoder_key=str(raw["encoder_key"]),
        train=[_record(r) for r in raw["train"]],
        heldout=[_record(r) for r in raw["heldout"]],
        left_out=list(raw.get("left_out", [])),
    )
