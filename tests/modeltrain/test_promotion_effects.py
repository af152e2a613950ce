"""What follows a promotion: predictions come from the new version at once, and a new encoder
re-embeds the images annotators open next (only then)."""

from __future__ import annotations

import pytest
import torch

from annotation.models import Image
from annotation.services.embeddings import embedding_store
from engine import build_sam, save_checkpoint
from modeltrain.versions import promote_version
from registry.active import register_checkpoint
from tests import factories


@pytest.fixture
def other_encoder(settings, tiny_model):
    """A registered version whose encoder differs from the active one's."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(99)
        model = build_sam("vit_tiny")
    path = save_checkpoint(model, settings.CHECKPOINT_DIR / "other.pt", trained_on="other")
    return register_checkpoint(path, model_type="vit_tiny", trained_on="other", parent=tiny_model)


@pytest.mark.django_db
def test_predictions_follow_the_promoted_version(
    admin_client, annotator_client, image, tiny_model, other_encoder
):
    click = {"points": [[10, 10]], "labels": [1]}
    url = f"/api/images/{image.pk}/predict/"
    assert annotator_client.post(url, click, format="json").json()["model"]["id"] == tiny_model.pk

    admin_client.post(f"/api/model-versions/{other_encoder.pk}/promote/")

    answer = annotator_client.post(url, click, format="json").json()
    assert answer["model"]["id"] == other_encoder.pk
    assert answer["embedding_computed"] is True  # under the new encoder


@pytest.mark.django_db
def test_a_new_encoder_re_embeds_the_pending_images(
    dataset, image, other_encoder, admin_user, django_capture_on_commit_callbacks
):
    from tests import factories

    done = factories.add_image(dataset, seed=5)
    Image.objects.filter(pk=done.pk).update(status="done")

    with django_capture_on_commit_callbacks(execute=True):
        promote_version(other_encoder)

    image.refresh_from_db()
    assert image.embedding_status == "done" and image.encoder_key == other_encoder.encoder_key
    assert embedding_store().contains(image.content_sha256, other_encoder.encoder_key)
    done.refresh_from_db()
    assert done.encoder_key != other_encoder.encoder_key  # annotated already: left alone


@pytest.mark.django_db
def test_the_same_encoder_queues_nothing(
    tiny_model, admin_user, django_capture_on_commit_callbacks
):
    sibling = factories.child_version(tiny_model, "decoder-round")

    with django_capture_on_commit_callbacks(execute=False) as queued:
        promote_version(sibling)

    assert queued == []
