"""The automatic pass service: masks with SA-1B's fields, idempotent re-runs that leave people's
masks and other model versions' masks alone, progress, failures, cancel and resume."""

from __future__ import annotations

import pytest

from annotation.models import AutomaticPass, Image, Mask, MaskSource, Stage
from annotation.services import automatic
from annotation.services.automatic_config import resolve_config
from annotation.services.masks import accept_mask
from annotation.services.storage import image_path
from engine import rle as rle_codec
from registry.models import ModelVersion
from tests import factories
from tests.automatic.conftest import RELAXED

pytestmark = pytest.mark.django_db


def progress(run: AutomaticPass) -> AutomaticPass:
    return automatic.with_progress(AutomaticPass.objects.filter(pk=run.pk)).get()


def machine_masks(image: Image, version: ModelVersion, source=MaskSource.AUTOMATIC):
    return Mask.objects.filter(image=image, source=source, model_version=version)


def test_a_pass_writes_masks_with_the_sa1b_fields(dataset, dataset_admin, stage3_images):
    run = automatic.launch_automatic_pass(dataset, dataset_admin, "automatic", config=RELAXED)
    assert automatic.run_automatic_pass(run.pk) == 2

    run = progress(run)
    assert (run.status, run.done_images, run.total_images, run.failed_images) == ("done", 2, 2, 0)
    assert run.finished_at is not None and run.error == ""
    assert run.config["points_per_side"] == 2 and run.config["crop_n_layers"] == 0
    for image in stage3_images:
        item = run.items.get(image=image)
        masks = list(machine_masks(image, run.model_version))
        assert item.status == "done" and item.mask_count == len(masks) == 12
        for mask in masks:
            assert (mask.stage, mask.author, mask.session) == (Stage.FULLY_AUTOMATIC, None, None)
            assert rle_codec.area(mask.rle) == mask.area > 0
            assert mask.rle["size"] == [image.height, image.width]
            # The RLE's tight box (pycocotools' toBbox), what every reader checks a row against;
            # not the generator's, whose width and height are one pixel short.
            assert mask.bbox == rle_codec.bbox_xywh(mask.rle)
            assert 0 <= mask.bbox[0] < mask.bbox[0] + mask.bbox[2] <= image.width
            assert 0 <= mask.bbox[1] < mask.bbox[1] + mask.bbox[3] <= image.height
            assert isinstance(mask.predicted_iou, float)
            assert 0 <= mask.stability_score <= 1
            ((x, y),) = mask.point_coords
            assert 0 <= x < image.width and 0 <= y < image.height
            assert mask.crop_box == [0, 0, image.width, image.height]
        direct = automatic.generate_masks(image, run)
        assert sorted((m.rle["counts"], m.area) for m in masks) == sorted(
            (m.segmentation["counts"], m.area) for m in direct
        ), "the stored masks are the generator's, one row each"
    assert run.mask_count == 24


def test_running_again_replaces_only_this_versions_masks_of_its_source(
    dataset, dataset_admin, annotator, stage3_images
):
    image = stage3_images[0]
    manual, _ = accept_mask(
        image, annotator, rle=factories.rect_rle(image, 0, 0, 8, 8), source="manual"
    )
    imported, _ = accept_mask(
        image, dataset_admin, rle=factories.rect_rle(image, 4, 4, 20, 20), source="imported"
    )
    older = ModelVersion.objects.create(
        name="older", model_type="vit_tiny", checkpoint="older.pt", encoder_key="k", trained_on="-"
    )
    old_automatic = Mask.objects.create(
        image=image, rle=factories.rect_rle(image, 1, 1, 5, 5), bbox=[1, 1, 4, 4], area=16,
        source=MaskSource.AUTOMATIC, stage=3, model_version=older,
    )  # fmt: skip
    run = automatic.launch_automatic_pass(
        dataset, dataset_admin, "automatic", image_ids=[image.pk], config=RELAXED
    )
    prefilled = Mask.objects.create(
        image=image, rle=factories.rect_rle(image, 2, 2, 6, 6), bbox=[2, 2, 4, 4], area=16,
        source=MaskSource.PREFILLED, stage=2, model_version=run.model_version,
    )  # fmt: skip
    keep = {manual.pk, imported.pk, old_automatic.pk, prefilled.pk}

    automatic.run_automatic_pass(run.pk)
    first = set(machine_masks(image, run.model_version).values_list("pk", flat=True))
    assert len(first) == 12
    # A redelivered task finds the image done and writes nothing.
    assert automatic.run_pass_image(run.pk, image.pk) == "skipped"
    # Forced, the same image's masks are replaced, not added to.
    assert automatic.run_pass_image(run.pk, image.pk, force=True) == "done"
    second = set(machine_masks(image, run.model_version).values_list("pk", flat=True))
    assert len(second) == 12 and not first & second
    assert run.items.get().runs == 2
    # A new pass of the same version over the same image replaces them again.
    again = automatic.launch_automatic_pass(
        dataset, dataset_admin, "automatic", image_ids=[image.pk], config=RELAXED
    )
    automatic.run_automatic_pass(again.pk)
    third = set(machine_masks(image, run.model_version).values_list("pk", flat=True))
    assert len(third) == 12 and not third & (first | second)

    assert keep <= set(Mask.objects.filter(image=image).values_list("pk", flat=True))
    assert Mask.objects.filter(image=image).count() == 12 + len(keep)
    assert machine_masks(stage3_images[1], run.model_version).count() == 0, "not selected"


