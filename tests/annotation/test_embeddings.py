"""Embeddings: computed once per image and encoder, status visible on the image."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from django.conf import settings

from annotation.models import EmbeddingStatus
from annotation.services import embeddings as embeddings_service
from annotation.services.embeddings import embedding_store, get_or_compute_embedding
from annotation.services.errors import EmbeddingUnavailable
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def fresh_embeddings(settings, tmp_path):
    settings.EMBEDDING_DIR = tmp_path / "fresh-embeddings"


def test_computes_on_first_use_then_reads_the_store(image, tiny_model, fresh_embeddings):
    first, computed = get_or_compute_embedding(image, tiny_model)
    second, computed_again = get_or_compute_embedding(image, tiny_model)

    assert computed is True and computed_again is False
    assert second is first  # the process keeps recent embeddings as they are
    assert first.features.shape == (256, 64, 64)
    assert first.original_size == (image.height, image.width)
    embeddings_service._recent.clear()  # as a new process would: read from the store (fp16)
    from_store, computed_later = get_or_compute_embedding(image, tiny_model)
    assert computed_later is False and from_store.features.dtype == torch.float16
    assert torch.allclose(first.features.half().float(), from_store.features.float())
    image.refresh_from_db()
    assert image.embedding_status == EmbeddingStatus.DONE
    assert image.encoder_key == tiny_model.encoder_key and image.embedding_error == ""


def test_store_is_keyed_by_the_stored_content_and_the_encoder(image, tiny_model):
    get_or_compute_embedding(image, tiny_model)

    assert embedding_store().contains(image.content_sha256, tiny_model.encoder_key)


def test_an_existing_embedding_marks_the_image_done(image, tiny_model):
    get_or_compute_embedding(image, tiny_model)
    image.embedding_status = EmbeddingStatus.QUEUED
    image.save(update_fields=["embedding_status"])

    _, computed = get_or_compute_embedding(image, tiny_model)

    image.refresh_from_db()
    assert computed is False and image.embedding_status == EmbeddingStatus.DONE


def test_a_missing_file_marks_the_embedding_failed_with_the_reason(
    dataset, tiny_model, fresh_embeddings
):
    image = factories.add_image(dataset, seed=42)
    (Path(settings.MEDIA_ROOT) / image.file).unlink()

    with pytest.raises(EmbeddingUnavailable, match="could not be computed"):
        get_or_compute_embedding(image, tiny_model)

    image.refresh_from_db()
    assert image.embedding_status == EmbeddingStatus.FAILED
    assert "cannot read" in image.embedding_error
    assert image.encoder_key == tiny_model.encoder_key


def test_a_changed_file_is_not_embedded_silently(dataset, tiny_model, fresh_embeddings):
    image = factories.add_image(dataset, seed=43)
    (Path(settings.MEDIA_ROOT) / image.file).write_bytes(factories.image_bytes(10, 10))

    with pytest.raises(EmbeddingUnavailable, match="10x10"):
        get_or_compute_embedding(image, tiny_model)


def test_embeddings_of_another_precision_are_kept_apart(
    settings, image, tiny_model, fresh_embeddings
):
    from registry.predictors import model_status

    full, _ = get_or_compute_embedding(image, tiny_model)
    settings.SAM_PRECISION = "bf16"
    embeddings_service._recent.clear()
    low, computed = get_or_compute_embedding(image, tiny_model)

    assert computed is True, "an fp32 embedding is not served to a bf16 platform"
    key = f"{tiny_model.encoder_key}-bf16"
    assert tiny_model.embedding_key == key
    store = embedding_store()
    assert store.contains(image.content_sha256, key)
    assert store.contains(image.content_sha256, tiny_model.encoder_key)
    image.refresh_from_db()
    assert image.encoder_key == key and image.embedding_status == EmbeddingStatus.DONE
    assert not torch.equal(full.features, low.features)
    assert model_status()["precision"] == "bf16"

    settings.SAM_PRECISION = "fp32"
    embeddings_service._recent.clear()
    again, computed = get_or_compute_embedding(image, tiny_model)
    assert computed is False and torch.allclose(
        again.features.float(), full.features.half().float()
    )
