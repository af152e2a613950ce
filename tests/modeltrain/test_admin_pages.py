"""The admin pages: launching a round from "Add training round", following it, promoting and
rolling back versions with the list actions."""

from __future__ import annotations

import pytest

from modeltrain.models import TrainingRound
from registry.active import get_active_version
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.com"))
    return client


def test_add_training_round_launches_one(
    staff_client, masked_dataset, tiny_model, django_capture_on_commit_callbacks
):
    assert staff_client.get("/admin/modeltrain/traininground/add/").status_code == 200
    form = {"dataset": masked_dataset.pk, "mode": "decoder", "steps": 1, "promotion": "never"}

    with django_capture_on_commit_callbacks(execute=True):
        answer = staff_client.post("/admin/modeltrain/traininground/add/", form)

    assert answer.status_code == 302
    run = TrainingRound.objects.get()
    assert run.status == "done" and run.config["steps"] == 1 and run.promotion == "never"
    page = staff_client.get("/admin/modeltrain/traininground/").content.decode()
    assert masked_dataset.name in page and "done" in page
    assert staff_client.get(f"/admin/modeltrain/traininground/{run.pk}/change/").status_code == 200


def test_add_form_shows_why_a_round_cannot_start(staff_client, other_dataset, tiny_model):
    answer = staff_client.post(
        "/admin/modeltrain/traininground/add/",
        {"dataset": other_dataset.pk, "mode": "auto", "promotion": "auto"},
    )

    assert answer.status_code == 200
    assert "has no masks to train on" in answer.content.decode()
    assert not TrainingRound.objects.exists()


def test_promote_and_roll_back_actions(staff_client, tiny_model):
    child = factories.child_version(
        tiny_model, metrics={"heldout": {"noc90": 4.5, "miou_1click_top": 0.61}}
    )
    url = "/admin/registry/modelversion/"
    page = staff_client.get(url).content.decode()
    assert "4.5" in page and "0.61" in page

    staff_client.post(url, {"action": "promote", "_selected_action": [child.pk]})
    assert get_active_version() == child
    staff_client.post(url, {"action": "rollback", "_selected_action": [child.pk]})
    assert get_active_version() == tiny_model
    answer = staff_client.post(
        url, {"action": "promote", "_selected_action": [child.pk, tiny_model.pk]}, follow=True
    )
    assert "exactly one version" in answer.content.decode()


def test_the_steps_help_shows_the_default_number(staff_client, settings, tiny_model):
    settings.TRAINING_STEPS = 417
    page = staff_client.get("/admin/modeltrain/traininground/add/").content.decode()
    assert "leave empty for 417 (the TRAINING_STEPS setting)" in page