def test_progress_counts_done_images_and_masks_so_far(dataset, dataset_admin, stage3_images):
    run = automatic.launch_automatic_pass(dataset, dataset_admin, "automatic", config=RELAXED)
    run = progress(run)
    assert (run.status, run.done_images, run.total_images, run.mask_count) == ("queued", 0, 2, 0)

    assert automatic.run_pass_image(run.pk, stage3_images[0].pk) == "done"
    run = progress(run)
    assert (run.status, run.done_images, run.mask_count) == ("queued", 1, 12)
    assert run.finished_at is None

    assert automatic.run_pass_image(run.pk, stage3_images[1].pk) == "done"
    run = progress(run)
    assert (run.status, run.done_images, run.mask_count) == ("done", 2, 24)
    assert run.finished_at is not None


def test_prefill_selects_stage_2_and_writes_prefilled_masks(
    dataset, dataset_admin, annotator_client, tiny_model
):
    in_stage_2 = factories.add_image(dataset, 40, 32, seed=1)
    in_stage_1 = factories.add_image(dataset, 40, 32, seed=2)
    Image.objects.filter(pk=in_stage_2.pk).update(stage=Stage.SEMI_AUTOMATIC)

    run = automatic.launch_automatic_pass(
        dataset, dataset_admin, "prefill", config={**RELAXED, "stability_score_thresh": 0.0}
    )
    assert (run.stage, run.total_images) == (Stage.SEMI_AUTOMATIC, 1)
    assert list(run.items.values_list("image_id", flat=True)) == [in_stage_2.pk]
    # The pre-fill preset underneath the overrides: no crops, clean-up of small regions kept.
    assert run.config["crop_n_layers"] == 0 and run.config["max_mask_region_area_ratio"] is None
    assert run.config["crop_nms_thresh"] == 0.7
    automatic.run_automatic_pass(run.pk)

    prefilled = machine_masks(in_stage_2, run.model_version, MaskSource.PREFILLED)
    assert prefilled.count() == 12 and set(prefilled.values_list("stage", flat=True)) == {2}
    assert not Mask.objects.filter(image=in_stage_1).exists()
    # What the stage 2 tool shows: the image's masks of source prefilled.
    answer = annotator_client.get(f"/api/masks/?image={in_stage_2.pk}&source=prefilled")
    assert answer.status_code == 200
    assert {m["id"] for m in answer.json()["results"]} == set(
        prefilled.values_list("pk", flat=True)
    )


def test_a_pass_can_take_every_image_of_either_stage(dataset, dataset_admin, tiny_model):
    images = [factories.add_image(dataset, 40, 32, seed=seed) for seed in (1, 2, 3)]
    Image.objects.filter(pk=images[0].pk).update(stage=Stage.SEMI_AUTOMATIC)
    Image.objects.filter(pk__in=[images[1].pk, images[2].pk]).update(stage=3)

    automatic_on_2 = automatic.launch_automatic_pass(dataset, dataset_admin, "automatic", stage=2)
    prefill_on_3 = automatic.launch_automatic_pass(dataset, dataset_admin, "prefill", stage=3)
    default = automatic.launch_automatic_pass(dataset, dataset_admin, "automatic")

    assert set(automatic_on_2.items.values_list("image_id", flat=True)) == {images[0].pk}
    assert set(prefill_on_3.items.values_list("image_id", flat=True)) == {
        images[1].pk,
        images[2].pk,
    }
    assert default.stage == 3 and default.total_images == 2
    assert default.config == resolve_config("automatic")


def test_an_unreadable_image_fails_alone_and_resume_retries_it(
    dataset, dataset_admin, stage3_images
):
    broken, fine = stage3_images
    run = automatic.launch_automatic_pass(dataset, dataset_admin, "automatic", config=RELAXED)
    saved = image_path(broken).read_bytes()
    image_path(broken).write_bytes(b"not an image")
    Image.objects.filter(pk=broken.pk).update(content_sha256="0" * 64)  # no cached embedding

    automatic.run_automatic_pass(run.pk)
    run = progress(run)
    assert (run.status, run.done_images, run.failed_images) == ("done", 1, 1)
    assert f"1 of 2 images failed; image {broken.pk}" in run.error
    assert run.items.get(image=broken).error
    assert machine_masks(fine, run.model_version).count() == 12

    image_path(broken).write_bytes(saved)
    automatic.resume_automatic_pass(run)  # queued on commit: run it here
    automatic.run_automatic_pass(run.pk)
    run = progress(run)
    assert (run.status, run.done_images, run.failed_images, run.error) == ("done", 2, 0, "")


def test_a_cancelled_pass_writes_nothing_more(dataset, dataset_admin, stage3_images):
    run = automatic.launch_automatic_pass(dataset, dataset_admin, "automatic", config=RELAXED)
    automatic.cancel_automatic_pass(run)
    assert automatic.run_automatic_pass(run.pk) == 0
    assert automatic.run_pass_image(run.pk, stage3_images[0].pk) == "skipped"
    assert progress(run).status == "cancelled"
    assert not Mask.objects.exists()


def test_only_dataset_admins_launch(dataset, annotator, stage3_images, client_for):
    answer = client_for(annotator).post(
        f"/api/datasets/{dataset.pk}/automatic-passes/", {"kind": "automatic"}, format="json"
    )
    assert answer.status_code == 403 and "only admins" in answer.json()["detail"]
    assert not AutomaticPass.objects.exists()
