"""Mask tallies: what the statistics count, kept as the masks are written.

The dashboard's numbers about masks (masks per image and stage, masks per model version, masks
per dataset, the time people spent per mask and day) were aggregates over every mask row, which
grows to ~100 rows per image (10 million at 100,000 images; seconds per request). Two small
tables hold them instead, kept by database triggers on ``annotation_mask`` (migration
``annotation/0010_mask_tallies``, for PostgreSQL and SQLite):

- ``MaskTally``: per image, stage and model version (0: none), the number of masks;
- ``HumanMaskDay``: per dataset, stage and UTC day of creation, the number and the seconds of
  the masks people made with a recorded time (sources manual and model_assisted, > 0 s).

Triggers rather than service code because masks are written on many paths (the API, automatic
passes, imports, edits, cascading deletes of images and datasets) and a trigger sees every one,
in the same transaction. Every write is counted, so the tallies are exact at every commit (no
freshness window). A bulk load that bypasses them (COPY with triggers disabled, as
benchmarks/scale_fill.py does) ends with ``recount_tallies``.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Count, Sum
from django.db.models.functions import Coalesce, TruncDate

from annotation.models import HumanMaskDay, Mask, MaskTally
from annotation.services.export_format import HUMAN_SOURCES
from annotation.services.sa1b_docs import invalidate_all_docs


def counted_tallies() -> tuple[list[MaskTally], list[HumanMaskDay]]:
    """The tallies counted afresh from the mask rows (unsaved), in key order."""
    per_image = (
        Mask.objects.annotate(key=Coalesce("model_version", 0))
        .values("image", "stage", "key")
        .annotate(n=Count("id"))
        .order_by("image", "stage", "key")
    )
    tallies = [
        MaskTally(
            image_id=row["image"], stage=row["stage"], model_version_key=row["key"], masks=row["n"]
        )
        for row in per_image
    ]
    days = [
        HumanMaskDay(
            dataset_id=row["image__dataset"],
            stage=row["stage"],
            day=row["day"],
            masks=row["n"],
            seconds=row["seconds"],
        )
        for row in Mask.objects.filter(source__in=HUMAN_SOURCES, seconds_spent__gt=0)
        .annotate(day=TruncDate("created_at"))
        .values("image__dataset", "stage", "day")
        .annotate(n=Count("id"), seconds=Sum("seconds_spent"))
        .order_by("image__dataset", "stage", "day")
    ]
    return tallies, days


def recount_tallies() -> tuple[int, int]:
    """Replace both tallies with a fresh count of the mask rows; returns their row counts. For
    after a bulk load that bypassed the triggers; the tables are locked meanwhile. Every
    SA-1B document is made stale as well (``sa1b_docs.invalidate_all_docs``)."""
    tallies, days = counted_tallies()
    with transaction.atomic():
        MaskTally.objects.all().delete()
        HumanMaskDay.objects.all().delete()
        MaskTally.objects.bulk_create(tallies, batch_size=5000)
        HumanMaskDay.objects.bulk_create(days, batch_size=5000)
        # The load bypassed the image documents' revision triggers too.
        invalidate_all_docs()
    return len(tallies), len(days)
