"""PostgreSQL only: claiming skips rows another transaction has locked instead of waiting."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from annotation.models import Image
from annotation.services.image_holds import claim_next_image
from tests import factories

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def require_postgres() -> None:
    assert connection.vendor == "postgresql", (
        "this test needs PostgreSQL: run it with DATABASE_URL=postgres://... "
        "(deselect it with -m 'not postgres' on SQLite)"
    )


def make_images(dataset, count: int) -> list[Image]:
    return [
        Image.objects.create(
            dataset=dataset,
            file=f"x{i}.png",
            original_name=f"x{i}.png",
            sha256=f"{i:064x}",
            content_sha256=f"{i:064x}",
            format="PNG",
            width=4,
            height=4,
            file_size=1,
        )
        for i in range(count)
    ]


def test_claim_skips_a_row_locked_by_a_claim_in_progress():
    require_postgres()
    first_user, second_user = factories.make_user("a"), factories.make_user("b")
    dataset = factories.make_dataset("pg", [(first_user, "annotator"), (second_user, "annotator")])
    oldest, newer = make_images(dataset, 2)
    locked, release = threading.Event(), threading.Event()

    def hold_lock():
        try:
            with transaction.atomic():
                Image.objects.select_for_update().get(pk=oldest.pk)
                locked.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert locked.wait(timeout=10)
        # Without SKIP LOCKED this would block until the other transaction ends.
        claimed = claim_next_image(dataset, second_user, 1)
    finally:
        release.set()
        holder.join(timeout=30)

    assert claimed.pk == newer.pk


def test_partial_unique_indexes_exist_in_postgres():
    require_postgres()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE indexname = ANY(%s)",
            [["modelversion_at_most_one_active", "session_one_open_per_annotator_image"]],
        )
        rows = dict(cursor.fetchall())
    assert "WHERE is_active" in rows["modelversion_at_most_one_active"]
    assert "WHERE (ended_at IS NULL)" in rows["session_one_open_per_annotator_image"]
