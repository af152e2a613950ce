"""Smoke run of the scale benchmark's data (benchmarks/scale_fill.py) at a tiny size: the COPY
load writes rows the platform reads as its own (every RLE passes the export's checks, the
tallies recounted after the load agree with the statistics computed from the rows)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import connection

from annotation.models import Image, Mask
from annotation.services.export_format import ExportFilters, sa1b_annotations
from annotation.services.stats import dataset_stats
from annotation.services.tallies import recount_tallies
from benchmarks.scale_fill import FillContext, fill, mask_pool, placeholder_jpeg

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_copy_fill_writes_masks_the_platform_accepts(
    settings, dataset, annotator, dataset_admin, tiny_model
):
    context = FillContext(
        dataset_id=dataset.pk,
        media_root=Path(settings.MEDIA_ROOT),
        annotator_ids=[annotator.pk, dataset_admin.pk],
        version_ids=[tiny_model.pk],
        pool=mask_pool()[:40],
        jpeg=placeholder_jpeg(),
        export_jpeg=placeholder_jpeg(kib=40),
        export_images=5,
    )
    connection.ensure_connection()
    written = fill(connection.connection, context, 0, 60, seed=1)
    assert written["images"] == 60 and written["masks"] == Mask.objects.count() > 60 * 20
    recount_tallies()
    media = Path(settings.MEDIA_ROOT)
    sizes = [(media / f"bench/{i}.jpg").stat().st_size for i in range(written["images"])]
    assert sizes[:5] == [len(context.export_jpeg)] * 5 > [40_000] * 5
    assert set(sizes[5:]) == {len(context.jpeg)} and len(context.jpeg) < 15_000

    images = list(Image.objects.filter(dataset=dataset).values_list("id", "width", "height"))
    failed: list = []
    annotations = sa1b_annotations(images[:32], ExportFilters(), failed)
    assert failed == []
    assert (
        sum(len(a) for a in annotations.values())
        == Mask.objects.filter(image_id__in=[i for i, _, _ in images[:32]]).count()
    )
    stats = dataset_stats(dataset)
    assert stats["masks_per_image"]["all"]["masks"] == written["masks"]
    assert (
        sum(row["masks"] for row in stats["seconds_per_mask"])
        == Mask.objects.filter(source__in=("manual", "model_assisted"), seconds_spent__gt=0).count()
    )
