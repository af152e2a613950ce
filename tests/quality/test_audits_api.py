"""Audits through the API: who may start and see them, the review loop, the report as JSON
and CSV with the same figures as the service, cancelling, and release gates on exports."""

from __future__ import annotations

import csv
import io
import json

import pytest

from annotation.models import Audit, Export
from tests.quality.cases import build_case, review_as_designed

pytestmark = pytest.mark.django_db


@pytest.fixture
def case(db):
    return build_case()


def start(client, case, **body):
    return client.post(
        f"/api/datasets/{case.dataset.pk}/audits/", {"sample_size": 10, **body}, format="json"
    )


def review_all(client, audit_id: int) -> list[int]:
    seen = []
    while True:
        answer = client.post(f"/api/audits/{audit_id}/next-image/")
        assert answer.status_code == 200, answer.content
        image = answer.json()["image"]
        if image is None:
            return seen
        assert answer.json()["annotate_url"] == f"/annotate/{image}/?audit={audit_id}"
        done = client.post(f"/api/audits/{audit_id}/images/{image}/done/")
        assert done.status_code == 200, done.content
        seen.append(image)


def test_admins_and_reviewers_start_audits_annotators_and_outsiders_cannot(case, client_for):
    assert start(client_for(case.admin), case, seed=1).status_code == 201
    Audit.objects.update(status="cancelled")
    reviewer = start(client_for(case.reviewer), case, source="automatic")
    assert reviewer.status_code == 201 and reviewer.json()["progress"]["sampled"] == 2
    annotator = client_for(case.annotator)
    assert start(annotator, case).status_code == 403
    assert annotator.get(f"/api/datasets/{case.dataset.pk}/audits/").status_code == 403
    audit_id = reviewer.json()["id"]
    assert annotator.get(f"/api/audits/{audit_id}/").status_code == 404
    assert annotator.get("/api/audits/").json()["results"] == []
    outsider = client_for(None)
    assert outsider.get(f"/api/audits/{audit_id}/").status_code in (401, 403)
    from tests import factories

    stranger = client_for(factories.make_user("stranger"))
    assert start(stranger, case).status_code == 404
    assert stranger.get(f"/api/audits/{audit_id}/report-csv/").status_code == 404


def test_bad_requests_name_the_field(case, client_for):
    admin = client_for(case.admin)
    for body, field in [
        ({"sample_size": 0}, "sample_size"),
        ({"source": "manual"}, "source"),
        ({"model_version": 999}, "model_version"),
        ({"seed": -1}, "seed"),
    ]:
        answer = start(admin, case, **body)
        assert answer.status_code == 400, (body, answer.content)
        assert field in answer.content.decode()
    assert admin.post("/api/audits/999/cancel/").status_code == 404


def test_review_loop_and_report_through_the_api(case, client_for):
    admin, reviewer = client_for(case.admin), client_for(case.reviewer)
    audit_id = start(admin, case, seed=5).json()["id"]
    review_as_designed(case, case.reviewer)
    assert len(review_all(reviewer, audit_id)) == 3
    detail = reviewer.get(f"/api/audits/{audit_id}/").json()
    assert detail["status"] == "done" and detail["progress"] == {"sampled": 3, "reviewed": 3}
    auto = detail["report"]["groups"][0]
    assert auto["share_iou_90"] == pytest.approx(0.5) and auto["precision"] == pytest.approx(0.8)
    download = admin.get(f"/api/audits/{audit_id}/report/")
    assert download.status_code == 200 and "attachment" in download["Content-Disposition"]
    assert json.loads(download.content)["audit"]["report"]["overall"]["pairs"] == 5
    table = admin.get(f"/api/audits/{audit_id}/report-csv/")
    assert table.status_code == 200 and table["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(table.content.decode())))
    assert [row["scope"] for row in rows] == ["all", "group", "group"]
    assert float(rows[2]["median_iou"]) == pytest.approx(0.64)
    assert admin.post(f"/api/audits/{audit_id}/cancel/").status_code == 409


def test_cancel_gives_the_images_back(case, client_for):
    admin = client_for(case.admin)
    audit_id = start(admin, case).json()["id"]
    annotator = client_for(case.annotator)
    claim = annotator.post(f"/api/datasets/{case.dataset.pk}/next-image/", {"stage": 2})
    assert claim.status_code == 204
    assert admin.post(f"/api/audits/{audit_id}/cancel/").json()["status"] == "cancelled"
    claim = annotator.post(f"/api/datasets/{case.dataset.pk}/next-image/", {"stage": 2})
    assert claim.status_code == 200 and claim.json()["id"] == case.c.pk


def export(client, case, gate):
    return client.post(
        f"/api/datasets/{case.dataset.pk}/exports/", {"format": "sa1b", "gate": gate}, format="json"
    )


def test_gate_refuses_without_an_audit_and_when_the_audit_falls_short(case, client_for):
    admin = client_for(case.admin)
    refused = export(admin, case, {"min_share_iou_90": 0.9})
    assert refused.status_code == 409
    assert "no finished audit" in refused.json()["detail"]
    assert {gap["source"] for gap in refused.json()["gaps"]} == {"automatic", "prefilled"}
    audit_id = start(admin, case).json()["id"]
    review_as_designed(case, case.reviewer)
    review_all(client_for(case.reviewer), audit_id)
    refused = export(admin, case, {"min_share_iou_90": 0.9})
    assert refused.status_code == 409 and Export.objects.count() == 0
    detail = refused.json()["detail"]
    assert "share_iou_90 = 0.5000 < 0.9" in detail and "share_iou_90 = 0.0000 < 0.9" in detail
    assert f"(audit {audit_id})" in detail


def test_gate_met_records_the_audits_in_report_and_manifest(
    case, client_for, django_capture_on_commit_callbacks
):
    admin = client_for(case.admin)
    audit_id = start(admin, case).json()["id"]
    review_as_designed(case, case.reviewer)
    review_all(client_for(case.reviewer), audit_id)
    with django_capture_on_commit_callbacks(execute=True):
        answer = export(admin, case, {"min_share_iou_50": 0.5, "min_precision": 0.8})
    assert answer.status_code == 202, answer.content
    exported = Export.objects.get(pk=answer.json()["id"])
    assert exported.status == "done", exported.error
    relied = exported.report["gate"]["relied_on"]
    assert [(r["source"], r["audit"]) for r in relied] == [
        ("automatic", audit_id),
        ("prefilled", audit_id),
    ]
    download = admin.get(f"/api/exports/{exported.pk}/download/")
    manifest = json.loads(b"".join(download.streaming_content))
    assert manifest["gate"]["thresholds"] == {"min_share_iou_50": 0.5, "min_precision": 0.8}


def test_gate_covers_only_the_masks_the_export_includes(case, client_for):
    admin = client_for(case.admin)
    answer = admin.post(
        f"/api/datasets/{case.dataset.pk}/exports/",
        {"source": "manual", "gate": {"min_share_iou_90": 0.9}},
        format="json",
    )
    assert answer.status_code == 202 and answer.json()["report"]["gate"]["relied_on"] == []


def test_gate_rejects_unknown_and_out_of_range_thresholds(case, client_for):
    admin = client_for(case.admin)
    for gate in [{"share": 0.9}, {"min_recall": 2}, {}, "0.9"]:
        answer = export(admin, case, gate)
        assert answer.status_code == 400 and "gate" in answer.json(), gate
