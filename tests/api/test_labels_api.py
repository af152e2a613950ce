"""A dataset's label set through the API: members read it, its admins change it, names and
colours are checked, and deleting a label keeps its masks, unlabelled, at a new version."""

from __future__ import annotations

import pytest

from annotation.models import Label, Mask, Role
from tests import factories

pytestmark = pytest.mark.django_db


def labels_url(dataset, label=None):
    base = f"/api/datasets/{dataset.pk}/labels/"
    return base if label is None else f"{base}{label.pk}/"


@pytest.fixture
def dana_client(client_for, dataset_admin):
    return client_for(dataset_admin)


@pytest.fixture
def car(dataset):
    return Label.objects.create(dataset=dataset, name="car", color="#ff0000", position=0)


def test_members_list_the_labels_in_picker_order(annotator_client, dataset, car):
    Label.objects.create(dataset=dataset, name="person", color="#00ff00", position=0)
    Label.objects.create(dataset=dataset, name="bike", color="#0000ff", position=1)

    response = annotator_client.get(labels_url(dataset))

    assert response.status_code == 200
    assert [row["name"] for row in response.json()] == ["car", "person", "bike"]
    assert response.json()[0] == {
        "id": car.pk,
        "dataset": dataset.pk,
        "name": "car",
        "color": "#ff0000",
        "supercategory": "",
        "position": 0,
        "external_id": None,
    }


def test_outsiders_do_not_see_a_dataset_s_labels(outsider_client, anon_client, dataset, car):
    assert outsider_client.get(labels_url(dataset)).status_code == 404
    assert outsider_client.get(labels_url(dataset, car)).status_code == 404
    added = outsider_client.post(labels_url(dataset), {"name": "x"}, format="json")
    assert added.status_code == 404
    assert anon_client.get(labels_url(dataset)).status_code in (401, 403)


def test_annotators_cannot_change_the_label_set(annotator_client, dataset, car):
    added = annotator_client.post(labels_url(dataset), {"name": "x"}, format="json")
    assert added.status_code == 403
    patched = annotator_client.patch(labels_url(dataset, car), {"name": "y"}, format="json")
    assert patched.status_code == 403
    assert annotator_client.delete(labels_url(dataset, car)).status_code == 403
    assert list(Label.objects.values_list("name", flat=True)) == ["car"]


def test_an_admin_adds_labels_last_with_palette_colours(dana_client, dataset, car):
    response = dana_client.post(labels_url(dataset), {"name": " truck "}, format="json")

    assert response.status_code == 201, response.json()
    made = response.json()
    assert made["name"] == "truck" and made["position"] == 1
    assert made["color"].startswith("#") and len(made["color"]) == 7
    custom = dana_client.post(
        labels_url(dataset), {"name": "bus", "color": "#ABCDEF", "position": 7}, format="json"
    ).json()
    assert custom["color"] == "#abcdef" and custom["position"] == 7
    assert Label.objects.filter(dataset=dataset).count() == 3


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "car\u202e"}, "name"),
        ({"name": "a\x00b"}, "name"),
        ({"name": "ok", "color": "red"}, "color"),
        ({"name": "ok", "color": "#12345"}, "color"),
        ({"name": "ok", "color": "#1234567"}, "color"),
        ({"name": "ok", "position": -1}, "position"),
        ({"name": "ok", "position": 2**31}, "position"),
        ({}, "name"),
    ],
)
def test_bad_names_colours_and_positions_are_400s_naming_the_field(
    dana_client, dataset, payload, field
):
    response = dana_client.post(labels_url(dataset), payload, format="json")

    assert response.status_code == 400
    assert field in response.json() and response.json()["detail"]
    assert not Label.objects.exists()


def test_a_name_the_dataset_has_is_a_409_and_other_datasets_may_reuse_it(
    dana_client, client_for, dataset, car, outsider
):
    taken = dana_client.post(labels_url(dataset), {"name": "car"}, format="json")
    assert taken.status_code == 409 and "already has a label named 'car'" in taken.json()["detail"]
    bike = dana_client.post(labels_url(dataset), {"name": "bike"}, format="json").json()
    renamed = dana_client.patch(
        f"/api/datasets/{dataset.pk}/labels/{bike['id']}/", {"name": "car"}, format="json"
    )
    assert renamed.status_code == 409
    assert Label.objects.get(pk=bike["id"]).name == "bike"

    other = factories.make_dataset("trucks", [(outsider, Role.ADMIN)])
    again = client_for(outsider).post(labels_url(other), {"name": "car"}, format="json")
    assert again.status_code == 201


def test_an_admin_renames_recolours_and_reorders(dana_client, dataset, car):
    response = dana_client.patch(
        labels_url(dataset, car), {"name": "automobile", "color": "#00AA00"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["name"] == "automobile" and response.json()["color"] == "#00aa00"
    moved = dana_client.patch(labels_url(dataset, car), {"position": 5}, format="json")
    assert moved.json()["position"] == 5 and moved.json()["name"] == "automobile"
    bad = dana_client.patch(labels_url(dataset, car), {"color": "#zzzzzz"}, format="json")
    assert bad.status_code == 400 and Label.objects.get(pk=car.pk).color == "#00aa00"


def test_a_label_is_found_only_under_its_own_dataset(dana_client, dataset, other_dataset):
    foreign = Label.objects.create(dataset=other_dataset, name="dog")
    assert dana_client.get(f"/api/datasets/{dataset.pk}/labels/{foreign.pk}/").status_code == 404
    assert dana_client.get(f"/api/datasets/{dataset.pk}/labels/{2**64}/").status_code == 404


def test_deleting_a_label_keeps_its_masks_unlabelled_at_a_new_version(
    dana_client, dataset, image, car
):
    labelled = factories.add_mask(image, label=car)
    unlabelled = factories.add_mask(image)

    response = dana_client.delete(labels_url(dataset, car))

    assert response.status_code == 200 and response.json() == {"unlabelled_masks": 1}
    assert not Label.objects.exists()
    labelled.refresh_from_db()
    unlabelled.refresh_from_db()
    assert labelled.label is None and labelled.version == 2
    assert unlabelled.version == 1 and Mask.objects.count() == 2
