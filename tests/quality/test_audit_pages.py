"""The quality pages: the dashboard's audit list and report (SVG histogram and figures), the
reviewers' entry on the home page, and the annotation page opened on an audit."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client

from annotation.services import audits
from tests import factories
from tests.quality.cases import build_case, review_as_designed

pytestmark = pytest.mark.django_db


@pytest.fixture
def case(db):
    return build_case()


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def finished_audit(case):
    audit = audits.start_audit(case.dataset, case.admin, sample_size=10)
    review_as_designed(case, case.reviewer)
    while (image := audits.next_audit_image(audit, case.reviewer)) is not None:
        audits.finish_audit_image(audit, image, case.reviewer)
    return audit


def test_dashboard_report_draws_the_histogram_and_the_figures(case):
    audit = finished_audit(case)
    staff = signed_in(factories.make_user("boss", staff=True))
    listing = staff.get(f"/admin/dashboard/datasets/{case.dataset.pk}/audits/").content.decode()
    assert f'data-audit="{audit.pk}"' in listing and "40%" in listing
    page = staff.get(f"/admin/dashboard/audits/{audit.pk}/").content.decode()
    counts = [int(c) for c in re.findall(r'class="bar"[^>]*data-count="(\d+)"', page)]
    assert len(counts) == 20 and counts[16] == 2 and counts[19] == 2 and counts[12] == 1
    row = re.search(r'data-key="share_iou_90">.*?</tr>', page, re.S).group(0)
    assert re.findall(r'<td class="num">([^<]*)</td>', row) == ["40.0%", "50.0%", "0.0%"]
    assert signed_in(case.admin).get(f"/admin/dashboard/audits/{audit.pk}/").status_code == 302


def test_home_lists_open_audits_for_reviewers_only(case):
    audit = audits.start_audit(case.dataset, case.admin, sample_size=10)
    assert f'data-audit="{audit.pk}"' in signed_in(case.reviewer).get("/").content.decode()
    home = signed_in(case.annotator).get("/").content.decode()
    assert "open-audits" not in home and "data-audit" not in home


def annotate_config(client, image, audit) -> dict:
    page = client.get(f"/annotate/{image.pk}/?audit={audit.pk}").content.decode()
    raw = re.search(r'id="annotate-config" type="application/json">(.*?)</script>', page, re.S)
    return json.loads(raw.group(1))


def test_review_opens_the_annotation_page_on_the_audit(case):
    audit = audits.start_audit(case.dataset, case.admin, sample_size=1, seed=2)
    reviewer = signed_in(case.reviewer)
    answer = reviewer.post(f"/audits/{audit.pk}/review/")
    image = audit.images.get().image
    assert (
        answer.status_code == 302
        and answer["Location"] == f"/annotate/{image.pk}/?audit={audit.pk}"
    )
    config = annotate_config(reviewer, image, audit)
    assert config["audit"]["doneUrl"] == f"/api/audits/{audit.pk}/images/{image.pk}/done/"
    assert annotate_config(signed_in(case.annotator), image, audit)["audit"] is None
    assert signed_in(case.annotator).post(f"/audits/{audit.pk}/review/").status_code == 404
