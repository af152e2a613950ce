"""Dataset statistics against numbers worked out by hand on a small crafted dataset."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from annotation.models import AnnotatorSession, AutomaticPass, AutomaticPassImage, Image, Mask
from annotation.services.stats import dataset_stats
from tests import factories
from tests.exports.conftest import add_mask, blob

pytestmark = pytest.mark.django_db

DAY1 = datetime(2026, 3, 1, 10, tzinfo=UTC)
DAY2 = datetime(2026, 3, 2, 23, 30, tzinfo=UTC)


def stage(image, number, status):
    Image.objects.filter(pk=image.pk).update(stage=number, status=status)


def many(image, n, version):
    """n automatic stage-3 masks in one insert."""
    template = add_mask(image, blob(image, 30, 20, 5), "automatic", stage=3, model_version=version)
    copies = [
        Mask(
            image=image,
            rle=template.rle,
            bbox=template.bbox,
            area=template.area,
            source="automatic",
            stage=3,
            model_version=version,
        )
        for _ in range(n - 1)
    ]
    Mask.objects.bulk_create(copies)


@pytest.fixture
def crafted(dataset, annotator, dataset_admin, tiny_model):
    """A: stage 3 done, 3 manual stage-1 masks (10, 20, 30 s on day 1) + 12 automatic.
    B: stage 1 done, 1 model_assisted (6 s, day 2) + 1 manual without time. C: stage 1
    pending, no masks. D: stage 2 pending, 2 prefilled. E: stage 3 pending, 201 automatic."""
    a, b, c, d, e = (factories.add_image(dataset, seed=s) for s in range(5))
    for image, number, status in [
        (a, 3, "done"),
        (b, 1, "done"),
        (c, 1, "pending"),
        (d, 2, "pending"),
        (e, 3, "pending"),
    ]:
        stage(image, number, status)
    a.refresh_from_db()
    timed = [
        add_mask(a, blob(a, 10 + 5 * i, 10, 3), "manual", stage=1, seconds_spent=s)
        for i, s in enumerate((10, 20, 30))
    ]
    Mask.objects.filter(pk__in=[m.pk for m in timed]).update(created_at=DAY1)
    many(a, 12, tiny_model)
    assisted = add_mask(b, blob(b, 20, 20, 4), "model_assisted", stage=1, seconds_spent=6)
    Mask.objects.filter(pk=assisted.pk).update(created_at=DAY2)
    add_mask(b, blob(b, 40, 20, 4), "manual", stage=1)
    add_mask(d, blob(d, 20, 20, 4), "prefilled", stage=2, model_version=tiny_model)
    add_mask(d, blob(d, 40, 20, 4), "prefilled", stage=2, model_version=tiny_model)
    many(e, 201, tiny_model)
    for user, image, seconds, masks in [
        (annotator, a, 1800, timed),
        (annotator, b, 1800, [assisted]),
        (dataset_admin, c, 0, []),
    ]:
        session = AnnotatorSession.objects.create(
            annotator=user,
            image=image,
            stage=1,
            ended_at=DAY2,
            last_heartbeat_at=DAY2,
            active_seconds=seconds,
            masks_made=len(masks),
        )
        Mask.objects.filter(pk__in=[m.pk for m in masks]).update(session=session)
    tiny_model.metrics = {"miou": 0.5, "held_out_masks": 40}
    tiny_model.save()
    run = AutomaticPass.objects.create(
        dataset=dataset,
        kind="automatic",
        config={},
        model_version=tiny_model,
        status="running",
        total_images=3,
    )
    AutomaticPassImage.objects.create(automatic_pass=run, image=a, status="done", mask_count=12)
    AutomaticPassImage.objects.create(automatic_pass=run, image=e, status="done", mask_count=201)
    AutomaticPassImage.objects.create(automatic_pass=run, image=b, status="failed")
    return dataset


def bins(**counts):
    labels = {"b1": "1-10", "b11": "11-50", "b51": "51-100", "b101": "101-200", "b200": ">200"}
    return {label: counts.get(key, 0) for key, label in labels.items()}


def test_images_per_stage_and_status(crafted):
    assert dataset_stats(crafted)["images"] == {
        "total": 5,
        "by_stage": {
            "1": {"done": 1, "pending": 1},
            "2": {"pending": 1},
            "3": {"done": 1, "pending": 1},
        },
    }


def test_masks_per_image_histogram_per_stage(crafted):
    histogram = dataset_stats(crafted)["masks_per_image"]
    assert histogram["1"] == {"images": 2, "masks": 5, "mean": 2.5, "bins": bins(b1=2)}
    assert histogram["2"] == {"images": 1, "masks": 2, "mean": 2.0, "bins": bins(b1=1)}
    assert histogram["3"] == {"images": 2, "masks": 213, "mean": 106.5, "bins": bins(b11=1, b200=1)}
    assert histogram["all"] == {
        "images": 4,
        "masks": 220,
        "mean": 55.0,
        "bins": bins(b1=2, b11=1, b200=1),
    }


def test_seconds_per_mask_by_stage_and_day(crafted):
    assert dataset_stats(crafted)["seconds_per_mask"] == [
        {"stage": 1, "day": "2026-03-01", "masks": 3, "seconds": 60.0, "seconds_per_mask": 20.0},
        {"stage": 1, "day": "2026-03-02", "masks": 1, "seconds": 6.0, "seconds_per_mask": 6.0},
    ]


def test_masks_per_hour_per_annotator(crafted, annotator, dataset_admin):
    assert dataset_stats(crafted)["annotators"] == [
        {
            "annotator": annotator.pk,
            "username": "annie",
            "sessions": 2,
            "active_seconds": 3600.0,
            "masks_made": 4,
            "masks_per_hour": 4.0,
        },
        {
            "annotator": dataset_admin.pk,
            "username": "dana",
            "sessions": 1,
            "active_seconds": 0.0,
            "masks_made": 0,
            "masks_per_hour": None,
        },
    ]


def test_masks_per_hour_counts_saved_masks_before_done_and_not_deleted_ones(
    crafted, annotator, dataset
):
    image = Image.objects.filter(dataset=dataset, stage=1, status="pending").first()
    session = AnnotatorSession.objects.create(
        annotator=annotator, image=image, stage=1, last_heartbeat_at=DAY2, active_seconds=1800
    )  # open: the annotator has not pressed Done
    from annotation.services.masks import accept_mask, delete_mask
    from engine import rle as rle_codec

    saved = [
        accept_mask(
            image,
            annotator,
            rle=rle_codec.encode(blob(image, 10 + 6 * i, 10, 2)),
            source="manual",
            session=session,
        )[0]
        for i in range(4)
    ]
    delete_mask(saved[0], expected_version=saved[0].version)

    [annie] = [row for row in dataset_stats(crafted)["annotators"] if row["username"] == "annie"]

    assert annie["masks_made"] == 4 + 3 and annie["masks_per_hour"] == pytest.approx(7 / 1.5)


def test_model_versions_and_automatic_passes(crafted, tiny_model):
    stats = dataset_stats(crafted)
    [version] = stats["model_versions"]
    assert version["id"] == tiny_model.pk and version["is_active"]
    assert version["metrics"] == {"miou": 0.5, "held_out_masks": 40}
    assert version["masks_in_dataset"] == 215
    [run] = stats["automatic_passes"]
    assert {k: run[k] for k in ("total_images", "done_images", "failed_images", "masks")} == {
        "total_images": 3,
        "done_images": 2,
        "failed_images": 1,
        "masks": 213,
    }


def test_empty_dataset(dataset):
    stats = dataset_stats(dataset)
    assert stats["images"]["total"] == 0
    assert stats["masks_per_image"]["all"] == {
        "images": 0,
        "masks": 0,
        "mean": None,
        "bins": bins(),
    }
    assert stats["seconds_per_mask"] == [] and stats["annotators"] == []


def test_stats_endpoint_answers_the_service(crafted, annotator_client):
    response = annotator_client.get(f"/api/datasets/{crafted.pk}/stats/")
    assert response.status_code == 200
    assert response.json()["masks_per_image"]["3"]["bins"][">200"] == 1
    assert response.json()["images"] == dataset_stats(crafted)["images"]


def test_heldout_metrics_per_version_or_not_evaluated(crafted, tiny_model):
    from registry.models import ModelVersion

    def version(name, metrics):
        return ModelVersion.objects.create(
            name=name, model_type="vit_tiny", checkpoint=f"{name}.pt", encoder_key=name,
            trained_on="test", metrics=metrics,
        )  # fmt: skip

    scores = {"noc90": 7, "noc85": 5.5, "miou_1click_top": 0.6, "miou_1click_best": 0.7}
    version("evaluated", {"heldout": {**scores, "miou_box": 0.8, "masks": 40}})
    version("partial", {"heldout": {"noc90": 8.0, "miou_box": "n/a"}, "loss": 0.2})
    version("trained-only", {"loss": 0.1})
    heldout = {v["name"]: v["heldout"] for v in dataset_stats(crafted)["model_versions"]}
    assert heldout == {
        tiny_model.name: None,  # metrics without "heldout"
        "evaluated": {
            "noc90": 7.0,
            "noc85": 5.5,
            "miou_1click_top": 0.6,
            "miou_1click_best": 0.7,
            "miou_5clicks": None,
            "miou_10clicks": None,
            "miou_box": 0.8,
        },
        "partial": {
            "noc90": 8.0,
            "noc85": None,
            "miou_1click_top": None,
            "miou_1click_best": None,
            "miou_5clicks": None,
            "miou_10clicks": None,
            "miou_box": None,
        },
        "trained-only": None,
    }
    assert list(heldout) == [tiny_model.name, "evaluated", "partial", "trained-only"]


def test_automatic_passes_carry_their_model_and_times(crafted, tiny_model):
    [run] = dataset_stats(crafted)["automatic_passes"]
    assert run["model_version"] == tiny_model.pk
    assert run["model_version_name"] == tiny_model.name
    assert run["created_at"].startswith(str(AutomaticPass.objects.get().created_at.date()))
    assert run["started_at"] is None and run["finished_at"] is None


def test_datasets_overview_counts_images_per_stage_and_masks(crafted, other_dataset):
    from annotation.services.stats import datasets_overview

    assert datasets_overview() == [
        {
            "id": crafted.pk,
            "name": "cats",
            "image_count": 5,
            "mask_count": 220,
            "stage_1": 2,
            "stage_2": 1,
            "stage_3": 2,
        },
        {
            "id": other_dataset.pk,
            "name": "dogs",
            "image_count": 0,
            "mask_count": 0,
            "stage_1": 0,
            "stage_2": 0,
            "stage_3": 0,
        },
    ]
