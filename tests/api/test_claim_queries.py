"""Claiming the next image costs the same queries whatever the dataset's size: no count of
the dataset's images on the way (the dataset's image_count is for the answers that show it)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.api.test_images_keyset import add_rows

pytestmark = pytest.mark.django_db


def claim_queries(client, dataset) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        answer = client.post(f"/api/datasets/{dataset.pk}/next-image/", {"stage": 1})
    assert answer.status_code == 200
    client.post(f"/api/images/{answer.json()['id']}/release/", {}, format="json")
    return [query["sql"] for query in captured.captured_queries]


def test_next_image_queries_do_not_grow_with_the_dataset(annotator_client, dataset):
    add_rows(dataset, 6)
    few = claim_queries(annotator_client, dataset)
    add_rows(dataset, 300, first=6)
    many = claim_queries(annotator_client, dataset)
    assert len(many) == len(few)
    assert not [sql for sql in many if "COUNT(" in sql.upper()]


def test_dataset_answers_still_count_their_images(annotator_client, dataset):
    add_rows(dataset, 4)
    assert annotator_client.get(f"/api/datasets/{dataset.pk}/").json()["image_count"] == 4
    listed = annotator_client.get("/api/datasets/").json()["results"]
    assert [d["image_count"] for d in listed if d["id"] == dataset.pk] == [4]
