"""The dataset's jobs in one list (GET /api/datasets/{id}/jobs/): passes, training rounds (with
phase, step of total, last loss and ETA), imports and exports, active first, each with the URL
that cancels it; every cancel URL works; only the dataset's admins see the list."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from annotation.models import AutomaticPass, AutomaticPassImage, Export, ImportJob
from modeltrain.models import TrainingRound
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def busy(dataset, dataset_admin, tiny_model, admin_user):
    """One job of each kind on the dataset: a running pass, a running round, a finished import
    and a queued export (created in that order, a minute apart)."""
    image = factories.add_image(dataset, 20, 16)
    start = timezone.now() - timedelta(minutes=10)
    run = AutomaticPass.objects.create(
        dataset=dataset, kind="prefill", stage=2, config={}, model_version=tiny_model,
        status="running", total_images=1, created_by=dataset_admin,
    )  # fmt: skip
    AutomaticPassImage.objects.create(automatic_pass=run, image=image)
    training = TrainingRound.objects.create(
        dataset=dataset, parent=tiny_model, status="running", phase="train", step=30,
        total_steps=120, loss=0.4375, eta_seconds=95.0, train_masks=12, heldout_masks=3,
        started_at=timezone.now(),
    )  # fmt: skip
    imported = ImportJob.objects.create(
        dataset=dataset, path="incoming/", status="done",
        report={"imported": [{"id": image.pk}], "duplicates": [], "rejected": []},
    )  # fmt: skip
    export = Export.objects.create(dataset=dataset, format="coco", filters={"stage": 1})
    for minutes, job in enumerate([run, training, imported, export]):
        type(job).objects.filter(pk=job.pk).update(created_at=start + timedelta(minutes=minutes))
    return {"automatic_pass": run, "training_round": training, "import": imported, "export": export}


def jobs_url(dataset) -> str:
    return f"/api/datasets/{dataset.pk}/jobs/"


def test_the_list_has_every_kind_active_first_with_progress(
    client_for, dataset_admin, dataset, busy
):
    answer = client_for(dataset_admin).get(jobs_url(dataset))
    assert answer.status_code == 200, answer.content
    listed = answer.json()
    assert [(job["kind"], job["status"]) for job in listed] == [
        ("export", "queued"),
        ("training_round", "running"),
        ("automatic_pass", "running"),
        ("import", "done"),
    ]
    by_kind = {job["kind"]: job for job in listed}
    assert by_kind["training_round"]["round"] == {
        "phase": "train",
        "step": 30,
        "total_steps": 120,
        "loss": 0.4375,
        "eta_seconds": 95.0,
        "train_masks": 12,
        "heldout_masks": 3,
    }
    assert (by_kind["training_round"]["done"], by_kind["training_round"]["total"]) == (30, 120)
    assert (by_kind["automatic_pass"]["done"], by_kind["automatic_pass"]["total"]) == (0, 1)
    assert by_kind["automatic_pass"]["title"].startswith("pre-fill of stage 2")
    assert by_kind["import"]["detail"] == "1 imported, 0 duplicates skipped, 0 rejected"
    assert by_kind["import"]["active"] is False
    assert by_kind["export"]["title"] == "COCO instances JSON export (stage=1)"
    assert by_kind["export"]["download_url"] is None


def test_every_active_job_is_cancelled_through_its_cancel_url(
    client_for, admin_user, dataset, busy
):
    client = client_for(admin_user)
    for job in client.get(jobs_url(dataset)).json():
        if job["active"]:
            answer = client.post(job["cancel_url"])
            assert answer.status_code == 200, (job["kind"], answer.content)
    for kind, job in busy.items():
        job.refresh_from_db()
        assert job.status == ("done" if kind == "import" else "cancelled"), kind
    assert not any(job["active"] for job in client.get(jobs_url(dataset)).json())


def test_a_finished_export_links_its_download(client_for, dataset_admin, dataset, busy):
    Export.objects.filter(pk=busy["export"].pk).update(
        status="done", progress_done=4, progress_total=4, report={"masks": 1234}
    )
    [export] = [
        j for j in client_for(dataset_admin).get(jobs_url(dataset)).json() if j["kind"] == "export"
    ]
    assert export["download_url"] == f"/api/exports/{busy['export'].pk}/download/"
    assert (export["done"], export["total"], export["detail"]) == (4, 4, "1,234 masks")


@pytest.mark.parametrize(
    ("who", "status"), [(None, (401, 403)), ("annotator", (403,)), ("outsider", (404,))]
)
def test_only_the_dataset_admins_see_its_jobs(
    who, status, request, client_for, dataset, busy, other_dataset
):
    user = request.getfixturevalue(who) if who else None
    assert client_for(user).get(jobs_url(dataset)).status_code in status
