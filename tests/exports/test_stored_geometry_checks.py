"""Stored rows are never trusted by their readers: a mask whose RLE is valid but whose box lies
outside the image, one whose RLE or box is not even the right kind of JSON, and one spelled in a
non-canonical way were all possible before every way in checked RLEs. Exports leave the first
two kinds out and list them, a training round leaves them out and lists them in its manifest,
``check_masks`` repairs or deletes them, and a non-canonical spelling goes out canonical. The
API's edit path refuses a wrapped RLE as creation does."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.db.models import JSONField, Value

from annotation.models import Mask
from annotation.services.coco import export_coco
from annotation.services.sa1b import export_sa1b
from engine import rle as rle_codec
from modeltrain.data import read_round
from modeltrain.round_export import export_round
from tests import factories
from tests.exports.conftest import add_jpeg_image, add_mask, blob, shard_records
from tests.exports.test_hostile_import_numbers import padded_runs

pytestmark = pytest.mark.django_db


@pytest.fixture
def rows(dataset):
    """One good mask and three rows written behind the services' back."""
    image = add_jpeg_image(dataset, seed=1)
    good = add_mask(image, blob(image, 20, 20, 7))
    wide = add_mask(image, blob(image, 40, 20, 5))
    Mask.objects.filter(pk=wide.pk).update(bbox=[0.0, 0.0, 1e19, 48.0])
    garbage = add_mask(image, blob(image, 10, 40, 4))
    Mask.objects.filter(pk=garbage.pk).update(rle=Value(None, JSONField()), bbox="box")
    pixels = blob(image, 50, 10, 4)
    padded = add_mask(image, pixels)
    canonical = padded.rle
    longer = {"size": [48, 64], "counts": rle_codec._runs_to_string(padded_runs(pixels))}
    Mask.objects.filter(pk=padded.pk).update(rle=longer)
    return {"good": good, "wide": wide, "garbage": garbage, "padded": padded, "canon": canonical}


def test_an_sa1b_export_leaves_out_rows_whose_box_or_json_is_wrong(rows, dataset, tmp_path):
    manifest = export_sa1b(dataset, tmp_path / "out")

    failed = {f["mask_id"]: f["reason"] for f in manifest["failed_masks"]}
    assert set(failed) == {rows["wide"].pk, rows["garbage"].pk}
    assert "the stored box is [0.0, 0.0, 1" in failed[rows["wide"].pk]  # 1e+19, as stored
    assert manifest["masks"] == 2
    [record] = shard_records(tmp_path / "out").values()
    exported = {a["id"]: a for a in record["annotations"]}
    assert exported[rows["padded"].pk]["segmentation"] == rows["canon"]


def test_a_coco_export_leaves_out_the_same_rows(rows, dataset, tmp_path):
    counts = export_coco(dataset, tmp_path / "out.json")

    assert {f["mask_id"] for f in counts["failed_masks"]} == {rows["wide"].pk, rows["garbage"].pk}
    annotations = json.loads((tmp_path / "out.json").read_text())["annotations"]
    exported = {a["id"]: a for a in annotations}
    assert set(exported) == {rows["good"].pk, rows["padded"].pk}
    assert exported[rows["padded"].pk]["segmentation"] == rows["canon"]


def test_a_training_round_lists_what_it_left_out(rows, dataset, tiny_model, tmp_path):
    Mask.objects.filter(pk=rows["wide"].pk).update(rle={"size": [48, 64], "counts": "0" * 9})

    data, _ = export_round(dataset, tmp_path / "round", tiny_model, with_embeddings=False)

    assert {m["mask_id"] for m in data.left_out} == {rows["wide"].pk, rows["garbage"].pk}
    assert read_round(tmp_path / "round").left_out == data.left_out
    kept = {m.id: m.rle for record in (*data.train, *data.heldout) for m in record.masks}
    assert kept[rows["padded"].pk] == rows["canon"]


def test_check_masks_repairs_a_box_and_a_spelling_and_deletes_unreadable_json(rows):
    out = io.StringIO()

    call_command("check_masks", "--fix", "--json", stdout=out)

    report = json.loads(out.getvalue())
    assert [r["mask_id"] for r in report["invalid"]] == [rows["garbage"].pk]
    assert {r["mask_id"] for r in report["inconsistent"]} == {rows["wide"].pk, rows["padded"].pk}
    assert not Mask.objects.filter(pk=rows["garbage"].pk).exists()
    wide = Mask.objects.get(pk=rows["wide"].pk)
    assert wide.bbox == rle_codec.bbox_xywh(wide.rle) and wide.bbox[2] <= 64
    assert Mask.objects.get(pk=rows["padded"].pk).rle == rows["canon"]


def test_editing_a_mask_to_a_wrapped_rle_is_refused(annotator_client, image):
    created = annotator_client.post(
        "/api/masks/",
        {"image": image.pk, "rle": factories.rect_rle(image, 4, 6, 14, 26)},
        format="json",
    ).json()
    wrapping = [0, 2**63, 2**63, 48 * 64]
    for counts in (wrapping, rle_codec._runs_to_string(wrapping)):
        response = annotator_client.patch(
            f"/api/masks/{created['id']}/",
            {"rle": {"size": [48, 64], "counts": counts}, "version": created["version"]},
            format="json",
        )

        assert response.status_code == 400 and "invalid rle" in response.json()["detail"]
    assert Mask.objects.get(pk=created["id"]).area == created["area"] == 200
