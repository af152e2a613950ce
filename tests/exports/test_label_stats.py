"""Masks per label in the dataset statistics, the API and the dashboard: equal to a recount, and
read through the partial index on labelled masks."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.urls import reverse

from annotation.models import Label, Mask
from annotation.services.stats import dataset_stats, label_counts
from tests import factories
from tests.exports.conftest import add_mask, blob

pytestmark = pytest.mark.django_db


@pytest.fixture
def labelled(dataset, other_dataset):
    """Three labels (the last unused), masks with and without labels, and another dataset's
    labelled masks that must not count here."""
    cat = Label.objects.create(dataset=dataset, name="cat", color="#ff0000", position=2)
    dog = Label.objects.create(dataset=dataset, name="dog", color="#00ff00", position=1)
    Label.objects.create(dataset=dataset, name="bird", color="#0000ff", position=3)
    foreign = Label.objects.create(dataset=other_dataset, name="cat")
    for seed in (1, 2):
        image = factories.add_image(dataset, seed=seed)
        for i, label in enumerate([cat, cat, dog, None, None, None]):
            add_mask(image, blob(image, 10 + 8 * i, 20, 4), label=label)
    elsewhere = factories.add_image(other_dataset, seed=3)
    add_mask(elsewhere, blob(elsewhere, 20, 20, 5), label=foreign)
    return cat, dog


def recount(dataset):
    return {
        label.pk: Mask.objects.filter(image__dataset=dataset, label=label).count()
        for label in Label.objects.filter(dataset=dataset)
    }


def test_stats_count_masks_per_label_as_a_recount_does(dataset, labelled):
    stats = dataset_stats(dataset)

    assert [row["name"] for row in stats["labels"]] == ["dog", "cat", "bird"]  # pickers' order
    assert {row["id"]: row["masks"] for row in stats["labels"]} == recount(dataset)
    assert [row["masks"] for row in stats["labels"]] == [2, 4, 0]
    assert stats["labels"][0]["color"] == "#00ff00"
    unlabelled = Mask.objects.filter(image__dataset=dataset, label__isnull=True).count()
    assert stats["unlabelled_masks"] == unlabelled == 6


def test_a_deleted_label_s_masks_count_as_unlabelled(dataset, labelled):
    cat, _ = labelled
    cat.delete()
    stats = dataset_stats(dataset)

    assert {row["id"]: row["masks"] for row in stats["labels"]} == recount(dataset)
    assert stats["unlabelled_masks"] == 10


def test_the_label_count_searches_masks_by_label_through_an_index(dataset, labelled):
    """An index keyed by label reads only labelled masks (mask_label_idx, or the foreign key's
    own index: both hold the labelled masks under their label), never the class-agnostic
    millions a scan of the table would."""
    sql, params = label_counts(dataset).query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Tiny tables: a sequential scan is cheaper, so forbid it to see whether the
            # index can serve this query at all.
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("EXPLAIN " + sql, params)
        else:
            cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
        plan = " ".join(str(part) for row in cursor.fetchall() for part in row)
    if connection.vendor == "postgresql":
        assert "Seq Scan on annotation_mask" not in plan, plan
        on_masks = (
            r"Index (Only )?Scan using \S+ on annotation_mask|Bitmap Heap Scan on annotation_mask"
        )
        assert re.search(on_masks, plan), plan
    else:
        assert "SCAN annotation_mask" not in plan, plan
        assert re.search(
            r"SEARCH annotation_mask USING (COVERING )?INDEX \S+ \(label_id=\?\)", plan
        )


def test_the_api_and_the_dashboard_show_masks_per_label(
    dataset, labelled, client_for, dataset_admin, client
):
    body = client_for(dataset_admin).get(f"/api/datasets/{dataset.pk}/stats/").json()
    assert [(row["name"], row["masks"]) for row in body["labels"]] == [
        ("dog", 2),
        ("cat", 4),
        ("bird", 0),
    ]
    assert body["unlabelled_masks"] == 6

    client.force_login(factories.make_user("boss", staff=True))
    page = client.get(reverse("dashboard-dataset", args=[dataset.pk])).content.decode()
    # The labels card fills its Masks column from these stats (browser test:
    # tests/browser/test_dashboard_label_counts.py); the unlabelled count is in the page itself.
    unlabelled = page[page.index('id="label-unlabelled"') :]
    assert "<strong>6</strong>" in unlabelled[: unlabelled.index("</p>")]
