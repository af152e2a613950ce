"""Shared fixtures: users and datasets with roles, API clients, isolated storage and the tiny
model. The storage isolation is opted into by tests/annotation, tests/api and tests/modeltrain
(their conftest.py), so integration tests with real workers keep their own settings."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from rest_framework.test import APIClient

from annotation.models import Role
from deploy.celery import app as celery_app
from tests import factories

TEST_MODEL_SEED = 1234
TEST_MODEL_TRAINED_ON = "nothing: random initialisation (test model)"


@pytest.fixture(scope="session")
def shared_embedding_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Embeddings are content-addressed (image hash x encoder key), so tests may share them just
    # as processes do in production; it saves recomputing the same image's embedding.
    return tmp_path_factory.mktemp("embeddings")


@pytest.fixture
def isolated_storage(settings, tmp_path: Path, shared_embedding_dir: Path) -> Iterator[Path]:
    """Every file the platform writes goes under tmp_path; Celery runs tasks inline."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.CHECKPOINT_DIR = tmp_path / "checkpoints"
    settings.EMBEDDING_DIR = shared_embedding_dir
    settings.SA1B_DOC_DIR = tmp_path / "sa1b_docs"
    settings.SAM_CHECKPOINT = ""
    settings.SAM_MODEL_TYPE = "vit_b"
    settings.SAM_DEVICE = "cpu"
    settings.IMPORT_SHORT_SIDE = 0
    # The default PBKDF2 costs ~0.5 s per user on a small machine.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.CACHES = {
        "default": {
            "BACKEND": "deploy.cache.UncompressedFileCache",
            "LOCATION": str(tmp_path / "cache"),
        }
    }
    previous = (celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates)
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield tmp_path
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = previous


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded vit_tiny saved once per test session (build_sam loads it in a few ms)."""
    from engine import build_sam, save_checkpoint

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TEST_MODEL_SEED)
        model = build_sam("vit_tiny")
    path = tmp_path_factory.mktemp("checkpoints") / "tiny.pt"
    save_checkpoint(model, path, round=0, trained_on=TEST_MODEL_TRAINED_ON)
    return path


@pytest.fixture
def tiny_model(settings, db, isolated_storage, tiny_checkpoint: Path):
    """The active model version: the seeded vit_tiny."""
    from registry.active import get_active_version

    settings.SAM_MODEL_TYPE = "vit_tiny"
    settings.SAM_CHECKPOINT = str(tiny_checkpoint)
    return get_active_version()


@pytest.fixture
def admin_user(db):
    return factories.make_user("admin", staff=True)


@pytest.fixture
def annotator(db):
    return factories.make_user("annie")


@pytest.fixture
def dataset_admin(db):
    return factories.make_user("dana")


@pytest.fixture
def outsider(db):
    """An annotator of another dataset."""
    return factories.make_user("otto")


@pytest.fixture
def dataset(annotator, dataset_admin):
    return factories.make_dataset(
        "cats", [(annotator, Role.ANNOTATOR), (dataset_admin, Role.ADMIN)]
    )


@pytest.fixture
def other_dataset(outsider):
    return factories.make_dataset("dogs", [(outsider, Role.ANNOTATOR)])


@pytest.fixture
def image(dataset, isolated_storage):
    return factories.add_image(dataset)


@pytest.fixture
def client_for() -> Callable[..., APIClient]:
    def make(user=None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return make


@pytest.fixture
def anon_client(client_for):
    return client_for(None)


@pytest.fixture
def annotator_client(client_for, annotator):
    return client_for(annotator)


@pytest.fixture
def outsider_client(client_for, outsider, other_dataset):
    return client_for(outsider)


@pytest.fixture
def admin_client(client_for, admin_user):
    return client_for(admin_user)


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` need a CUDA device: where there is none (CI, this CPU-only machine)
    they are deselected, and the count is said in the summary; benchmarks/gpu_check.sh runs them
    on a GPU machine."""
    if torch.cuda.is_available():
        return
    gpu = [item for item in items if item.get_closest_marker("gpu")]
    if gpu:
        items[:] = [item for item in items if not item.get_closest_marker("gpu")]
        config.hook.pytest_deselected(items=gpu)
