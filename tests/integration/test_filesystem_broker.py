"""The default, server-less setup: kombu's filesystem transport in the data directory
(CELERY_BROKER_URL=filesystem://, what settings use when nothing is configured) carries an
embedding task from the importing process to a real worker."""

import pytest

from annotation.models import Dataset, EmbeddingStatus, Image
from annotation.services.embeddings import embedding_store
from annotation.services.imports import Candidate, import_images
from registry.active import get_active_version
from tests.factories import image_bytes

pytestmark = pytest.mark.django_db(transaction=True)


def test_worker_on_the_filesystem_broker_embeds_an_imported_image(broker, start_worker, wait_for):
    queue = broker.filesystem()
    worker = start_worker()
    dataset = Dataset.objects.create(name="filesystem-broker")

    report = import_images(dataset, [Candidate("one.png", read=lambda: image_bytes(seed=7))])

    (imported,) = report.imported
    image = Image.objects.get(pk=imported["id"])
    wait_for(
        lambda: Image.objects.get(pk=image.pk).embedding_status == EmbeddingStatus.DONE,
        90,
        "the embedding through the filesystem broker",
        [worker],
    )
    assert embedding_store().contains(image.content_sha256, get_active_version().encoder_key)
    assert "annotation.embed_image" in worker.log()
    assert list(queue.iterdir()) == [], "the message was consumed, not left in the queue folder"
