"""Masks built to crash a decoder never get in, and a bad row already stored never takes a
reader down: an RLE whose run lengths wrap a 64-bit sum around to exactly h*w, and a polygon
with coordinates near 1e9, through every way in (the API, COCO and SA-1B annotation imports);
then a bad row written behind the services' back, which exports and training rounds leave out
and report, and ``check_masks`` finds and removes."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from annotation.models import Mask
from annotation.services.annotation_imports import import_annotations
from annotation.services.coco import export_coco
from annotation.services.errors import InvalidInput
from annotation.services.sa1b import export_sa1b
from engine import rle as rle_codec
from modeltrain.round_export import export_round
from tests import factories
from tests.exports.conftest import add_jpeg_image, add_mask, blob, shard_records
from tests.exports.test_coco import image_entry
from tests.exports.test_sa1b_import import make_tar, sa1b_json

pytestmark = pytest.mark.django_db


def wrapped_rle(height: int, width: int, *, compressed: bool) -> dict:
    """Runs adding up to 2**64 + h*w: a wrapping sum sees exactly h*w, a decoder writes past
    its buffer."""
    runs = [0, 2**63, 2**63, height * width]
    counts = rle_codec._runs_to_string(runs) if compressed else runs
    return {"size": [height, width], "counts": counts}


POLYGON_BOMB = [[0, 0, 1e9, 0, 1e9, 1e9, 0, 1e9]]


@pytest.mark.parametrize("compressed", [False, True])
def test_the_api_refuses_a_wrapped_rle_naming_the_problem(annotator_client, image, compressed):
    body = {"image": image.pk, "rle": wrapped_rle(48, 64, compressed=compressed)}

    response = annotator_client.post("/api/masks/", body, format="json")

    assert response.status_code == 400 and "invalid rle" in response.json()["detail"]
    assert not Mask.objects.exists()


@pytest.mark.parametrize(
    ("segmentation", "words"),
    [
        (wrapped_rle(48, 64, compressed=False), "pixels long, more than the 48x64 mask holds"),
        (wrapped_rle(48, 64, compressed=True), "impossibly long value"),
        (POLYGON_BOMB, "too far outside the 64x48 image"),
        ([[0, 0, 10, 0, 10, 10] * 40_000], "more than 100000 polygon vertices"),
        ([[0, 0, 64, 0] * 2000 + [0, 48]], "outline is"),
        ([[0, 0, 10, "0", 10, 10]], "finite numbers"),
        ([[0, 0, 10, 0, 10, float("nan")]], "finite numbers"),
    ],
)
def test_a_coco_import_skips_a_hostile_segmentation_and_keeps_the_rest(
    dataset, tmp_path, segmentation, words
):
    good, bad = factories.add_image(dataset, seed=1), factories.add_image(dataset, seed=2)
    ok = rle_codec.encode(blob(good, 20, 20, 6))
    annotations = [
        {"id": 1, "image_id": good.pk, "segmentation": ok},
        {"id": 2, "image_id": bad.pk, "segmentation": segmentation},
    ]
    path = tmp_path / "in.json"
    # allow_nan: a file may hold NaN (Python writes and reads it), the import must refuse it.
    path.write_text(
        json.dumps({"images": [image_entry(good), image_entry(bad)], "annotations": annotations})
    )

    report = import_annotations(dataset, path)

    assert [m.image_id for m in Mask.objects.all()] == [good.pk]
    assert len(report.skipped) == 1 and words in report.skipped[0]["reason"]


def test_a_deeply_nested_coco_file_is_refused_whole(dataset, tmp_path):
    path = tmp_path / "deep.json"
    path.write_text('{"images": ' + "[" * 100_000 + "]" * 100_000 + "}")

    with pytest.raises(InvalidInput, match="nested too deeply"):
        import_annotations(dataset, path)


def test_an_sa1b_import_skips_an_image_with_a_wrapped_rle(dataset, tmp_path):
    jpg = factories.image_bytes(64, 48, 1, "JPEG")
    bad = {"id": 1, "segmentation": wrapped_rle(48, 64, compressed=True)}
    huge = sa1b_json(3, 10**6, 10**6, [])
    tar = make_tar(
        tmp_path / "x.tar",
        {
            "sa_1.jpg": jpg,
            "sa_1.json": sa1b_json(1, 64, 48, [bad]),
            "sa_3.jpg": jpg,
            "sa_3.json": huge,
        },
    )

    report = import_annotations(dataset, tar)

    reasons = {item["name"]: item["reason"] for item in report.skipped}
    assert "impossibly long value" in reasons["sa_1"]
    assert "not a size this platform imports" in reasons["sa_3"]
    assert report.masks == 0 and not Mask.objects.exists()


@pytest.fixture
def poisoned(dataset):
    """A dataset with two good masks and one row as the API stored it before the fix: a
    wrapped RLE, area the whole image, a box wider than the image."""
    image = add_jpeg_image(dataset, seed=1)
    other = add_jpeg_image(dataset, seed=2)
    good = add_mask(image, blob(image, 20, 20, 7))
    add_mask(other, blob(other, 30, 20, 5))
    bad = add_mask(image, blob(image, 40, 20, 5))
    Mask.objects.filter(pk=bad.pk).update(
        rle=wrapped_rle(48, 64, compressed=True), area=48 * 64, bbox=[0.0, 0.0, 1e19, 48.0]
    )
    return {"image": image, "good": good, "bad": bad}


def test_an_sa1b_export_leaves_a_bad_stored_mask_out_and_reports_it(poisoned, dataset, tmp_path):
    manifest = export_sa1b(dataset, tmp_path / "out")

    assert manifest["masks"] == 2 and manifest["images"] == 2
    [failed] = manifest["failed_masks"]
    assert failed["mask_id"] == poisoned["bad"].pk and "impossibly long" in failed["reason"]
    records = shard_records(tmp_path / "out")
    for record in records.values():  # what is exported decodes, in pycocotools too
        for annotation in record["annotations"]:
            rle_codec.validate(annotation["segmentation"], expected_size=(48, 64))


def test_a_coco_export_leaves_a_bad_stored_mask_out_and_reports_it(poisoned, dataset, tmp_path):
    counts = export_coco(dataset, tmp_path / "out.json")

    assert counts["masks"] == 2 and [f["mask_id"] for f in counts["failed_masks"]] == [
        poisoned["bad"].pk
    ]
    doc = json.loads((tmp_path / "out.json").read_text())
    assert poisoned["bad"].pk not in {a["id"] for a in doc["annotations"]}


def test_a_mask_whose_stored_area_disagrees_with_its_rle_is_not_exported(dataset, tmp_path):
    image = add_jpeg_image(dataset, seed=1)
    mask = add_mask(image, blob(image, 20, 20, 7))
    Mask.objects.filter(pk=mask.pk).update(area=3)

    manifest = export_sa1b(dataset, tmp_path / "out")

    assert manifest["masks"] == 0 and "stored area is 3" in manifest["failed_masks"][0]["reason"]
    assert manifest["skipped"] == [
        {"image_id": image.pk, "reason": "every selected mask of the image failed its check"}
    ]


def test_a_training_round_leaves_a_bad_stored_mask_out(poisoned, dataset, tiny_model, tmp_path):
    data, _ = export_round(dataset, tmp_path / "round", tiny_model, with_embeddings=False)

    exported = {m.id for record in (*data.train, *data.heldout) for m in record.masks}
    assert poisoned["good"].pk in exported and poisoned["bad"].pk not in exported


def test_check_masks_finds_bad_rows_and_fix_removes_or_repairs_them(poisoned, dataset):
    repairable = poisoned["good"]
    Mask.objects.filter(pk=repairable.pk).update(area=1, bbox=[0, 0, 1, 1])
    out = io.StringIO()

    with pytest.raises(CommandError, match="2 stored masks need attention"):
        call_command("check_masks", stdout=out)
    assert f"invalid: mask {poisoned['bad'].pk}" in out.getvalue()
    assert f"inconsistent: mask {repairable.pk}" in out.getvalue()
    assert Mask.objects.count() == 3  # a check alone changes nothing

    call_command("check_masks", "--fix", "--dataset", dataset.name, stdout=io.StringIO())

    assert not Mask.objects.filter(pk=poisoned["bad"].pk).exists()
    repaired = Mask.objects.get(pk=repairable.pk)
    pixels = rle_codec.decode(repaired.rle)
    assert repaired.area == int(pixels.sum()) and repaired.bbox == rle_codec.bbox_xywh(repaired.rle)
    clean = io.StringIO()
    call_command("check_masks", stdout=clean)
    assert "0 invalid" in clean.getvalue() and "0 inconsistent" in clean.getvalue()
    assert np.asarray(pixels).any()
