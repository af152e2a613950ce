"""Scale-out: PostgreSQL, Redis and several Celery workers on different queues (two gpu, one
cpu) process an import, its embeddings and an automatic pass together, and the result equals
what one worker serving both queues makes of the same images: the same masks, every image
embedded once and segmented once, each task on the queue of its resource."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.db import connection

from annotation.models import (
    AutomaticPass,
    AutomaticPassImage,
    Dataset,
    EmbeddingStatus,
    ImportJob,
    Mask,
    Stage,
)
from annotation.services import automatic
from annotation.services.image_holds import change_stage
from annotation.services.imports import queue_import_job
from tests.automatic.conftest import RELAXED
from tests.factories import image_bytes, make_user

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

IMAGES = 8
TASK = re.compile(r"Task (annotation\.\w+)\[[0-9a-f-]+\] succeeded")


def succeeded(worker) -> list[str]:
    return TASK.findall(worker.log())


def run_pipeline(name: str, folder: Path, admin, workers, wait_for) -> dict[str, list]:
    """Import ``folder`` through a cpu task, wait for the embeddings, run an automatic pass;
    returns each image's masks by file name."""
    dataset = Dataset.objects.create(name=name)
    job = queue_import_job(dataset, str(folder), short_side=None, user=admin)
    wait_for(
        lambda: ImportJob.objects.get(pk=job.pk).status == ImportJob.Status.DONE,
        120,
        f"the import of {name}",
        workers,
    )
    images = dataset.images.all()
    assert images.count() == IMAGES
    ids = list(images.values_list("pk", flat=True))
    change_stage(dataset, ids, Stage.FULLY_AUTOMATIC)
    # Launched while the gpu workers are still embedding: both kinds of work share them.
    run = automatic.launch_automatic_pass(dataset, admin, "automatic", config=RELAXED)
    wait_for(
        lambda: AutomaticPass.objects.get(pk=run.pk).status == AutomaticPass.Status.DONE,
        300,
        f"the automatic pass of {name}",
        workers,
    )
    wait_for(
        lambda: images.filter(embedding_status=EmbeddingStatus.DONE).count() == IMAGES,
        120,
        f"the embeddings of {name}",
        workers,
    )
    items = AutomaticPassImage.objects.filter(automatic_pass=run)
    assert set(items.values_list("status", "runs")) == {("done", 1)}, "each image once"
    masks: dict[str, list] = {}
    for mask in Mask.objects.filter(image__dataset=dataset).select_related("image"):
        masks.setdefault(mask.image.original_name, []).append(
            (mask.rle["counts"], mask.bbox, mask.area, mask.point_coords)
        )
    return {image: sorted(found) for image, found in masks.items()}


def test_workers_on_separate_queues_give_the_single_worker_result(start_worker, wait_for, tmp_path):
    assert connection.vendor == "postgresql", "the scale-out test runs on PostgreSQL"
    folder = tmp_path / "incoming"
    folder.mkdir()
    for i in range(IMAGES):
        (folder / f"{i}.png").write_bytes(image_bytes(48, 40, seed=100 + i))
    admin = make_user("boss", staff=True)

    single = start_worker(queues="gpu,cpu", SADE_EMBEDDING_DIR=str(tmp_path / "emb-single"))
    alone = run_pipeline("single", folder, admin, [single], wait_for)
    single.stop()

    # A fresh embedding folder, so the gpu workers compute every embedding again.
    embeddings = tmp_path / "emb-scaled"
    gpu = [start_worker(queues="gpu", SADE_EMBEDDING_DIR=str(embeddings)) for _ in range(2)]
    cpu = start_worker(queues="cpu", SADE_EMBEDDING_DIR=str(embeddings))
    scaled = run_pipeline("scaled", folder, admin, [*gpu, cpu], wait_for)

    assert set(alone) == set(scaled) == {f"{i}.png" for i in range(IMAGES)}
    for name, masks in alone.items():
        # Random weights leave logits near 0, where a few pixels flip between two processes'
        # float rounding: the same masks by count, prompt and area, not bit for bit.
        assert len(scaled[name]) == len(masks) > 0, name
        assert sorted(m[3] for m in scaled[name]) == sorted(m[3] for m in masks), name
        area, scaled_area = sum(m[2] for m in masks), sum(m[2] for m in scaled[name])
        assert abs(scaled_area - area) <= 0.01 * area, name
    assert set(succeeded(cpu)) == {"annotation.import_path"}
    for worker in gpu:
        assert "annotation.import_path" not in succeeded(worker)
        assert "annotation.automatic_pass_image" in succeeded(worker), "both gpu workers worked"
    gpu_tasks = [task for worker in gpu for task in succeeded(worker)]
    assert gpu_tasks.count("annotation.automatic_pass_image") == IMAGES
    assert gpu_tasks.count("annotation.embed_image") == IMAGES
    assert len([p for p in embeddings.rglob("*") if p.is_file()]) == IMAGES, "embedded once"
