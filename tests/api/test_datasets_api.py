"""Datasets and members through the API."""

from __future__ import annotations

import pytest

from annotation.models import DatasetMembership
from tests import factories

pytestmark = pytest.mark.django_db


def test_annotators_list_only_their_datasets(outsider_client, dataset, other_dataset):
    body = outsider_client.get("/api/datasets/").json()

    assert [d["name"] for d in body["results"]] == ["dogs"]
    assert body["results"][0]["my_role"] == "annotator"


def test_dataset_shows_role_and_image_count(annotator_client, dataset, image):
    body = annotator_client.get(f"/api/datasets/{dataset.pk}/").json()

    assert body["my_role"] == "annotator" and body["image_count"] == 1


def test_a_dataset_admin_may_rename_but_not_delete(client_for, dataset_admin, dataset):
    client = client_for(dataset_admin)

    assert client.patch(f"/api/datasets/{dataset.pk}/", {"name": "felines"}).status_code == 200
    response = client.delete(f"/api/datasets/{dataset.pk}/")
    assert response.status_code == 403 and "staff" in response.json()["detail"]


def test_duplicate_dataset_name_is_a_400(admin_client, dataset):
    response = admin_client.post("/api/datasets/", {"name": "cats"}, format="json")

    assert response.status_code == 400 and "name" in response.json()


def test_members_are_added_changed_and_removed(client_for, dataset_admin, dataset, outsider):
    client = client_for(dataset_admin)
    url = f"/api/datasets/{dataset.pk}/members/"

    added = client.post(url, {"username": "otto", "role": "annotator"}, format="json")
    changed = client.post(url, {"username": "otto", "role": "reviewer"}, format="json")

    assert added.status_code == changed.status_code == 201
    assert DatasetMembership.objects.get(dataset=dataset, user=outsider).role == "reviewer"
    listing = client.get(url).json()
    assert {m["username"]: m["role"] for m in listing} == {
        "annie": "annotator",
        "dana": "admin",
        "otto": "reviewer",
    }
    assert client.delete(f"{url}{outsider.pk}/").status_code == 204
    assert not DatasetMembership.objects.filter(dataset=dataset, user=outsider).exists()


def test_member_errors_say_what_was_wrong(admin_client, dataset):
    url = f"/api/datasets/{dataset.pk}/members/"
    nobody = admin_client.post(url, {"username": "ghost"}, format="json")
    bad_role = admin_client.post(url, {"username": "annie", "role": "boss"}, format="json")
    stranger = factories.make_user("stranger")
    not_member = admin_client.delete(f"{url}{stranger.pk}/")

    assert nobody.status_code == 400 and "no user named 'ghost'" in str(nobody.json())
    assert bad_role.status_code == 400 and "role" in bad_role.json()
    assert not_member.status_code == 400 and "not a member" in not_member.json()["detail"]


def test_deleting_a_dataset_removes_its_files_after_commit(
    admin_client, dataset, image, settings, django_capture_on_commit_callbacks
):
    path = settings.MEDIA_ROOT / image.file
    assert path.is_file()

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.delete(f"/api/datasets/{dataset.pk}/")

    assert response.status_code == 204 and not path.exists()


def test_a_file_shared_with_another_dataset_row_is_kept(
    admin_client, dataset, other_dataset, image, settings, django_capture_on_commit_callbacks
):
    from annotation.models import Image

    twin = Image.objects.get(pk=image.pk)
    twin.pk, twin.dataset = None, other_dataset
    twin.save()

    with django_capture_on_commit_callbacks(execute=True):
        admin_client.delete(f"/api/datasets/{dataset.pk}/")

    assert (settings.MEDIA_ROOT / image.file).is_file()
