"""What the automatic-pass fault tests share: a pass launched over freshly imported images, and
the check that after the fault every image was done exactly once with the masks a direct run
gives."""

from __future__ import annotations

from django.db.models import QuerySet

from annotation.models import AutomaticPass, AutomaticPassImage, Dataset, Mask, MaskSource, Stage
from annotation.services import automatic
from annotation.services.image_holds import change_stage
from annotation.services.imports import Candidate, import_images
from tests.automatic.conftest import RELAXED
from tests.factories import image_bytes, make_user


def launch_pass_on_new_images(
    redis, name: str, count: int
) -> tuple[AutomaticPass, list[int], QuerySet[AutomaticPassImage]]:
    """Import ``count`` small images into a new dataset, move them to stage 3 and launch a
    pass with relaxed filters. Returns the pass, the image ids and the pass's items."""
    dataset = Dataset.objects.create(name=name)
    report = import_images(
        dataset,
        [Candidate(f"{i}.png", read=lambda i=i: image_bytes(40, 32, seed=i)) for i in range(count)],
    )
    ids = [row["id"] for row in report.imported]
    change_stage(dataset, ids, Stage.FULLY_AUTOMATIC)
    redis.delete("gpu")  # the imports' embedding tasks: the pass computes what it needs
    run = automatic.launch_automatic_pass(
        dataset, make_user("boss", staff=True), "automatic", config=RELAXED
    )
    return run, ids, AutomaticPassImage.objects.filter(automatic_pass=run)


def assert_every_image_done_once(
    run: AutomaticPass, items: QuerySet[AutomaticPassImage], ids: list[int], redis
) -> None:
    """The pass finished, each image was written once, its stored masks are those a direct
    run gives, no mask is extra and nothing is left on the queue."""
    run.refresh_from_db()
    assert run.status == "done" and run.error == ""
    assert sorted(items.values_list("image_id", flat=True)) == sorted(ids)
    assert set(items.values_list("runs", flat=True)) == {1}, "each image written exactly once"
    for item in items.select_related("image"):
        stored = Mask.objects.filter(
            image=item.image, source=MaskSource.AUTOMATIC, model_version=run.model_version
        )
        direct = automatic.generate_masks(item.image, run)
        assert stored.count() == item.mask_count == len(direct) > 0
        # Random weights leave logits near 0, where a few pixels flip between two processes'
        # float rounding: the masks match by prompt and area, not bit for bit.
        assert sorted(m.point_coords for m in stored) == sorted(m.point_coords for m in direct)
        stored_area, direct_area = sum(m.area for m in stored), sum(m.area for m in direct)
        assert abs(stored_area - direct_area) <= 0.01 * direct_area
    assert Mask.objects.count() == sum(items.values_list("mask_count", flat=True))
    assert redis.llen("gpu") == 0
