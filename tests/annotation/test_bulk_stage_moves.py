"""Moving many images between stages at once: by a filter (every image of a stage, or those of
a stage with a status) through the API, and a selection through the Image admin's actions,
with the same permission rule (a dataset's admins) and holds dropped."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from annotation.models import Image, Role, Stage
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def six(dataset, isolated_storage):
    """Six stage 1 images: three done, one held by someone, two pending."""
    images = [factories.add_image(dataset, 20, 16, seed=seed) for seed in range(6)]
    Image.objects.filter(pk__in=[i.pk for i in images[:3]]).update(status="done")
    holder = factories.make_user("holder")
    Image.objects.filter(pk=images[3].pk).update(held_by=holder)
    return images


def stage_url(dataset) -> str:
    return f"/api/datasets/{dataset.pk}/images/stage/"


def stages(dataset) -> list[tuple[int, str]]:
    return list(Image.objects.filter(dataset=dataset).order_by("pk").values_list("stage", "status"))


def test_a_filter_moves_the_done_images_of_a_stage(client_for, dataset_admin, dataset, six):
    body = {"from_stage": 1, "from_status": "done", "stage": 2}
    answer = client_for(dataset_admin).post(stage_url(dataset), body, format="json")
    assert answer.status_code == 200, answer.content
    assert answer.json() == {"updated": 3, "stage": 2, "status": "pending"}
    assert stages(dataset) == [(2, "pending")] * 3 + [(1, "pending")] * 3


def test_a_filter_without_status_moves_the_whole_stage_and_drops_holds(
    client_for, dataset_admin, dataset, six
):
    body = {"from_stage": 1, "stage": 3}
    answer = client_for(dataset_admin).post(stage_url(dataset), body, format="json")
    assert answer.json()["updated"] == 6
    assert stages(dataset) == [(3, "pending")] * 6
    assert not Image.objects.filter(held_by__isnull=False).exists()


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"stage": 2}, "either image_ids or from_stage"),
        ({"stage": 2, "from_stage": 1, "image_ids": [1]}, "either image_ids or from_stage"),
        ({"stage": 2, "from_status": "done"}, "goes with from_stage"),
        ({"stage": 2, "from_stage": 3}, "no image in stage 3"),
        ({"stage": 2, "from_stage": 1, "from_status": "skipped"}, "no skipped image in stage 1"),
        ({"stage": 2, "from_stage": 7}, "from_stage"),
    ],
)
def test_bad_moves_answer_400_and_move_nothing(
    client_for, dataset_admin, dataset, six, body, words
):
    before = stages(dataset)
    answer = client_for(dataset_admin).post(stage_url(dataset), body, format="json")
    assert answer.status_code == 400
    assert words in str(answer.json())
    assert stages(dataset) == before


def test_annotators_may_not_move_by_filter(client_for, annotator, dataset, six):
    body = {"from_stage": 1, "stage": 2}
    assert client_for(annotator).post(stage_url(dataset), body, format="json").status_code == 403
    assert {stage for stage, _ in stages(dataset)} == {1}


def test_the_image_admin_moves_a_selection(dataset, six):
    staff = get_user_model().objects.create_superuser("root", password="pw")
    client = Client()
    client.force_login(staff)
    chosen = [six[0].pk, six[4].pk]
    answer = client.post(
        "/admin/annotation/image/",
        {"action": "move_to_stage_2", "_selected_action": chosen},
        follow=True,
    )
    assert answer.status_code == 200
    assert "2 image(s) moved to stage 2 (pending)." in answer.content.decode()
    moved = Image.objects.filter(stage=Stage.SEMI_AUTOMATIC)
    assert sorted(moved.values_list("pk", flat=True)) == sorted(chosen)
    assert set(moved.values_list("status", flat=True)) == {"pending"}


def test_the_admin_action_refuses_datasets_the_staff_user_does_not_administer(
    dataset, six, dataset_admin
):
    """A staff member is every dataset's admin (access.role_in); a non-staff user cannot open
    the admin at all: the action's check is the API's, so a narrower role would be honoured."""
    factories.make_dataset("elsewhere", [(dataset_admin, Role.ANNOTATOR)])
    client = Client()
    client.force_login(dataset_admin)
    answer = client.post(
        "/admin/annotation/image/", {"action": "move_to_stage_3", "_selected_action": [six[0].pk]}
    )
    assert answer.status_code == 302 and "/admin/login/" in answer["Location"]
    assert Image.objects.get(pk=six[0].pk).stage == 1
