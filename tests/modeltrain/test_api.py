"""The retraining API: who may read and change what, and the answers."""

from __future__ import annotations

import pytest

from modeltrain.models import TrainingRound
from registry.active import get_active_version
from tests import factories

FAST = {"iterations": 1, "masks_per_image": 1, "steps": 1}


@pytest.fixture
def child(tiny_model):
    """A second version trained from the active one (same file, so it loads)."""
    return factories.child_version(tiny_model, round=1, metrics={"heldout": {"noc90": 3.0}})


@pytest.mark.django_db
def test_anonymous_users_get_nothing(anon_client, child, masked_dataset):
    for url in ("/api/model-versions/", "/api/training-rounds/"):
        assert anon_client.get(url).status_code in (401, 403)
    assert anon_client.post(f"/api/model-versions/{child.pk}/promote/").status_code in (401, 403)
    assert anon_client.post(
        "/api/training-rounds/", {"dataset": masked_dataset.pk}
    ).status_code in (
        401,
        403,
    )


@pytest.mark.django_db
def test_annotators_read_versions_but_change_nothing(
    annotator_client, child, tiny_model, masked_dataset
):
    listed = annotator_client.get("/api/model-versions/").json()["results"]
    assert {v["name"] for v in listed} == {"child", tiny_model.name}
    assert annotator_client.get(f"/api/model-versions/{child.pk}/").json()["metrics"] == {
        "heldout": {"noc90": 3.0}
    }

    answer = annotator_client.post(f"/api/model-versions/{child.pk}/promote/")
    assert answer.status_code == 403 and "staff" in answer.json()["detail"]
    assert annotator_client.post("/api/model-versions/rollback/").status_code == 403
    launch = annotator_client.post("/api/training-rounds/", {"dataset": masked_dataset.pk})
    assert launch.status_code == 403
    assert annotator_client.get("/api/training-rounds/").json()["results"] == []
    assert get_active_version() == tiny_model


@pytest.mark.django_db
def test_staff_promote_and_roll_back(admin_client, child, tiny_model):
    promoted = admin_client.post(f"/api/model-versions/{child.pk}/promote/")
    assert promoted.status_code == 200 and promoted.json()["is_active"] is True
    assert admin_client.get("/api/model/").json()["id"] == child.pk

    back = admin_client.post("/api/model-versions/rollback/")
    assert back.status_code == 200 and back.json()["id"] == tiny_model.pk
    assert get_active_version() == tiny_model
    again = admin_client.post("/api/model-versions/rollback/")
    assert again.status_code == 409 and "no parent" in again.json()["detail"]


@pytest.mark.django_db
def test_staff_launch_a_round_and_dataset_admins_follow_it(
    admin_client, client_for, dataset_admin, masked_dataset, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        answer = admin_client.post(
            "/api/training-rounds/",
            {"dataset": masked_dataset.pk, "promotion": "never", "options": FAST},
            format="json",
        )

    assert answer.status_code == 202
    run = TrainingRound.objects.get(pk=answer.json()["id"])
    assert run.status == "done" and run.result is not None
    seen = client_for(dataset_admin).get(f"/api/training-rounds/?dataset={masked_dataset.pk}")
    (row,) = seen.json()["results"]
    assert row["status"] == "done" and row["step"] == row["total_steps"] == 1
    assert row["result"] == run.result.pk and row["dataset_name"] == masked_dataset.name
    version = admin_client.get(f"/api/model-versions/{run.result.pk}/").json()
    assert version["training_round"] == run.pk and version["parent"] == run.parent_id
    assert (
        client_for(dataset_admin).post(f"/api/training-rounds/{run.pk}/cancel/").status_code == 403
    )
    finished = admin_client.post(f"/api/training-rounds/{run.pk}/cancel/")
    assert finished.status_code == 409 and "not queued or running" in finished.json()["detail"]


@pytest.mark.django_db
def test_bad_launches_get_a_400_naming_the_problem(admin_client, masked_dataset, other_dataset):
    def launch(**body):
        return admin_client.post("/api/training-rounds/", body, format="json")

    assert "dataset" in launch().json()
    assert launch(dataset=masked_dataset.pk, mode="sideways").status_code == 400
    bad = launch(dataset=masked_dataset.pk, options={"lr": -1})
    assert bad.status_code == 400 and "lr must be positive" in bad.json()["detail"]
    empty = launch(dataset=other_dataset.pk)
    assert empty.status_code == 400 and "no masks to train on" in empty.json()["detail"]
    assert launch(dataset=999999).status_code == 404
    assert not TrainingRound.objects.exists()


@pytest.mark.django_db
def test_staff_cancel_a_queued_round(admin_client, masked_dataset):
    from modeltrain.rounds import launch_training_round

    run = launch_training_round(masked_dataset, queue=False)

    answer = admin_client.post(f"/api/training-rounds/{run.pk}/cancel/")

    assert answer.status_code == 200 and answer.json()["status"] == "cancelled"
