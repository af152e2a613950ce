"""The label set's service functions: defaults of a new label, what a change may touch, and a
mask's label kept to its own dataset's, left alone by an edit that does not name it."""

from __future__ import annotations

import pytest

from annotation.models import Label, Mask
from annotation.services import labels
from annotation.services.errors import Conflict, InvalidInput
from annotation.services.masks import accept_mask, update_mask
from tests import factories

pytestmark = pytest.mark.django_db


def test_new_labels_go_last_with_the_palette_in_turn(dataset):
    made = [labels.create_label(dataset, name=f"c{i}") for i in range(12)]

    assert [label.position for label in made] == list(range(12))
    colours = [label.color for label in made]
    assert colours[:10] == list(labels.DEFAULT_COLORS) and colours[10:] == colours[:2]
    assert list(labels.dataset_labels(dataset)) == made


def test_a_change_names_only_a_label_s_own_fields(dataset):
    label = labels.create_label(dataset, name="car")
    labels.create_label(dataset, name="bus")

    with pytest.raises(InvalidInput, match="no field 'dataset'"):
        labels.update_label(label, dataset=None)
    with pytest.raises(Conflict):
        labels.update_label(label, name=" bus ")
    with pytest.raises(InvalidInput, match="#rrggbb"):
        labels.update_label(label, color="#12345g")
    label.refresh_from_db()
    assert (label.name, label.color) == ("car", labels.DEFAULT_COLORS[0])


def test_a_mask_takes_only_its_dataset_s_labels_and_keeps_its_label_through_edits(
    image, annotator, other_dataset
):
    car = labels.create_label(image.dataset, name="car")
    dog = labels.create_label(other_dataset, name="dog")
    rle = factories.rect_rle(image, 2, 2, 12, 12)

    with pytest.raises(InvalidInput, match="not a label of dataset"):
        accept_mask(image, annotator, rle=rle, source="manual", label=dog.pk)
    assert not Mask.objects.exists()

    mask, _ = accept_mask(image, annotator, rle=rle, source="manual", label=car.pk)
    moved = update_mask(
        mask, annotator, expected_version=1, rle=factories.rect_rle(image, 0, 0, 5, 5)
    )
    assert moved.label == car and moved.area == 25
    cleared = update_mask(moved, annotator, expected_version=2, label=None)
    assert cleared.label is None and cleared.version == 3


def test_deleting_a_label_counts_the_masks_it_leaves_unlabelled(image):
    car = labels.create_label(image.dataset, name="car")
    for _ in range(3):
        factories.add_mask(image, label=car)

    assert labels.delete_label(car) == 3
    assert not Label.objects.exists()
    assert list(Mask.objects.values_list("label", "version")) == [(None, 2)] * 3
