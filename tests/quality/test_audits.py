"""A whole audit on constructed masks: the sample, reviewers' holds, the comparisons and the
report's figures, exactly; annotators' queues skip the audited images while the audit runs."""

from __future__ import annotations

import pytest

from annotation.models import Audit, AuditItem, Mask
from annotation.services import audits, image_holds
from annotation.services.audit_report import report_csv
from annotation.services.errors import Conflict, InvalidInput
from tests.quality.cases import build_case, review_as_designed

pytestmark = pytest.mark.django_db


@pytest.fixture
def case(db):
    return build_case()


def run_audit(case) -> Audit:
    audit = audits.start_audit(case.dataset, case.admin, sample_size=10, seed=7)
    review_as_designed(case, case.reviewer)
    seen = []
    while (image := audits.next_audit_image(audit, case.reviewer)) is not None:
        audits.finish_audit_image(audit, image, case.reviewer)
        seen.append(image.pk)
    assert sorted(seen) == sorted([case.a.pk, case.b.pk, case.c.pk])
    audit.refresh_from_db()
    return audit


def test_sample_copies_the_originals_and_only_model_masks(case):
    audit = audits.start_audit(case.dataset, case.admin, sample_size=2, seed=3)
    assert audit.candidate_images == 3 and audit.images.count() == 2
    again = audits.start_audit(case.dataset, case.admin, sample_size=5, seed=3)
    assert again.images.count() == 1  # the two images of the open audit are not drawn again
    items = AuditItem.objects.filter(audit_image__audit__in=[audit, again])
    assert items.count() == 6 and not items.filter(mask_id=case.masks["manual"].pk).exists()
    original = items.get(mask_id=case.masks["a2"].pk)
    assert original.rle == case.masks["a2"].rle and original.area == 400
    assert original.model_version_id == case.version.pk and original.stage == 3


def test_same_seed_draws_the_same_images(case):
    first = audits.start_audit(case.dataset, case.admin, sample_size=2, seed=11)
    drawn = [entry.image_id for entry in first.images.all()]
    audits.cancel_audit(first)
    second = audits.start_audit(case.dataset, case.admin, sample_size=2, seed=11)
    assert [entry.image_id for entry in second.images.all()] == drawn


def test_the_report_of_the_constructed_review(case):
    audit = run_audit(case)
    assert audit.status == Audit.Status.DONE and audit.finished_at is not None
    report = audit.report
    assert report["images"] == {"sampled": 3, "reviewed": 3} and report["originals"] == 6
    auto, prefilled = report["groups"]
    assert (auto["model_version"], auto["source"], auto["stage"]) == (
        case.version.pk,
        "automatic",
        3,
    )
    assert auto["model_version_name"] == "v1"
    assert (auto["originals"], auto["pairs"], auto["unchanged"]) == (5, 4, 2)
    assert (auto["deleted"], auto["added"]) == (1, 1)
    assert auto["share_iou_90"] == pytest.approx(2 / 4)
    assert auto["share_iou_75"] == 1.0 and auto["share_iou_50"] == 1.0
    assert auto["median_iou"] == pytest.approx((9 / 11 + 1) / 2)
    assert auto["mean_boundary_iou"] == pytest.approx((1 + 1 / 3 + 1 / 3 + 1) / 4)
    assert auto["precision"] == pytest.approx(4 / 5) and auto["recall"] == pytest.approx(4 / 5)
    assert auto["histogram"][16] == 2 and auto["histogram"][19] == 2 and sum(auto["histogram"]) == 4
    assert (prefilled["source"], prefilled["stage"], prefilled["pairs"]) == ("prefilled", 2, 1)
    assert prefilled["median_iou"] == pytest.approx(0.64)
    assert prefilled["mean_boundary_iou"] == 0.0 and prefilled["share_iou_50"] == 1.0
    assert prefilled["share_iou_75"] == 0.0 and prefilled["added"] == 0
    overall = report["overall"]
    assert (overall["originals"], overall["pairs"], overall["added"]) == (6, 5, 1)
    assert overall["share_iou_90"] == pytest.approx(2 / 5)
    outcomes = dict(AuditItem.objects.values_list("mask_id", "outcome"))
    assert outcomes[case.masks["a1"].pk] == "kept" and outcomes[case.masks["a2"].pk] == "fixed"
    assert outcomes[case.masks["a3"].pk] == "deleted"


