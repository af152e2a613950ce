"""What a COCO import refuses in ids, crowd flags and categories: the item is skipped with its
reason, the rest of the file is imported."""

from __future__ import annotations

import json

import pytest

from annotation.models import Label, Mask
from annotation.services.annotation_imports import import_annotations
from engine import rle as rle_codec
from tests import factories
from tests.exports.coco_source import disc

pytestmark = pytest.mark.django_db

INT64_MAX = 2**63 - 1


@pytest.fixture
def images(dataset):
    return [factories.add_image(dataset, seed=seed) for seed in range(1, 9)]


def entry(image, image_id):
    return {"id": image_id, "file_name": image.original_name, "width": 64, "height": 48}


def annotation(image_id, annotation_id, **fields):
    """An annotation of a small disc on a 64x48 image."""
    segmentation = rle_codec.encode(disc(48, 64, 20, 20, 5))
    return {"id": annotation_id, "image_id": image_id, "segmentation": segmentation, **fields}


def run(dataset, tmp_path, images, annotations, categories):
    path = tmp_path / "in.json"
    document = {"images": images, "annotations": annotations, "categories": categories}
    path.write_text(json.dumps(document))
    report = import_annotations(dataset, path)
    return report, {item["name"]: item["reason"] for item in report.skipped}


def test_bad_ids_skip_their_item_and_say_why(dataset, images, tmp_path):
    listed = [
        entry(images[0], 5),
        entry(images[1], "six"),  # not an integer
        entry(images[2], INT64_MAX + 1),  # beyond signed 64-bit
        entry(images[3], 8),
        entry(images[4], 9),
        entry(images[5], 10),
        entry(images[6], 5),  # listed twice
        entry(images[7], 11),
    ]
    annotations = [
        annotation(5, INT64_MAX),  # the largest id there is: fine
        annotation(8, 1.5),
        annotation(9, 20, iscrowd=2),
        annotation(10, 21, iscrowd=True),
        annotation(11, 22),
        annotation(11, 22),  # one id, two annotations
    ]
    report, reasons = run(dataset, tmp_path, listed, annotations, [])

    assert [(m.image_id, m.external_id) for m in Mask.objects.all()] == [(images[0].pk, INT64_MAX)]
    assert reasons["img-2.png"] == "image id must be an integer, got 'six'"
    assert reasons["img-3.png"] == f"image id must be within signed 64-bit, got {INT64_MAX + 1}"
    assert reasons["img-4.png"].startswith("annotation 1.5: id must be an integer, got 1.5")
    assert reasons["img-5.png"].startswith("annotation 20: iscrowd must be 0 or 1, got 2")
    assert reasons["img-6.png"].startswith("annotation 21: iscrowd must be 0 or 1, got True")
    assert reasons["img-7.png"] == "image id 5 is listed more than once"
    assert reasons["img-8.png"].startswith("annotation 22: id 22 is used by more than one")
    assert len(report.skipped) == 7


def test_bad_categories_are_skipped_and_so_are_the_images_that_need_them(dataset, images, tmp_path):
    categories = [
        {"id": 3, "name": "good", "supercategory": "thing"},
        {"id": 4, "name": "bell\x07"},
        {"id": 5, "name": "x" * 101},
        {"id": 6, "name": "   "},
        {"id": 7, "name": "ok", "supercategory": ["not", "text"]},
        {"id": -(2**63) - 1, "name": "too low"},
        {"id": 3, "name": "again"},  # id listed twice: the first one stays
        "not an object",
    ]
    listed = [entry(image, 100 + i) for i, image in enumerate(images[:4])]
    annotations = [
        annotation(100, 1, category_id=3),
        annotation(101, 2, category_id=4),
        annotation(102, 3, category_id=99),
        annotation(103, 4, category_id="3"),
    ]
    report, reasons = run(dataset, tmp_path, listed, annotations, categories)

    assert list(Label.objects.values_list("name", "external_id", "supercategory")) == [
        ("good", 3, "thing")
    ]
    assert report.labels_created == ["good"]
    assert Mask.objects.get().label.name == "good"
    assert reasons["category 'bell\\x07'"] == "name must not hold control characters"
    assert reasons[f"category '{'x' * 56}..."] == "name must be at most 100 characters, got 101"
    assert reasons["category '   '"] == "name must not be empty"
    assert reasons["category 'ok'"] == "supercategory must be text, got ['not', 'text']"
    assert reasons["category 'too low'"] == (f"id must be within signed 64-bit, got {-(2**63) - 1}")
    assert reasons["category 'again'"] == "id 3 is listed more than once"
    assert reasons["'not an object'"] == "a category is not an object"
    assert reasons["img-2.png"].startswith("annotation 2: its category 4 was skipped")
    assert reasons["img-3.png"].startswith("annotation 3: category_id 99 is not in the file's")
    assert reasons["img-4.png"].startswith("annotation 4: category_id must be an integer")


def test_categories_match_existing_labels_by_id_then_by_name(dataset, images, tmp_path):
    by_id = Label.objects.create(dataset=dataset, name="kitty", external_id=7, position=1)
    by_name = Label.objects.create(dataset=dataset, name="dog", position=2)
    categories = [
        {"id": 7, "name": "cat", "supercategory": "animal"},  # renamed here: the label wins
        {"id": 42, "name": "dog", "supercategory": "animal"},  # takes the id
        {"id": 8, "name": "bird"},  # new
    ]
    listed = [entry(images[0], 1)]
    annotations = [
        annotation(1, 1, category_id=7),
        annotation(1, 2, category_id=42),
        annotation(1, 3, category_id=8),
    ]
    report, _ = run(dataset, tmp_path, listed, annotations, categories)

    by_name.refresh_from_db()
    assert (by_name.external_id, by_name.supercategory) == (42, "animal")
    bird = Label.objects.get(name="bird")
    assert (bird.external_id, bird.position) == (8, 3) and report.labels_created == ["bird"]
    assert [m.label for m in Mask.objects.order_by("external_id")] == [by_id, by_name, bird]
