"""engine.store: the on-disk embedding cache (round trip, atomic writes, corruption, LRU)."""

import hashlib
import logging
import multiprocessing
import os
import time

import numpy as np
import pytest
import torch

from engine.embedding import Embedding
from engine.store import EmbeddingStore

KEY = "vit_b-enc-3f2a"


def sha(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def constant_embedding(value: int, shape=(256, 32, 32)) -> Embedding:
    """fp16 features filled with ``value`` and sizes derived from it, so a torn read shows."""
    features = torch.from_numpy(np.full(shape, value, np.float16))
    return Embedding(features, (value, value + 1), (10 * value, 10 * value + 1))


def test_round_trip_is_fp16_close_and_keeps_sizes(tmp_path):
    store = EmbeddingStore(tmp_path)
    features = torch.randn(256, 16, 16, generator=torch.Generator().manual_seed(0))
    original = Embedding(features, (480, 640), (768, 1024))
    path = store.put(sha("a"), KEY, original)
    assert path == tmp_path / KEY / sha("a")[:2] / f"{sha('a')}.emb"
    got = store.get(sha("a"), KEY)
    assert got is not None
    assert got.features.dtype == torch.float16 and got.features.shape == (256, 16, 16)
    torch.testing.assert_close(got.features.float(), features, rtol=1e-3, atol=1e-3)
    assert got.original_size == (480, 640) and got.input_size == (768, 1024)
    assert store.contains(sha("a"), KEY)
    assert store.size_bytes() == path.stat().st_size


def test_miss_returns_none_and_keys_are_independent(tmp_path):
    store = EmbeddingStore(tmp_path)
    assert store.get(sha("a"), KEY) is None
    store.put(sha("a"), KEY, constant_embedding(1, (4, 2, 2)))
    assert store.get(sha("a"), "other-encoder") is None
    assert not store.contains(sha("b"), KEY)


def test_corrupt_file_is_logged_removed_and_treated_as_missing(tmp_path, caplog):
    store = EmbeddingStore(tmp_path)
    path = store.put(sha("a"), KEY, constant_embedding(1, (4, 2, 2)))
    path.write_bytes(path.read_bytes()[:40])
    with caplog.at_level(logging.WARNING, logger="engine.store"):
        assert store.get(sha("a"), KEY) is None
    assert not path.exists()
    assert "corrupt" in caplog.text and str(path) in caplog.text


def _writer(root: str, value: int, repeats: int) -> None:
    store = EmbeddingStore(root)
    embedding = constant_embedding(value)
    for _ in range(repeats):
        store.put(sha("shared"), KEY, embedding)


def test_concurrent_writers_never_expose_a_partial_file(tmp_path, caplog):
    # fork: the children only serialise tensors, and spawning would re-import torch per child
    ctx = multiprocessing.get_context("fork")
    writers = [ctx.Process(target=_writer, args=(str(tmp_path), v, 25)) for v in (1, 2, 3)]
    store = EmbeddingStore(tmp_path)
    seen: set[int] = set()
    with caplog.at_level(logging.WARNING, logger="engine.store"):
        for proc in writers:
            proc.start()
        running = True
        while running:
            running = any(proc.is_alive() for proc in writers)  # one more read after they end
            got = store.get(sha("shared"), KEY)
            if got is None:
                continue
            value = got.original_size[0]
            assert value in (1, 2, 3)
            assert got.original_size == (value, value + 1)
            assert got.input_size == (10 * value, 10 * value + 1)
            assert torch.all(got.features == value)
            seen.add(value)
    for proc in writers:
        proc.join()
        assert proc.exitcode == 0
    assert seen  # the read after the writers finished must find a complete entry
    assert not caplog.records  # no read ever found a corrupt (partial) file
    leftovers = [p.name for p in tmp_path.rglob("*") if p.is_file()]
    assert leftovers == [f"{sha('shared')}.emb"]


def _age(path, seconds_ago: float) -> None:
    t = time.time() - seconds_ago
    os.utime(path, (t, t))


def test_cleanup_evicts_least_recently_used_and_keeps_recent_reads(tmp_path):
    store = EmbeddingStore(tmp_path)
    paths = {n: store.put(sha(n), KEY, constant_embedding(1, (8, 4, 4))) for n in "abcd"}
    for age, n in zip((400, 300, 200, 100), "abcd", strict=True):
        _age(paths[n], age)
    assert store.get(sha("a"), KEY) is not None  # the oldest write, but just read
    size = paths["a"].stat().st_size
    freed = store.cleanup(max_bytes=2 * size)
    assert freed == 2 * size
    assert sorted(n for n, p in paths.items() if p.exists()) == ["a", "d"]
    assert store.size_bytes() == 2 * size


def test_put_over_max_bytes_evicts_the_oldest(tmp_path):
    probe = EmbeddingStore(tmp_path / "probe")
    size = probe.put(sha("x"), KEY, constant_embedding(1, (8, 4, 4))).stat().st_size
    store = EmbeddingStore(tmp_path / "cache", max_bytes=2 * size + size // 2)
    first = store.put(sha("a"), KEY, constant_embedding(1, (8, 4, 4)))
    second = store.put(sha("b"), KEY, constant_embedding(1, (8, 4, 4)))
    _age(first, 200)
    _age(second, 100)
    third = store.put(sha("c"), KEY, constant_embedding(1, (8, 4, 4)))
    assert not first.exists() and second.exists() and third.exists()


def test_cleanup_removes_only_stale_temp_files(tmp_path):
    store = EmbeddingStore(tmp_path)
    path = store.put(sha("a"), KEY, constant_embedding(1, (4, 2, 2)))
    stale = path.parent / ".tmp-dead.emb"
    fresh = path.parent / ".tmp-live.emb"
    stale.write_bytes(b"x" * 10)
    fresh.write_bytes(b"y" * 7)
    _age(stale, 2 * 3600)
    assert store.cleanup() == 10
    assert not stale.exists() and fresh.exists() and path.exists()
    assert store.size_bytes() == path.stat().st_size  # temp files are not entries


def test_delete_model_removes_only_that_model(tmp_path):
    store = EmbeddingStore(tmp_path)
    gone = store.put(sha("a"), KEY, constant_embedding(1, (4, 2, 2)))
    kept = store.put(sha("a"), "other", constant_embedding(2, (4, 2, 2)))
    size = gone.stat().st_size
    assert store.delete_model(KEY) == size
    assert not (tmp_path / KEY).exists() and kept.exists()
    assert store.delete_model(KEY) == 0


@pytest.mark.parametrize("key", ["..", ".", "../x", "a/b", "a\\b", "", ".hidden", "k" * 129, "é"])
def test_path_traversal_encoder_keys_are_rejected(tmp_path, key):
    store = EmbeddingStore(tmp_path / "cache")
    with pytest.raises(ValueError, match="encoder_key"):
        store.put(sha("a"), key, constant_embedding(1, (4, 2, 2)))
    with pytest.raises(ValueError, match="encoder_key"):
        store.get(sha("a"), key)
    with pytest.raises(ValueError, match="encoder_key"):
        store.delete_model(key)
    assert list(tmp_path.rglob("*")) == []


@pytest.mark.parametrize("bad", ["../" + "a" * 61, "a" * 63, "g" * 64, "a" * 65, None])
def test_bad_image_hashes_are_rejected(tmp_path, bad):
    with pytest.raises(ValueError, match="64 hex digits"):
        EmbeddingStore(tmp_path).get(bad, KEY)


def test_uppercase_hash_names_the_same_entry(tmp_path):
    store = EmbeddingStore(tmp_path)
    store.put(sha("a").upper(), KEY, constant_embedding(3, (4, 2, 2)))
    got = store.get(sha("a"), KEY)
    assert got is not None and got.original_size == (3, 4)
