"""The dashboard's held-out table: one header per cell, each header over its own metric. The
page renders the headers; dashboard.js fills every row with the round, the masks here and then
one cell per ``th[data-metric]`` in header order, from the stats the page carries as JSON."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from annotation.services.stats import HELDOUT_KEYS
from registry.models import ModelVersion
from tests import factories

pytestmark = pytest.mark.django_db

SCRIPT = Path(__file__).parents[2] / "frontend/static/frontend/dashboard/dashboard.js"
# Distinct values, so a column shifted by one shows.
METRICS = {key: round(0.11 * (i + 1), 2) for i, key in enumerate(HELDOUT_KEYS)}
FIXED = ["Version", "Round", "Masks here"]  # the cells before the metrics, as the script draws them


class ModelTable(HTMLParser):
    """The headers of #model-table: (text, data-metric or None) per <th> of its <thead>."""

    def __init__(self) -> None:
        super().__init__()
        self.headers: list[list] = []
        self.where: list[str] = []
        self.inside = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and attrs.get("id") == "model-table":
            self.inside = True
        if self.inside:
            self.where.append(tag)
            if tag == "th" and "thead" in self.where:
                self.headers.append(["", attrs.get("data-metric")])

    def handle_endtag(self, tag):
        if self.inside and self.where:
            self.where.pop()
            self.inside = tag != "table"

    def handle_data(self, data):
        if self.inside and self.where and self.where[-1] == "th" and "thead" in self.where:
            self.headers[-1][0] += data.strip()


@pytest.fixture
def staff_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.com"))
    return client


def test_each_header_sits_over_its_value(staff_client, dataset, isolated_storage):
    factories.add_image(dataset)
    ModelVersion.objects.create(
        name="round-3", model_type="vit_tiny", checkpoint="r3.pt", encoder_key="k3", round=3,
        trained_on="-", metrics={"heldout": {"images": 1, "masks": 31, **METRICS}},
    )  # fmt: skip
    html = staff_client.get(f"/admin/dashboard/datasets/{dataset.pk}/").content.decode()
    table = ModelTable()
    table.feed(html)
    page = json.loads(re.search(r'id="dashboard-data"[^>]*>(.*?)</script>', html, re.S).group(1))
    [version] = [v for v in page["stats"]["model_versions"] if v["name"] == "round-3"]

    # The row dashboard.js draws: the fixed cells, then one per metric header, in header order.
    keys = [key for _, key in table.headers if key]
    row = [version["name"], version["round"], version["masks_in_dataset"]]
    row += [version["heldout"][key] for key in keys]
    labels = [text for text, _ in table.headers]
    assert labels[:3] == FIXED and len(labels) == len(row) == 3 + len(HELDOUT_KEYS)
    over = dict(zip(labels, row, strict=True))
    assert over["mIoU box"] == METRICS["miou_box"]
    assert over["mIoU 5 clicks"] == METRICS["miou_5clicks"]
    assert over["mIoU 10 clicks"] == METRICS["miou_10clicks"]
    assert over["NoC@90"] == METRICS["noc90"] and over["NoC@85"] == METRICS["noc85"]
    assert over["mIoU 1 click (top)"] == METRICS["miou_1click_top"]
    assert over["mIoU 1 click (best)"] == METRICS["miou_1click_best"]
    assert over["Round"] == 3


def test_the_script_takes_its_columns_from_the_headers():
    script = SCRIPT.read_text()
    assert 'querySelectorAll("th[data-metric]")' in script
    assert "heldout_keys" not in script, "a second column list would drift from the headers"
