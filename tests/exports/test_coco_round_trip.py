"""A COCO file imported and exported again comes back the same: images, ids, categories, crowd
flags and pixels; with platform ids on request; and as results that COCOeval scores AP 1.0
against the source."""

from __future__ import annotations

import contextlib
import io
import json

import pytest
from pycocotools.cocoeval import COCOeval

from annotation.models import Image, Label, Mask
from annotation.services.annotation_imports import import_annotations
from annotation.services.coco import CocoOptions, export_coco
from tests import factories
from tests.exports import coco_source
from tests.exports.conftest import add_mask, blob

pytestmark = pytest.mark.django_db


@pytest.fixture
def imported(dataset, tmp_path):
    coco_source.add_source_images(dataset)
    source = coco_source.write(tmp_path / "source.json", coco_source.source_document())
    report = import_annotations(dataset, source)
    assert report.skipped == [] and report.masks == 15, report.as_dict()
    return source


def test_import_then_export_gives_the_same_coco_file(dataset, imported, tmp_path):
    counts = export_coco(dataset, tmp_path / "out.json")

    assert (counts["images"], counts["masks"], counts["categories"]) == (3, 15, 4)
    coco_source.assert_same_coco(imported, tmp_path / "out.json")
    doc = json.loads((tmp_path / "out.json").read_text())
    assert "RLE" in doc["info"]["segmentation"] and doc["info"]["options"]["ids"] == "source"
    # Every label came from the file: no "object" category for masks without one.
    assert [c["name"] for c in doc["categories"]] == ["cat", "dog", "traffic light", "unused"]


def test_the_import_keeps_labels_crowd_flags_and_ids(dataset, imported):
    document = json.loads(imported.read_text())
    labels = {label.external_id: label for label in Label.objects.filter(dataset=dataset)}
    assert {c["id"]: (c["name"], c["supercategory"]) for c in document["categories"]} == {
        i: (label.name, label.supercategory) for i, label in labels.items()
    }
    assert len({label.color for label in labels.values()}) == 4  # new labels, distinct colours
    masks = {m.external_id: m for m in Mask.objects.filter(image__dataset=dataset)}
    for annotation in document["annotations"]:
        mask = masks[annotation["id"]]
        assert mask.label == labels[annotation["category_id"]]
        assert mask.iscrowd == bool(annotation["iscrowd"])
        assert mask.image.external_id == annotation["image_id"]


def test_importing_the_file_again_adds_no_mask_and_no_label(dataset, imported):
    again = import_annotations(dataset, imported)

    assert again.masks == 0 and again.labels_created == [] and again.skipped == []
    assert [item["masks"] for item in again.already_imported] == [5, 5, 5]
    assert Mask.objects.count() == 15 and Label.objects.count() == 4


def test_platform_ids_write_the_platform_s_keys(dataset, imported, tmp_path):
    export_coco(dataset, tmp_path / "out.json", options=CocoOptions(ids="platform"))
    doc = json.loads((tmp_path / "out.json").read_text())

    assert {i["id"] for i in doc["images"]} == set(dataset.images.values_list("pk", flat=True))
    masks = Mask.objects.filter(image__dataset=dataset)
    assert {a["id"] for a in doc["annotations"]} == set(masks.values_list("pk", flat=True))
    assert {c["id"] for c in doc["categories"]} == set(dataset.labels.values_list("pk", flat=True))
    for annotation in doc["annotations"]:
        mask = masks.get(pk=annotation["id"])
        assert (annotation["image_id"], annotation["category_id"]) == (mask.image_id, mask.label_id)


def test_cocoeval_of_the_results_export_against_the_source_is_ap_1(dataset, imported, tmp_path):
    export_coco(dataset, tmp_path / "results.json", options=CocoOptions(coco_format="results"))
    results = json.loads((tmp_path / "results.json").read_text())
    assert len(results) == 15
    assert set(results[0]) == {"image_id", "category_id", "segmentation", "score", "bbox", "area"}
    assert {r["score"] for r in results} == {1.0}  # imported masks carry no predicted IoU

    truth = coco_source.load(imported)
    with contextlib.redirect_stdout(io.StringIO()):
        evaluation = COCOeval(truth, truth.loadRes(str(tmp_path / "results.json")), "segm")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    assert evaluation.params.useCats == 1
    assert evaluation.stats[0] == 1.0


def test_results_scores_are_the_predicted_iou(dataset, tmp_path):
    image = factories.add_image(dataset, seed=1)
    add_mask(image, blob(image, 20, 20, 6), "automatic", stage=3, predicted_iou=0.875)
    export_coco(dataset, tmp_path / "r.json", options=CocoOptions(coco_format="results"))
    [result] = json.loads((tmp_path / "r.json").read_text())
    assert result["score"] == 0.875 and result["image_id"] == image.pk


def test_items_without_source_ids_get_fresh_ids_that_collide_with_none(dataset, imported, tmp_path):
    made_here = factories.add_image(dataset, seed=4)
    Image.objects.filter(pk=made_here.pk).update(external_id=77)  # the same id as another image
    extra_label = Label.objects.create(dataset=dataset, name="bird", position=9)
    unlabelled = add_mask(made_here, blob(made_here, 30, 20, 8))
    labelled = add_mask(made_here, blob(made_here, 10, 10, 4), label=extra_label)
    duplicate = add_mask(made_here, blob(made_here, 50, 30, 4), external_id=1_000)
    export_coco(dataset, tmp_path / "out.json")
    doc = json.loads((tmp_path / "out.json").read_text())

    source = json.loads(imported.read_text())
    # The source's ids are kept, a repeated one by its earlier holder (lower key); the others
    # get their key plus the highest source id, so none collides.
    top_image = max(i["id"] for i in source["images"])
    top_annotation = max(a["id"] for a in source["annotations"])
    assert [i["id"] for i in doc["images"]] == [
        *(i["id"] for i in source["images"]),
        made_here.pk + top_image,
    ]
    ours = {a["id"]: a for a in doc["annotations"] if a["image_id"] == made_here.pk + top_image}
    assert set(ours) == {m.pk + top_annotation for m in (unlabelled, labelled, duplicate)}
    assert {a["id"] for a in doc["annotations"]} - set(ours) == {
        a["id"] for a in source["annotations"]
    }
    # The new label gets the next category id; masks without a label one category "object".
    assert doc["categories"][-2:] == [
        {"id": 1_000_004, "name": "bird", "supercategory": ""},
        {"id": 1_000_005, "name": "object", "supercategory": "object"},
    ]
    categories = {a["id"]: a["category_id"] for a in ours.values()}
    assert categories == {
        unlabelled.pk + top_annotation: 1_000_005,
        labelled.pk + top_annotation: 1_000_004,
        duplicate.pk + top_annotation: 1_000_005,
    }
