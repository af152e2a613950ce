"""The embedding cache on disk: embed once per image and encoder, decode many times.

Entries are content-addressed: ``root/<encoder_key>/<sha[:2]>/<sha>.emb`` where ``sha`` is the
sha256 of the image file and ``encoder_key`` names the encoder weights (a decoder-only retrain
keeps its key, so its embeddings are reused). Files hold ``Embedding.to_bytes()`` (fp16).

Writes go to a temporary file in the entry's directory and are renamed into place, so several
processes may read and write the same store at once and never see a partial file. Eviction is
least-recently-used by file mtime, which a cache hit refreshes.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

from engine.embedding import Embedding

log = logging.getLogger(__name__)

_SHA256 = re.compile(r"[0-9a-f]{64}")
_ENCODER_KEY = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")  # no leading dot: no "." or ".."
_SUFFIX = ".emb"
_TMP_PREFIX = ".tmp-"
STALE_TMP_SECONDS = 3600
# How long put() trusts its running total before rescanning the tree (other processes write too).
_RESCAN_SECONDS = 30.0


class EmbeddingStore:
    """A directory of cached embeddings, safe to share between processes.

    Args:
        root: directory holding the cache (created on first write).
        max_bytes: if set, a ``put`` that takes the cache over this size evicts the least
            recently used entries until it fits.
    """

    def __init__(self, root: str | os.PathLike, max_bytes: int | None = None) -> None:
        if max_bytes is not None and max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.root = Path(root)
        self.max_bytes = max_bytes
        self._total_estimate: int | None = None
        self._scanned_at = 0.0

    def path(self, image_sha256: str, encoder_key: str) -> Path:
        """Where the entry lives. Raises ValueError for a sha that is not 64 hex digits or an
        encoder key outside [A-Za-z0-9._-] (at most 128 characters, not starting with a dot)."""
        sha = image_sha256.lower() if isinstance(image_sha256, str) else image_sha256
        if not isinstance(sha, str) or not _SHA256.fullmatch(sha):
            raise ValueError(f"image_sha256 must be 64 hex digits, got {image_sha256!r}")
        return self._encoder_dir(encoder_key) / sha[:2] / f"{sha}{_SUFFIX}"

    def _encoder_dir(self, encoder_key: str) -> Path:
        if not isinstance(encoder_key, str) or not _ENCODER_KEY.fullmatch(encoder_key):
            raise ValueError(
                f"encoder_key must be 1-128 characters of [A-Za-z0-9._-] not starting with '.', "
                f"got {encoder_key!r}"
            )
        return self.root / encoder_key

    def get(self, image_sha256: str, encoder_key: str) -> Embedding | None:
        """The cached embedding (fp16 features), or None if absent. A corrupt file is logged,
        deleted and reported as absent; a hit refreshes the file's mtime for LRU eviction."""
        path = self.path(image_sha256, encoder_key)
        try:
            with open(path, "rb") as fh:
                inode = os.fstat(fh.fileno()).st_ino
                data = fh.read()
        except FileNotFoundError:
            return None
        try:
            embedding = Embedding.from_bytes(data)
        except ValueError as exc:
            log.warning("deleting corrupt embedding cache file %s: %s", path, exc)
            self._unlink_if_same(path, inode)
            return None
        try:
            os.utime(path)
        except FileNotFoundError:  # evicted or replaced meanwhile; the data read is still good
            pass
        return embedding

    @staticmethod
    def _unlink_if_same(path: Path, inode: int) -> None:
        # A writer may have renamed a good file into place since we read the bad one.
        try:
            if os.stat(path).st_ino == inode:
                path.unlink()
        except FileNotFoundError:
            pass

    def put(self, image_sha256: str, encoder_key: str, embedding: Embedding) -> Path:
        """Store (or replace) an entry atomically and return its path; then evict down to
        ``max_bytes`` if the cache has grown past it."""
        path = self.path(image_sha256, encoder_key)
        data = embedding.to_bytes()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_TMP_PREFIX, suffix=_SUFFIX)
        try:
            with os.fdopen(fd, "wb") as fh:
                os.fchmod(fh.fileno(), 0o644)  # mkstemp's 0600 would hide it from other users
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        if self.max_bytes is not None:
            self._maybe_cleanup(len(data), self.max_bytes)
        return path

    def _maybe_cleanup(self, added: int, limit: int) -> None:
        # Walking the whole tree on every put would be quadratic; trust a running total for a
        # while, and let cleanup() rescan (it measures the real size) when it looks too big.
        now = time.monotonic()
        if self._total_estimate is None or now - self._scanned_at > _RESCAN_SECONDS:
            self._total_estimate = self.size_bytes()
            self._scanned_at = now
        else:
            self._total_estimate += added
        if self._total_estimate > limit:
            self.cleanup()

    def contains(self, image_sha256: str, encoder_key: str) -> bool:
        """Whether an entry exists (without reading or validating it)."""
        return self.path(image_sha256, encoder_key).is_file()

    def _scan(self) -> tuple[list[tuple[float, int, Path]], list[tuple[float, int, Path]]]:
        """(entries, temp files) under root as (mtime, size, path), ignoring files that vanish."""
        entries: list[tuple[float, int, Path]] = []
        temps: list[tuple[float, int, Path]] = []
        if not self.root.is_dir():
            return entries, temps
        for dirpath, _dirnames, filenames in os.walk(self.root):
            for name in filenames:
                path = Path(dirpath) / name
                try:
                    st = path.stat()
                except FileNotFoundError:
                    continue
                if name.startswith(_TMP_PREFIX):
                    temps.append((st.st_mtime, st.st_size, path))
                elif name.endswith(_SUFFIX):
                    entries.append((st.st_mtime, st.st_size, path))
        return entries, temps

    def size_bytes(self) -> int:
        """Total size of the cached entries (not counting in-flight temporary files)."""
        return sum(size for _, size, _ in self._scan()[0])

    def cleanup(self, max_bytes: int | None = None) -> int:
        """Delete least-recently-used entries until the total is at most ``max_bytes`` (default:
        the store's ``max_bytes``; None keeps every entry), and temporary files left for over an
        hour by writers that died. Returns the bytes freed."""
        limit = self.max_bytes if max_bytes is None else max_bytes
        entries, temps = self._scan()
        freed = 0
        cutoff = time.time() - STALE_TMP_SECONDS
        for mtime, size, path in temps:
            if mtime < cutoff:
                freed += _unlink(path, size)
        total = sum(size for _, size, _ in entries)
        if limit is not None:
            for _mtime, size, path in sorted(entries, key=lambda e: e[0]):
                if total <= limit:
                    break
                freed += _unlink(path, size)
                total -= size
        self._total_estimate = total
        self._scanned_at = time.monotonic()
        return freed

    def delete_model(self, encoder_key: str) -> int:
        """Delete every entry of one encoder key; returns the bytes freed."""
        encoder_dir = self._encoder_dir(encoder_key)
        entries = EmbeddingStore(encoder_dir)._scan()
        freed = sum(size for _, size, _ in entries[0] + entries[1])
        shutil.rmtree(encoder_dir, ignore_errors=True)
        self._total_estimate = None
        return freed


def _unlink(path: Path, size: int) -> int:
    """Delete a file and return its size, or 0 if another process deleted it first."""
    try:
        path.unlink()
    except FileNotFoundError:
        return 0
    return size
