"""A COCO export read by Datumaro's ``coco_instances`` importer, a reader nobody here wrote:
the same images, every mask pixel-identical to what the database holds, each with its label (the
dataset's label set as Datumaro's label categories, unlabelled masks under "object") and its
crowd flag."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import datumaro as dm
import numpy as np
import pytest
from django.conf import settings

from annotation.models import Label
from annotation.services.coco import export_coco
from engine import rle as rle_codec
from tests import factories
from tests.exports.conftest import add_mask, blob

pytestmark = pytest.mark.django_db


@pytest.fixture
def labelled(dataset):
    """Three images; masks labelled cat / dog, one unlabelled, one a crowd region, one with a
    hole; a label without masks (it is still a category)."""
    cat = Label.objects.create(dataset=dataset, name="cat", color="#d62728", external_id=17)
    dog = Label.objects.create(dataset=dataset, name="dog", color="#1f77b4", position=1)
    Label.objects.create(dataset=dataset, name="bird", color="#2ca02c", position=2)
    images = [factories.add_image(dataset, width=64, height=48, seed=s) for s in (1, 2, 3)]
    for n, image in enumerate(images):
        add_mask(image, blob(image, 20, 20, 8), label=cat)
        add_mask(image, blob(image, 40 + n, 24, 9) & ~blob(image, 40 + n, 24, 3), label=dog)
        add_mask(image, blob(image, 10, 40, 6), "automatic", stage=3)
    add_mask(images[1], blob(images[1], 50, 10, 12), label=dog, iscrowd=True)
    return images


def test_datumaro_reads_every_mask_and_label_of_a_coco_export(dataset, labelled, tmp_path):
    root = tmp_path / "coco"
    instances = root / "annotations" / "instances_default.json"
    export_coco(dataset, instances)
    # COCO's layout: the images beside the annotations, under the names the file gives them.
    (root / "images" / "default").mkdir(parents=True)
    stored = {image.pk: Path(settings.MEDIA_ROOT) / image.file for image in labelled}
    for entry in json.loads(instances.read_text())["images"]:
        shutil.copy(stored[entry["id"]], root / "images" / "default" / entry["file_name"])
    assert dm.Environment().detect_dataset(str(root)) == ["coco_instances"]
    read = dm.Dataset.import_from(str(root), "coco_instances")

    names = [c.name for c in read.categories()[dm.AnnotationType.label]]
    assert sorted(names) == ["bird", "cat", "dog", "object"]
    assert len(read) == len(labelled)
    by_name = {image.original_name.rsplit(".", 1)[0]: image for image in labelled}
    for item in read:
        image = by_name[item.id]
        assert item.media.size == (image.height, image.width)
        masks = [a for a in item.annotations if isinstance(a, dm.Mask)]
        held = list(image.masks.order_by("pk"))
        assert len(masks) == len(held)
        # Annotation ids are the platform's (none came from a source file).
        got = {a.id: a for a in masks}
        for mask in held:
            annotation = got[mask.pk]
            label = names[annotation.label]
            assert label == (mask.label.name if mask.label else "object")
            assert annotation.attributes.get("is_crowd", False) == mask.iscrowd
            assert np.array_equal(annotation.image.astype(bool), rle_codec.decode(mask.rle))
