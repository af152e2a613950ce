"""COCO export and import: RLE out, polygons / RLE / crowd in, and the round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
from django.core.management import call_command
from pycocotools import mask as mask_utils

from annotation.models import Image, Mask
from annotation.services.annotation_imports import import_annotations
from annotation.services.coco import export_coco
from engine import rle as rle_codec
from tests import factories
from tests.exports.conftest import add_mask, blob

pytestmark = pytest.mark.django_db


def coco_file(tmp_path, images, annotations, name="in.json"):
    path = tmp_path / name
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": []}))
    return path


def image_entry(image, image_id=None, **overrides):
    entry = {"id": image_id or image.pk, "file_name": image.original_name}
    return entry | {"width": image.width, "height": image.height} | overrides


def test_export_writes_instances_with_rle_that_decode_to_the_stored_pixels(dataset, tmp_path):
    image = factories.add_image(dataset, seed=1)
    factories.add_image(dataset, seed=2)  # no masks: left out
    masks = [add_mask(image, blob(image, 20, 20, 7)), add_mask(image, blob(image, 50, 9, 3))]
    counts = export_coco(dataset, tmp_path / "out.json")

    doc = json.loads((tmp_path / "out.json").read_text())
    options = {"ids": "source", "coco_format": "instances"}
    assert counts == {
        "file": "out.json",
        "images": 1,
        "masks": 2,
        "categories": 1,
        "options": options,
        "failed_masks": [],
    }
    assert doc["categories"] == [{"id": 1, "name": "object", "supercategory": "object"}]
    assert doc["images"] == [{"id": image.pk, "file_name": "img-1.png", "width": 64, "height": 48}]
    for annotation, mask in zip(doc["annotations"], masks, strict=True):
        assert annotation["id"] == mask.pk and annotation["image_id"] == image.pk
        assert (annotation["category_id"], annotation["iscrowd"]) == (1, 0)
        assert annotation["bbox"] == mask.bbox and annotation["area"] == mask.area
        decoded = mask_utils.decode(annotation["segmentation"]).astype(bool)
        assert np.array_equal(decoded, rle_codec.decode(mask.rle))
    assert not list(tmp_path.glob(".*partial"))


def test_import_reads_polygons_rle_uncompressed_rle_and_crowd(dataset, tmp_path):
    image = factories.add_image(dataset, seed=1)
    disc = blob(image, 40, 24, 6)
    square = np.zeros((48, 64), bool)
    square[5:15, 10:30] = True
    compressed = rle_codec.encode(disc)
    fortran = np.asfortranarray(square.astype(np.uint8))
    runs = [int(v) for v in np.diff(np.flatnonzero(np.diff(np.r_[2, fortran.T.ravel(), 2])))]
    uncompressed = {"size": [48, 64], "counts": ([0] if square[0, 0] else []) + runs}
    polygon = [[2, 30, 12, 30, 12, 40, 2, 40]]
    annotations = [
        {"id": 1, "image_id": 7, "segmentation": polygon, "iscrowd": 0},
        {"id": 2, "image_id": 7, "segmentation": compressed, "iscrowd": 0},
        {"id": 3, "image_id": 7, "segmentation": uncompressed, "iscrowd": 1},
    ]
    path = coco_file(tmp_path, [image_entry(image, 7)], annotations)
    report = import_annotations(dataset, path)

    assert report.skipped == [] and report.masks == 3
    masks = list(image.masks.order_by("pk"))
    assert {m.source for m in masks} == {"imported"}
    expected_polygon = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polygon, 48, 64)))
    assert np.array_equal(rle_codec.decode(masks[0].rle), expected_polygon.astype(bool))
    assert np.array_equal(rle_codec.decode(masks[1].rle), disc)
    assert np.array_equal(rle_codec.decode(masks[2].rle), square)
    assert masks[2].bbox == [10.0, 5.0, 20.0, 10.0] and masks[2].area == 200


def test_coco_import_then_export_gives_the_same_masks(dataset, other_dataset, tmp_path):
    source = [factories.add_image(dataset, seed=s) for s in (1, 2)]
    for seed in (1, 2):  # the same files in the other dataset
        factories.add_image(other_dataset, seed=seed)
    add_mask(source[0], blob(source[0], 20, 20, 7))
    add_mask(source[0], blob(source[0], 50, 30, 5))
    add_mask(source[1], blob(source[1], 10, 10, 9))
    export_coco(dataset, tmp_path / "a.json")
    report = import_annotations(other_dataset, tmp_path / "a.json")
    export_coco(other_dataset, tmp_path / "b.json")

    assert report.masks == 3 and not report.skipped
    a, b = (json.loads((tmp_path / n).read_text()) for n in ("a.json", "b.json"))
    assert [i["file_name"] for i in a["images"]] == [i["file_name"] for i in b["images"]]
    assert [x["segmentation"] for x in a["annotations"]] == [
        x["segmentation"] for x in b["annotations"]
    ]
    # The second export writes back the first one's ids (kept as the images' external ids).
    assert {x["image_id"] for x in b["annotations"]} == {im.pk for im in source}
    assert {im.external_id for im in other_dataset.images.all()} == {im.pk for im in source}


def test_importing_the_same_file_twice_adds_nothing(dataset, tmp_path):
    image = factories.add_image(dataset, seed=1)
    segmentation = rle_codec.encode(blob(image, 20, 20, 5))
    path = coco_file(
        tmp_path,
        [image_entry(image)],
        [{"image_id": image.pk, "id": 1, "segmentation": segmentation}],
    )
    import_annotations(dataset, path)
    again = import_annotations(dataset, path)

    assert Mask.objects.count() == 1
    assert again.imported == [] and again.already_imported[0]["masks"] == 1


def test_corrupt_json_imports_nothing(dataset, tmp_path):
    factories.add_image(dataset, seed=1)
    path = tmp_path / "broken.json"
    path.write_text('{"images": [{"id": 1, "file_name": "img-1.png"')
    with pytest.raises(Exception, match="not a readable JSON file"):
        import_annotations(dataset, path)
    path.write_text('{"images": {}, "annotations": []}')
    with pytest.raises(Exception, match="'images' and 'annotations' must be lists"):
        import_annotations(dataset, path)
    assert not Mask.objects.exists()


def test_bad_annotations_skip_their_whole_image_and_say_why(dataset, tmp_path):
    good, bad, other = (factories.add_image(dataset, seed=s) for s in (1, 2, 3))
    ok = rle_codec.encode(blob(good, 20, 20, 5))
    wrong_size = rle_codec.encode(np.ones((10, 10), bool))
    images = [
        image_entry(good),
        image_entry(bad),
        image_entry(other, width=640),
        {"id": 99, "file_name": "nowhere.png", "width": 64, "height": 48},
    ]
    annotations = [
        {"id": 1, "image_id": good.pk, "segmentation": ok},
        {"id": 2, "image_id": bad.pk, "segmentation": ok},
        {"id": 3, "image_id": bad.pk, "segmentation": wrong_size},
        {"id": 4, "image_id": bad.pk, "segmentation": [[1, 2, 3]]},
        {"id": 5, "image_id": other.pk, "segmentation": ok},
        {"id": 6, "image_id": 99, "segmentation": ok},
        {"id": 7, "image_id": 12345, "segmentation": ok},
    ]
    report = import_annotations(dataset, coco_file(tmp_path, images, annotations))

    assert [m.image_id for m in Mask.objects.all()] == [good.pk]
    reasons = {item["name"]: item["reason"] for item in report.skipped}
    assert (
        "annotation 3: RLE size [10, 10] does not match the expected size [48, 64]"
        in (reasons["img-2.png"])
    )
    assert "none of this image's masks imported" in reasons["img-2.png"]
    assert reasons["img-3.png"] == f"the file says 640x48, the dataset's image {other.pk} is 64x48"
    assert reasons["nowhere.png"] == "no image named 'nowhere.png' in dataset 'cats'"
    assert reasons["image id 12345"] == "1 annotations refer to an image the file does not list"
    assert len(report.skipped) == 4


def test_bad_polygon_is_reported(dataset, tmp_path):
    image = factories.add_image(dataset, seed=1)
    annotations = [{"id": 1, "image_id": image.pk, "segmentation": [[1, 2, 3]]}]
    report = import_annotations(dataset, coco_file(tmp_path, [image_entry(image)], annotations))
    assert report.skipped[0]["reason"].startswith(
        "annotation 1: each polygon must be a list of at least 3 x, y pairs"
    )
    assert not Mask.objects.exists()


def test_export_coco_command(dataset, tmp_path):
    image = factories.add_image(dataset, seed=1)
    add_mask(image, blob(image, 20, 20, 7))
    add_mask(image, blob(image, 40, 20, 7), "automatic", stage=3)
    call_command("export_coco", "cats", str(tmp_path / "x.json"), "--stage", "3")

    doc = json.loads((tmp_path / "x.json").read_text())
    assert len(doc["annotations"]) == 1
    assert doc["info"]["filters"] == {"stage": 3}


def test_export_coco_command_writes_platform_ids_and_results(dataset, tmp_path):
    image = factories.add_image(dataset, seed=1)
    Image.objects.filter(pk=image.pk).update(external_id=4_000_000_000)
    mask = add_mask(image, blob(image, 20, 20, 7), external_id=55)
    call_command("export_coco", "cats", str(tmp_path / "a.json"))
    call_command("export_coco", "cats", str(tmp_path / "b.json"), "--ids", "platform")
    call_command("export_coco", "cats", str(tmp_path / "c.json"), "--results")

    a, b, c = (json.loads((tmp_path / f"{n}.json").read_text()) for n in "abc")
    assert (a["images"][0]["id"], a["annotations"][0]["id"]) == (4_000_000_000, 55)
    assert (b["images"][0]["id"], b["annotations"][0]["id"]) == (image.pk, mask.pk)
    assert [(r["image_id"], r["category_id"], r["score"]) for r in c] == [(4_000_000_000, 1, 1.0)]
