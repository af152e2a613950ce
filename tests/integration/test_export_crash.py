"""An export survives a worker killed in the middle (SIGKILL: no warm shutdown, no ack): until
it is done nothing is visible under the export's name (the shards written so far sit in a hidden
staging folder) and the download answers 409; the unacknowledged message goes to the next
worker, which removes the partial files and writes the export whole, once."""

import json
import re
import tarfile
import time

import pytest
from rest_framework.test import APIClient

from annotation.models import Dataset, Export
from annotation.services import exports
from annotation.services.atomic_files import PARTIAL_SUFFIX
from annotation.services.imports import Candidate, import_images
from annotation.services.masks import accept_mask
from tests.factories import image_bytes, make_user, rect_rle

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

VISIBILITY_TIMEOUT = 3
IMAGES = 240
SHARD_SIZE = 20
SUCCEEDED = re.compile(r"Task annotation\.run_export\[([0-9a-f-]+)\] succeeded")


def test_a_killed_export_shows_no_half_written_file_and_the_next_worker_redoes_it(
    broker, start_worker, wait_for
):
    redis = broker.redis(visibility_timeout=VISIBILITY_TIMEOUT)
    dataset = Dataset.objects.create(name="export-crash")
    admin = make_user("boss", staff=True)
    report = import_images(
        dataset,
        [
            Candidate(f"{i}.png", read=lambda i=i: image_bytes(480, 360, seed=i))
            for i in range(IMAGES)
        ],
    )
    assert len(report.imported) == IMAGES
    redis.delete("gpu")  # the imports' embeddings: not needed for an export
    for row in report.imported:
        image = dataset.images.get(pk=row["id"])
        accept_mask(image, admin, rle=rect_rle(image, 10, 10, 200, 150), source="manual")

    export = exports.queue_export(dataset, admin, format="sa1b", shard_size=SHARD_SIZE)
    assert redis.llen("cpu") == 1, "the export is queued on the cpu queue"
    root = exports.export_root()
    final = root / str(export.pk)

    def staged_shards() -> list:
        return list(root.glob(f".{export.pk}.*{PARTIAL_SUFFIX}/sa_*.tar"))

    first = start_worker(queues="cpu")
    wait_for(lambda: len(staged_shards()) >= 2, 120, "the export to write shards", [first])
    first.kill()
    killed_at = time.monotonic()

    export.refresh_from_db()
    assert export.status == Export.Status.RUNNING
    assert 0 < len(staged_shards()) < IMAGES // SHARD_SIZE, "killed in the middle"
    assert not final.exists(), "nothing under the export's own name until it is complete"
    client = APIClient()
    client.force_authenticate(admin)
    download = client.get(f"/api/exports/{export.pk}/download/")
    assert download.status_code == 409 and "running" in download.json()["detail"]
    assert redis.hlen("unacked") == 1, "the export's message is unacknowledged"

    time.sleep(max(0.0, VISIBILITY_TIMEOUT + 0.5 - (time.monotonic() - killed_at)))
    second = start_worker(queues="cpu")
    wait_for(
        lambda: Export.objects.get(pk=export.pk).status == Export.Status.DONE,
        180,
        "the export to be done after the restart",
        [second],
    )
    wait_for(lambda: redis.hlen("unacked") == 0, 30, "the last ack", [second])

    assert len(SUCCEEDED.findall(second.log())) == 1
    assert not list(root.glob(f"*{PARTIAL_SUFFIX}")), "the killed run's staging folder is gone"
    manifest = json.loads((final / "meta" / "manifest.json").read_text())
    assert manifest["images"] == IMAGES and manifest["masks"] == IMAGES
    assert len(manifest["shards"]) == IMAGES // SHARD_SIZE
    members = []
    for shard in manifest["shards"]:
        with tarfile.open(final / shard["file"]) as tar:
            names = tar.getnames()
        assert len(names) == 2 * shard["images"] == 2 * SHARD_SIZE
        members += names
    assert len(set(members)) == 2 * IMAGES, "every image once, none twice"
    assert len((final / "meta" / "sa_images_ids.txt").read_text().splitlines()) == IMAGES
    assert client.get(f"/api/exports/{export.pk}/download/?shard=0").status_code == 200