def test_the_original_stays_when_the_mask_is_edited_again_later(case):
    audit = run_audit(case)
    Mask.objects.filter(image=case.a).delete()
    item = AuditItem.objects.get(audit_image__audit=audit, mask_id=case.masks["a2"].pk)
    assert item.rle == case.masks["a2"].rle and item.iou == pytest.approx(9 / 11)


def test_csv_has_a_row_for_the_audit_and_one_per_group(case):
    audit = run_audit(case)
    lines = report_csv(audit).splitlines()
    header = lines[0].split(",")
    assert header[:6] == [
        "audit",
        "scope",
        "model_version",
        "model_version_name",
        "source",
        "stage",
    ]
    assert "share_iou_90" in header and header[-1] == "iou_0.95-1.00"
    assert len(lines) == 4
    overall = dict(zip(header, lines[1].split(","), strict=True))
    assert overall["scope"] == "all" and float(overall["share_iou_90"]) == pytest.approx(0.4)
    auto = dict(zip(header, lines[2].split(","), strict=True))
    assert auto["source"] == "automatic" and auto["deleted"] == "1" and auto["iou_0.80-0.85"] == "2"


def test_annotators_never_get_audit_images_while_it_is_open(case):
    audit = audits.start_audit(case.dataset, case.admin, sample_size=10, seed=0)
    assert image_holds.claim_next_image(case.dataset, case.annotator, 2) is None
    audits.cancel_audit(audit)
    assert image_holds.claim_next_image(case.dataset, case.annotator, 2).pk == case.c.pk


def test_a_reviewer_cannot_finish_an_image_held_by_another(case):
    audit = audits.start_audit(case.dataset, case.admin, sample_size=1, seed=0)
    image = audits.next_audit_image(audit, case.reviewer)
    with pytest.raises(Conflict, match="do not hold"):
        audits.finish_audit_image(audit, image, case.annotator)
    other = next(im for im in (case.a, case.b, case.c) if im.pk != image.pk)
    with pytest.raises(InvalidInput, match="not in audit"):
        audits.finish_audit_image(audit, other, case.reviewer)
    entry = audits.finish_audit_image(audit, image, case.reviewer)
    assert entry.status == "done"
    assert audits.finish_audit_image(audit, image, case.reviewer).pk == entry.pk  # again: same


def test_bad_options_and_nothing_to_audit_are_refused(case):
    with pytest.raises(InvalidInput, match="sample_size"):
        audits.start_audit(case.dataset, case.admin, sample_size=0)
    with pytest.raises(InvalidInput, match="source"):
        audits.start_audit(case.dataset, case.admin, source="manual", sample_size=1)
    Mask.objects.filter(source="prefilled").delete()
    with pytest.raises(Conflict, match="no image"):
        audits.start_audit(case.dataset, case.admin, source="prefilled", sample_size=1)


def test_queues_and_prefetch_do_not_count_or_show_audit_images(case):
    from annotation.services.next_images import stage_queues, upcoming_images

    def available() -> int:
        queue = next(q for q in stage_queues(case.annotator) if q["dataset"] == case.dataset)
        return next(s for s in queue["stages"] if s["stage"] == 2)["available"]

    assert available() == 1 and [im.pk for im in upcoming_images(case.dataset, 2)] == [case.c.pk]
    audit = audits.start_audit(case.dataset, case.admin, sample_size=10)
    assert available() == 0 and upcoming_images(case.dataset, 2) == []
    audits.cancel_audit(audit)
    assert available() == 1


def test_an_image_an_annotator_holds_stays_theirs_when_drawn(case):
    assert image_holds.claim_next_image(case.dataset, case.annotator, 2).pk == case.c.pk
    audits.start_audit(case.dataset, case.admin, sample_size=10)
    assert image_holds.claim_next_image(case.dataset, case.annotator, 2).pk == case.c.pk
