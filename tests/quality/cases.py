"""A dataset whose audit's figures are known by hand (80x60 images: diagonal 100 px, so the
boundary band is exactly 2 px wide).

Image A (stage 3): automatic masks a1 kept, a2 shifted 2 px (IoU 9/11, boundary IoU 1/3), a3
deleted, a manual mask nobody touches, and one object the reviewer adds.
Image B (stage 3): automatic b1 eroded by 1 px (IoU 0.81, boundary IoU 1/3), b2 kept.
Image C (stage 2, pending): a pre-filled mask eroded by 2 px (IoU 0.64, boundary IoU 0).
"""

from __future__ import annotations

from dataclasses import dataclass

from annotation.models import Image, Mask, Role
from annotation.services import masks as mask_service
from registry.models import ModelVersion
from tests import factories

WIDTH, HEIGHT = 80, 60


@dataclass
class Case:
    dataset: object
    admin: object
    reviewer: object
    annotator: object
    version: ModelVersion
    a: Image
    b: Image
    c: Image
    masks: dict[str, Mask]


def square(image: Image, left: int, top: int, side: int) -> dict:
    return factories.rect_rle(image, left, top, left + side, top + side)


def build_case() -> Case:
    admin, reviewer, annotator = (
        factories.make_user("quinn"),
        factories.make_user("rita"),
        factories.make_user("abe"),
    )
    dataset = factories.make_dataset(
        "audited", [(admin, Role.ADMIN), (reviewer, Role.REVIEWER), (annotator, Role.ANNOTATOR)]
    )
    version = ModelVersion.objects.create(
        name="v1", model_type="vit_tiny", checkpoint="v1.pt", encoder_key="k1", trained_on="x"
    )
    a, b, c = (factories.add_image(dataset, WIDTH, HEIGHT, seed) for seed in (1, 2, 3))
    Image.objects.filter(pk__in=[a.pk, b.pk]).update(stage=3, status="done")
    Image.objects.filter(pk=c.pk).update(stage=2)
    a.refresh_from_db(), b.refresh_from_db(), c.refresh_from_db()

    def auto(image, left, top, side, source="automatic"):
        return factories.add_mask(
            image, source=source, model_version=version, rle=square(image, left, top, side)
        )

    masks = {
        "a1": auto(a, 40, 20, 20),
        "a2": auto(a, 10, 10, 20),
        "a3": auto(a, 60, 40, 15),
        "manual": factories.add_mask(a, rle=square(a, 0, 40, 10)),
        "b1": auto(b, 20, 20, 20),
        "b2": auto(b, 50, 5, 20),
        "c1": auto(c, 30, 20, 20, source="prefilled"),
    }
    return Case(dataset, admin, reviewer, annotator, version, a, b, c, masks)


def review_as_designed(case: Case, user) -> None:
    """The reviewer's corrections, through the mask service (what the API's views call)."""
    m = case.masks
    edits = {
        "a2": square(case.a, 12, 10, 20),
        "b1": square(case.b, 21, 21, 18),
        "c1": square(case.c, 32, 22, 16),
    }
    for name, rle in edits.items():
        mask = Mask.objects.get(pk=m[name].pk)
        mask_service.update_mask(mask, user, expected_version=mask.version, rle=rle)
    mask_service.delete_mask(m["a3"], expected_version=1)
    mask_service.accept_mask(case.a, user, rle=square(case.a, 2, 2, 6), source="manual")
