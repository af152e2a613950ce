"""The uncompressed file cache behind the predict logits (deploy.cache)."""

import time

import numpy as np
import pytest

from deploy import cache as cache_module
from deploy.cache import UncompressedFileCache


@pytest.fixture
def cache(tmp_path):
    return UncompressedFileCache(str(tmp_path), {"OPTIONS": {"MAX_ENTRIES": 5}})


def test_round_trip_of_float16_logits(cache):
    logits = np.random.default_rng(0).standard_normal((256, 256)).astype(np.float16)
    cache.set("a", logits.tobytes(), timeout=60)
    back = np.frombuffer(cache.get("a"), dtype=np.float16).reshape(256, 256)
    assert np.array_equal(back, logits)
    assert cache.get("missing", "default") == "default"


def test_values_expire(cache):
    cache.set("short", b"x", timeout=1)
    assert cache.get("short") == b"x"
    time.sleep(1.1)
    assert cache.get("short") is None


def test_touch_extends_and_keeps_the_value(cache):
    cache.set("k", {"v": 1}, timeout=1)
    assert cache.touch("k", timeout=60)
    time.sleep(1.1)
    assert cache.get("k") == {"v": 1}
    assert cache.touch("nope") is False


def test_culls_periodically_not_on_every_write(cache, monkeypatch):
    monkeypatch.setattr(cache_module, "CULL_EVERY", 4)
    for i in range(12):
        cache.set(f"k{i}", i, timeout=60)
    remaining = len(cache._list_cache_files())
    assert remaining < 12  # culling ran and removed entries
    assert remaining > 5  # but not after each write: entries above MAX_ENTRIES survive between


def test_files_are_not_zlib_compressed(cache, tmp_path):
    import pickle

    cache.set("p", b"payload" * 10, timeout=60)
    (path,) = [p for p in tmp_path.iterdir() if p.suffix == ".djcache"]
    with path.open("rb") as f:
        pickle.load(f)  # expiry
        assert pickle.load(f) == b"payload" * 10
