"""The path an annotator's first click depends on, with nothing faked: images uploaded through
the API queue their embeddings on Redis, a real worker computes them into the embedding store,
and a click is then answered from that cache without running the encoder again."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from annotation.models import EmbeddingStatus, Image
from annotation.services.embeddings import embedding_store
from registry.active import get_active_version
from tests.factories import image_bytes

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

IMAGES = 2


def test_uploaded_images_are_embedded_by_the_worker_and_clicks_use_the_cache(
    broker, start_worker, wait_for, django_user_model
):
    redis = broker.redis()
    worker = start_worker()
    django_user_model.objects.create_superuser("boss", "boss@example.com", "pw-boss-1")
    api = APIClient()
    assert api.login(username="boss", password="pw-boss-1")

    created = api.post("/api/datasets/", {"name": "pipeline"}, format="json")
    assert created.status_code == 201, created.content
    uploads = [
        SimpleUploadedFile(f"img-{seed}.png", image_bytes(width=120, height=90, seed=seed))
        for seed in range(IMAGES)
    ]
    uploaded = api.post(
        f"/api/datasets/{created.json()['id']}/images/", {"files": uploads}, format="multipart"
    )
    assert uploaded.status_code == 201, uploaded.content
    ids = [item["id"] for item in uploaded.json()["imported"]]
    assert len(ids) == IMAGES

    def all_embedded() -> bool:
        statuses = [api.get(f"/api/images/{pk}/").json()["embedding_status"] for pk in ids]
        assert EmbeddingStatus.FAILED not in statuses, worker.log_tail()
        return statuses == [EmbeddingStatus.DONE] * IMAGES

    wait_for(all_embedded, 120, "the worker to embed the uploaded images", [worker])

    key = get_active_version().encoder_key
    store = embedding_store()
    for image in Image.objects.filter(pk__in=ids):
        assert store.path(image.content_sha256, key).is_file()
    assert worker.log().count("Task annotation.embed_image[") >= IMAGES
    assert redis.llen("gpu") == 0

    image = Image.objects.get(pk=ids[0])
    cached = store.path(image.content_sha256, key).read_bytes()
    answer = api.post(
        f"/api/images/{image.pk}/predict/",
        {"points": [[60, 45]], "labels": [1]},
        format="json",
    )
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["embedding_computed"] is False, "the click must use the worker's embedding"
    assert len(body["masks"]) == 3
    assert [mask["rle"]["size"] for mask in body["masks"]] == [[90, 120]] * 3
    assert store.path(image.content_sha256, key).read_bytes() == cached
