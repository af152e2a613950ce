"""The mask tallies the statistics read (annotation.services.tallies) stay equal to a full count
of the mask rows through a random sequence of everything that writes masks, and the statistics
computed from them neither read the mask table nor take more queries as masks are added."""

from __future__ import annotations

import random

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotation.models import HumanMaskDay, Image, Mask, MaskTally
from annotation.services import masks as mask_service
from annotation.services.automatic import launch_automatic_pass, store_pass_masks
from annotation.services.stats import MASK_BINS, dataset_stats, datasets_overview
from annotation.services.storage import delete_images
from annotation.services.tallies import counted_tallies, recount_tallies
from engine.automatic import AutomaticMask
from registry.active import get_active_version
from tests import factories

pytestmark = pytest.mark.django_db


def stored_tallies():
    tallies = sorted(
        (t.image_id, t.stage, t.model_version_key, t.masks) for t in MaskTally.objects.all()
    )
    days = sorted(
        (d.dataset_id, d.stage, d.day, d.masks, round(d.seconds, 6))
        for d in HumanMaskDay.objects.all()
    )
    return tallies, days


def fresh_tallies():
    tallies, days = counted_tallies()
    return (
        sorted((t.image_id, t.stage, t.model_version_key, t.masks) for t in tallies),
        sorted((d.dataset_id, d.stage, d.day, d.masks, round(d.seconds, 6)) for d in days),
    )


def histogram_from_rows(dataset, stage):
    """The masks-per-image histogram the way the statistics used to count it: every mask row."""
    counts: dict[int, int] = {}
    rows = Mask.objects.filter(image__dataset=dataset)
    if stage is not None:
        rows = rows.filter(stage=stage)
    for image_id in rows.values_list("image_id", flat=True):
        counts[image_id] = counts.get(image_id, 0) + 1
    bins = {
        label: sum(1 for n in counts.values() if n >= low and (high is None or n <= high))
        for label, low, high in MASK_BINS
    }
    return {"images": len(counts), "masks": sum(counts.values()), "bins": bins}


def automatic_masks(image, rng, n):
    out = []
    for _ in range(n):
        x, y = rng.randrange(image.width - 8), rng.randrange(image.height - 8)
        rle = factories.rect_rle(image, x, y, x + 8, y + 8)
        out.append(
            AutomaticMask(
                segmentation=rle,
                bbox=[x, y, 8, 8],
                area=64,
                predicted_iou=0.9,
                stability_score=0.96,
                point_coords=[[x + 4.0, y + 4.0]],
                crop_box=[0, 0, image.width, image.height],
            )
        )
    return out


def test_tallies_equal_a_full_recount_after_random_writes(
    dataset, other_dataset, annotator, dataset_admin, tiny_model
):
    rng = random.Random(20)
    version = get_active_version()
    images = [factories.add_image(dataset, 48, 40, seed=s) for s in range(6)]
    images.append(factories.add_image(other_dataset, 48, 40, seed=99))
    for image, stage in zip(images, (1, 1, 2, 2, 3, 3, 1), strict=True):
        Image.objects.filter(pk=image.pk).update(stage=stage)
        image.refresh_from_db()
    for step in range(160):
        live = list(Image.objects.filter(pk__in=[i.pk for i in images]))
        image = rng.choice(live)
        action = rng.choice(["save", "save", "save", "edit", "delete", "move", "pass"])
        existing = list(Mask.objects.filter(image__in=live))
        if action == "save" or not existing:
            x, y = rng.randrange(30), rng.randrange(30)
            mask_service.accept_mask(
                image,
                annotator,
                rle=factories.rect_rle(image, x, y, x + 6, y + 5),
                source=rng.choice(["manual", "model_assisted"]),
                seconds_spent=rng.choice([0.0, 3.5, 12.25]),
            )
        elif action == "edit":
            mask = rng.choice(existing)
            mask_service.update_mask(
                mask,
                dataset_admin,
                expected_version=mask.version,
                seconds_spent=rng.choice([0.0, 1.5, 40.0]),
                rle=factories.rect_rle(mask.image, 1, 1, 9, 7),
            )
        elif action == "delete":
            mask = rng.choice(existing)
            mask_service.delete_mask(mask, expected_version=mask.version)
        elif action == "move":
            # Paths that write rows directly: a queryset update of stage, source and version.
            mask = rng.choice(existing)
            Mask.objects.filter(pk=mask.pk).update(
                stage=rng.choice([1, 2, 3]),
                source=rng.choice(["manual", "model_assisted", "prefilled", "automatic"]),
                model_version=rng.choice([None, version]),
            )
        elif action == "pass" and image.dataset_id == dataset.pk:
            run = launch_automatic_pass(dataset, dataset_admin, "automatic", image_ids=[image.pk])
            item = run.items.select_related("automatic_pass__model_version").get()
            store_pass_masks(item, automatic_masks(image, rng, rng.randrange(1, 15)))
        if step == 120:
            delete_images([live[0]])  # cascades to its masks
        if step % 20 == 0:
            assert stored_tallies() == fresh_tallies(), f"step {step}"
    assert stored_tallies() == fresh_tallies()
    assert HumanMaskDay.objects.exists() and MaskTally.objects.filter(model_version_key=0)

    stats = dataset_stats(dataset)
    for stage in (1, 2, 3, None):
        key = str(stage) if stage else "all"
        got = stats["masks_per_image"][key]
        assert {k: got[k] for k in ("images", "masks", "bins")} == histogram_from_rows(
            dataset, stage
        )
    versions = {row["id"]: row["masks_in_dataset"] for row in stats["model_versions"]}
    assert (
        versions[version.pk]
        == Mask.objects.filter(image__dataset=dataset, model_version=version).count()
    )
    overview = {row["id"]: row["mask_count"] for row in datasets_overview()}
    assert overview[dataset.pk] == Mask.objects.filter(image__dataset=dataset).count()

    # Tallies emptied by hand (a bulk load with the triggers off) come back from a recount.
    MaskTally.objects.all().delete()
    HumanMaskDay.objects.all().delete()
    recount_tallies()
    assert stored_tallies() == fresh_tallies()

    # A dataset deleted with everything in it leaves no tally behind.
    dataset.delete()
    assert stored_tallies() == fresh_tallies()


def stats_queries(dataset):
    with CaptureQueriesContext(connection) as captured:
        dataset_stats(dataset)
        datasets_overview()
    return [query["sql"] for query in captured.captured_queries]


def test_statistics_read_no_mask_row_and_take_the_same_queries_at_any_size(
    dataset, annotator, tiny_model
):
    image = factories.add_image(dataset, 48, 40)
    factories.add_mask(image, seconds_spent=2.0)
    few = stats_queries(dataset)
    for seed in range(1, 4):
        other = factories.add_image(dataset, 48, 40, seed=seed)
        for i in range(30):
            factories.add_mask(other, rle=factories.rect_rle(other, i, 0, i + 2, 2))
    many = stats_queries(dataset)
    assert len(many) == len(few)
    mask_table = [sql for sql in many if '"annotation_mask"' in sql or "annotation_mask " in sql]
    # The one exception: masks per label, which reads labelled masks only, through the partial
    # index mask_label_idx (tests/exports/test_label_stats.py checks the plan).
    assert [sql for sql in mask_table if 'FROM "annotation_label"' not in sql] == []
    assert len(mask_table) == 1
