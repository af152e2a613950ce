"""A mask's label through the mask API: set when the mask is accepted, changed afterwards under
the same version rules as any edit, always one of the mask's own dataset's labels, and a filter
of the mask list."""

from __future__ import annotations

import pytest

from annotation.models import Label, Mask
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def car(dataset):
    return Label.objects.create(dataset=dataset, name="car", color="#ff0000")


@pytest.fixture
def person(dataset):
    return Label.objects.create(dataset=dataset, name="person", color="#00ff00", position=1)


def create(client, image, **extra):
    body = {"image": image.pk, "rle": factories.rect_rle(image, 4, 6, 14, 26), **extra}
    return client.post("/api/masks/", body, format="json")


def test_a_mask_is_class_agnostic_unless_given_a_label(annotator_client, image, car):
    plain = create(annotator_client, image)
    labelled = create(annotator_client, image, label=car.pk)

    assert plain.status_code == 201 and plain.json()["label"] is None
    assert labelled.status_code == 201 and labelled.json()["label"] == car.pk
    assert Mask.objects.get(pk=labelled.json()["id"]).label == car
    listed = annotator_client.get(f"/api/masks/?image={image.pk}").json()["results"]
    assert [row["label"] for row in listed] == [None, car.pk]


def test_a_label_of_another_dataset_is_refused(annotator_client, image, other_dataset):
    foreign = Label.objects.create(dataset=other_dataset, name="dog")

    response = create(annotator_client, image, label=foreign.pk)

    assert response.status_code == 400
    assert "is not a label of dataset 'cats'" in response.json()["detail"]
    assert not Mask.objects.exists()
    assert create(annotator_client, image, label=2**63).status_code == 400
    assert create(annotator_client, image, label="car").status_code == 400
    assert not Mask.objects.exists()


def test_the_author_changes_and_removes_the_label_with_the_version(
    annotator_client, image, car, person
):
    mask = create(annotator_client, image, label=car.pk).json()
    url = f"/api/masks/{mask['id']}/"

    changed = annotator_client.patch(url, {"version": 1, "label": person.pk}, format="json")
    assert changed.status_code == 200
    assert changed.json()["label"] == person.pk and changed.json()["version"] == 2
    assert changed.json()["area"] == mask["area"]  # the pixels are left alone

    stale = annotator_client.patch(url, {"version": 1, "label": car.pk}, format="json")
    assert stale.status_code == 409 and Mask.objects.get().label == person

    cleared = annotator_client.patch(url, {"label": None}, format="json", HTTP_IF_MATCH='"2"')
    assert cleared.status_code == 200 and cleared.json()["label"] is None
    unversioned = annotator_client.patch(url, {"label": car.pk}, format="json")
    assert unversioned.status_code == 428 and Mask.objects.get().label is None


def test_a_label_change_to_another_dataset_s_label_is_refused(
    annotator_client, image, car, other_dataset
):
    mask = create(annotator_client, image, label=car.pk).json()
    foreign = Label.objects.create(dataset=other_dataset, name="dog")

    response = annotator_client.patch(
        f"/api/masks/{mask['id']}/", {"version": 1, "label": foreign.pk}, format="json"
    )

    assert response.status_code == 400
    stored = Mask.objects.get()
    assert stored.label == car and stored.version == 1


def test_only_editors_relabel_a_mask(client_for, annotator, image, car, dataset):
    other = factories.make_user("bob")
    dataset.memberships.create(user=other, role="annotator")
    mask = factories.add_mask(image, author=annotator)

    response = client_for(other).patch(
        f"/api/masks/{mask.pk}/", {"version": 1, "label": car.pk}, format="json"
    )

    assert response.status_code == 403 and Mask.objects.get().label is None


def test_the_mask_list_filters_by_label_and_by_no_label(annotator_client, image, car, person):
    with_car = factories.add_mask(image, label=car)
    with_person = factories.add_mask(image, label=person)
    without = factories.add_mask(image)

    def ids(query):
        response = annotator_client.get(f"/api/masks/?image={image.pk}&{query}")
        assert response.status_code == 200, response.json()
        return [row["id"] for row in response.json()["results"]]

    assert ids(f"label={car.pk}") == [with_car.pk]
    assert ids(f"label={person.pk}") == [with_person.pk]
    assert ids("label=none") == [without.pk]
    assert ids("label=") == [with_car.pk, with_person.pk, without.pk]
    for bad in ("cars", "0", "-1", str(2**64)):
        response = annotator_client.get(f"/api/masks/?label={bad}")
        assert response.status_code == 400 and "label" in response.json()
