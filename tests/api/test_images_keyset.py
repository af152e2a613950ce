"""Keyset pages of the image list (``?after=``): the same images in the same order as the offset
pages, ties of created_at included, in a number of queries that does not grow with the depth
of the page or the size of the list."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotation.models import Image

pytestmark = pytest.mark.django_db

START = datetime(2026, 5, 1, tzinfo=UTC)


def add_rows(dataset, count: int, first: int = 0) -> None:
    """Image rows only (a list reads no file); every third pair shares its created_at."""
    rows = [
        Image(
            dataset=dataset,
            file=f"rows/{i}.jpg",
            original_name=f"{i}.jpg",
            sha256=f"{i:064x}",
            content_sha256=f"{i:064x}",
            format="JPEG",
            width=64,
            height=48,
            file_size=1,
            stage=1 + i % 3,
        )
        for i in range(first, first + count)
    ]
    Image.objects.bulk_create(rows)
    for i, image in enumerate(Image.objects.filter(dataset=dataset).order_by("pk")[first:]):
        moment = START + timedelta(seconds=(first + i) // 2 if (first + i) % 3 == 0 else first + i)
        Image.objects.filter(pk=image.pk).update(created_at=moment)


def walk(client, query: str, limit: int) -> tuple[list[int], int]:
    """Every id by following next links from after=0, and the most queries one page took."""
    url, ids, most = f"/api/images/?{query}&after=0&limit={limit}", [], 0
    while url:
        with CaptureQueriesContext(connection) as captured:
            answer = client.get(url).json()
        most = max(most, len(captured.captured_queries))
        assert set(answer) == {"next", "results"}
        ids += [row["id"] for row in answer["results"]]
        url = answer["next"]
    return ids, most


def offset_ids(client, query: str) -> list[int]:
    return [row["id"] for row in client.get(f"/api/images/?{query}&limit=1000").json()["results"]]


@pytest.mark.parametrize("query_of", [lambda d: f"dataset={d}", lambda d: f"dataset={d}&stage=2"])
def test_keyset_pages_list_what_offset_pages_list(admin_client, dataset, query_of):
    add_rows(dataset, 40)
    query = query_of(dataset.pk)
    ids, _ = walk(admin_client, query, limit=7)
    assert ids == offset_ids(admin_client, query)
    assert len(ids) == len(set(ids)) > 7


def test_keyset_page_queries_do_not_grow_with_the_list(admin_client, dataset):
    add_rows(dataset, 12)
    _, few = walk(admin_client, f"dataset={dataset.pk}", limit=5)
    add_rows(dataset, 120, first=12)
    ids, many = walk(admin_client, f"dataset={dataset.pk}", limit=5)
    assert len(ids) == 132
    assert many == few


@pytest.mark.parametrize("after", ["-1", "x", str(2**63)])
def test_a_bad_after_is_a_400_naming_it(admin_client, dataset, after):
    answer = admin_client.get(f"/api/images/?after={after}")
    assert answer.status_code == 400
    assert "after" in answer.json()


def test_after_an_image_the_user_cannot_see_is_a_400(
    outsider_client, annotator_client, dataset, other_dataset
):
    add_rows(dataset, 2)
    hidden = Image.objects.filter(dataset=dataset).first()
    answer = outsider_client.get(f"/api/images/?after={hidden.pk}")
    assert answer.status_code == 400
    assert f"no image {hidden.pk}" in str(answer.json()["after"])
    assert annotator_client.get(f"/api/images/?after={hidden.pk}").status_code == 200


def test_the_schema_allows_a_keyset_page_without_a_count(anon_client):
    schema = anon_client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    page = schema["components"]["schemas"]["PaginatedImageList"]
    assert page["required"] == ["results"]
    assert "keyset" in page["properties"]["count"]["description"]
