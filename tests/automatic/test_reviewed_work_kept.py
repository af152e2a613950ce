"""A pre-fill or automatic pass run again never overwrites what people reviewed: masks kept or
fixed through the API stay as they are, an image marked done gets no new mask and keeps its
status, and the launch answer counts what was left alone."""

from __future__ import annotations

import pytest

from annotation.models import Image, ImageStatus, Mask, MaskSource, PrefillReview, Stage
from annotation.services import automatic
from engine import rle as rle_codec
from tests import factories
from tests.automatic.conftest import RELAXED

pytestmark = pytest.mark.django_db

# The relaxed thresholds with an NMS at 0.9: a new mask over 0.9 IoU with a reviewed one counts
# as that mask proposed again (RELAXED has the NMS off, so nothing would be).
CONFIG = {**RELAXED, "box_nms_thresh": 0.9}


def launch(client, dataset, capture, config):
    with capture(execute=True):  # the broker's delivery, eager in tests
        answer = client.post(
            f"/api/datasets/{dataset.pk}/automatic-passes/",
            {"kind": "prefill", "config": config},
            format="json",
        )
    assert answer.status_code == 202, answer.content
    return answer.json()


def prefilled(client, image) -> list[dict]:
    answer = client.get(f"/api/masks/?image={image.pk}&source=prefilled&page_size=100")
    assert answer.status_code == 200
    return answer.json()["results"]


@pytest.fixture
def stage2_images(dataset, tiny_model):
    """Two small images in stage 2: the first is handed out first."""
    images = [factories.add_image(dataset, 40, 32, seed=seed) for seed in (1, 2)]
    Image.objects.filter(pk__in=[image.pk for image in images]).update(stage=Stage.SEMI_AUTOMATIC)
    return images


def test_a_rerun_keeps_kept_fixed_and_drawn_masks_and_done_images(
    client_for,
    dataset,
    dataset_admin,
    annotator,
    stage2_images,
    django_capture_on_commit_callbacks,
):
    done_image, reviewed_image = stage2_images
    admin, person = client_for(dataset_admin), client_for(annotator)
    first = launch(admin, dataset, django_capture_on_commit_callbacks, RELAXED)
    assert first["left_alone"] == {"done_images": 0, "reviewed_masks": 0, "people_masks": 0}
    on_done = {m["id"] for m in prefilled(person, done_image)}
    proposals = prefilled(person, reviewed_image)
    assert on_done and len(proposals) >= 3

    # The annotator finishes the first image handed out, then reviews the second one's masks.
    claimed = person.post(f"/api/datasets/{dataset.pk}/next-image/", {"stage": 2}, format="json")
    assert claimed.json()["id"] == done_image.pk
    assert person.post(f"/api/images/{done_image.pk}/complete/").status_code == 200
    kept, fixed = proposals[0], proposals[1]
    answer = person.post(f"/api/masks/{kept['id']}/keep/", {"version": 1}, format="json")
    assert answer.status_code == 200, answer.content
    fixed_rle = factories.rect_rle(reviewed_image, 3, 3, 17, 13)
    answer = person.patch(
        f"/api/masks/{fixed['id']}/", {"rle": fixed_rle, "version": 1}, format="json"
    )
    assert answer.status_code == 200, answer.content
    drawn = person.post(
        "/api/masks/",
        {"image": reviewed_image.pk, "rle": factories.rect_rle(reviewed_image, 20, 2, 38, 30)},
        format="json",
    )
    assert drawn.status_code == 201
    reviewed = {kept["id"], fixed["id"], drawn.json()["id"]}
    before = {pk: Mask.objects.get(pk=pk) for pk in reviewed}
    unreviewed = {m["id"] for m in proposals} - reviewed

    again = launch(admin, dataset, django_capture_on_commit_callbacks, CONFIG)

    assert again["left_alone"] == {"done_images": 1, "reviewed_masks": 2, "people_masks": 1}
    assert again["total_images"] == 1
    assert admin.get(f"/api/automatic-passes/{again['id']}/").json()["status"] == "done"
    for pk, mask in before.items():
        after = Mask.objects.get(pk=pk)
        assert (after.rle, after.version, after.review, after.source) == (
            mask.rle,
            mask.version,
            mask.review,
            mask.source,
        )
    assert Mask.objects.get(pk=kept["id"]).review == PrefillReview.KEPT
    assert Mask.objects.get(pk=fixed["id"]).review == PrefillReview.EDITED
    # The done image: its status and its masks as the annotator left them, nothing to review.
    done_image.refresh_from_db()
    assert done_image.status == ImageStatus.DONE
    assert {m["id"] for m in prefilled(person, done_image)} == on_done
    # The reviewed image: the earlier run's unreviewed masks replaced, none re-proposing a
    # reviewed one.
    now = Mask.objects.filter(image=reviewed_image, source=MaskSource.PREFILLED)
    new = now.exclude(pk__in=reviewed)
    assert new.exists() and not set(new.values_list("pk", flat=True)) & unreviewed
    kept_rles = [before[pk].rle for pk in reviewed]
    overlap = rle_codec.iou_matrix(list(new.values_list("rle", flat=True)), kept_rles)
    assert overlap.max() <= CONFIG["box_nms_thresh"]


def test_the_kept_mask_would_be_proposed_again_without_the_duplicate_check(
    dataset, dataset_admin, annotator, stage2_images
):
    """The duplicate check is what keeps the re-run from proposing the kept mask again: the
    tiny model is deterministic, so the second run finds the same mask."""
    image = stage2_images[1]
    run = automatic.launch_automatic_pass(
        dataset, dataset_admin, "prefill", image_ids=[image.pk], config=CONFIG
    )
    automatic.run_automatic_pass(run.pk)
    mask = Mask.objects.filter(image=image).first()
    Mask.objects.filter(pk=mask.pk).update(review=PrefillReview.KEPT, reviewed_by=annotator)
    generated = automatic.generate_masks(image, run)
    assert any(rle_codec.iou(m.segmentation, mask.rle) > 0.9 for m in generated)

    assert automatic.run_pass_image(run.pk, image.pk, force=True) == "done"
    others = Mask.objects.filter(image=image).exclude(pk=mask.pk)
    assert others.count() == len(generated) - 1
    assert all(rle_codec.iou(rle, mask.rle) <= 0.9 for rle in others.values_list("rle", flat=True))


def test_an_image_marked_done_after_the_launch_gets_no_mask(dataset, dataset_admin, stage2_images):
    run = automatic.launch_automatic_pass(dataset, dataset_admin, "prefill", config=CONFIG)
    Image.objects.filter(pk=stage2_images[0].pk).update(status=ImageStatus.DONE)
    automatic.run_automatic_pass(run.pk)
    assert not Mask.objects.filter(image=stage2_images[0]).exists()
    assert Mask.objects.filter(image=stage2_images[1]).exists()
    assert run.items.get(image=stage2_images[0]).status == "done"
    assert Image.objects.get(pk=stage2_images[0].pk).status == ImageStatus.DONE


def test_a_selection_of_done_images_only_is_refused(
    client_for, dataset, dataset_admin, stage2_images
):
    Image.objects.filter(dataset=dataset).update(status=ImageStatus.DONE)
    answer = client_for(dataset_admin).post(
        f"/api/datasets/{dataset.pk}/automatic-passes/", {"kind": "prefill"}, format="json"
    )
    assert answer.status_code == 400
    assert "all 2 selected images were marked done by people" in answer.json()["detail"]
    assert answer.json()["done_images"] == 2
