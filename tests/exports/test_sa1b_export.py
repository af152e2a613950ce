"""The SA-1B export's layout, field by field, and its pixels."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image as PILImage
from pycocotools import mask as mask_utils

from annotation.services.export_format import ExportFilters
from annotation.services.sa1b import export_sa1b
from annotation.services.storage import image_path
from engine import rle as rle_codec
from registry.active import get_active_version
from tests import factories
from tests.exports.conftest import add_jpeg_image, add_mask, blob, read_shard, shard_records

pytestmark = pytest.mark.django_db


@pytest.fixture
def engine_dataset(dataset):
    """Image 1 (PNG): a manual mask with clicks, a model_assisted one with none, an automatic
    one with its scores, point and crop. Image 2 (JPEG): one manual mask. Image 3: no mask."""
    png = factories.add_image(dataset, seed=1)
    jpeg = add_jpeg_image(dataset, seed=2)
    factories.add_image(dataset, seed=3)
    version = get_active_version()
    add_mask(
        png,
        blob(png, 20, 20, 8),
        "manual",
        prompt={"points": [[5.0, 5.0], [20.0, 21.0], [22.0, 19.0]], "labels": [0, 1, 1]},
    )
    add_mask(png, blob(png, 50, 30, 6), "model_assisted", predicted_iou=0.4)
    add_mask(
        png,
        blob(png, 40, 10, 5),
        "automatic",
        stage=3,
        model_version=version,
        predicted_iou=0.91,
        stability_score=0.97,
        point_coords=[[40.0, 10.0]],
        crop_box=[0.0, 0.0, 32.0, 24.0],
    )
    add_mask(jpeg, blob(jpeg, 10, 40, 4), "manual")
    return png, jpeg


def test_one_shard_json_has_every_field_in_sa1b_format(engine_dataset, tmp_path):
    png, _ = engine_dataset
    manifest = export_sa1b(png.dataset, tmp_path / "out", shard_size=1)

    members = read_shard(tmp_path / "out" / "sa_000000.tar")
    assert list(members) == [f"sa_{png.pk}.jpg", f"sa_{png.pk}.json"]
    record = json.loads(members[f"sa_{png.pk}.json"])
    assert set(record) == {"image", "annotations"}
    assert record["image"] == {
        "image_id": png.pk,
        "width": 64,
        "height": 48,
        "file_name": f"sa_{png.pk}.jpg",
    }
    masks = list(png.masks.order_by("pk"))
    assert [a["id"] for a in record["annotations"]] == [m.pk for m in masks]
    keys = {"id", "segmentation", "bbox", "area", "predicted_iou", "stability_score"}
    keys |= {"crop_box", "point_coords"}
    for annotation, mask in zip(record["annotations"], masks, strict=True):
        assert set(annotation) == keys
        assert annotation["segmentation"] == {"size": [48, 64], "counts": mask.rle["counts"]}
        assert isinstance(annotation["segmentation"]["counts"], str)
        assert annotation["bbox"] == mask.bbox and len(annotation["bbox"]) == 4
        assert annotation["area"] == mask.area
    manual, assisted, automatic = record["annotations"]
    # People's masks: scores 1.0, the whole image as crop box.
    for human in (manual, assisted):
        assert (human["predicted_iou"], human["stability_score"]) == (1.0, 1.0)
        assert human["crop_box"] == [0.0, 0.0, 64.0, 48.0]
    assert manual["point_coords"] == [[20.0, 21.0]]  # the first positive click
    assert assisted["point_coords"] == [[50.5, 30.5]]  # no prompt: the disc's centre pixel
    assert automatic["predicted_iou"] == 0.91 and automatic["stability_score"] == 0.97
    assert automatic["point_coords"] == [[40.0, 10.0]]
    assert automatic["crop_box"] == [0.0, 0.0, 32.0, 24.0]
    assert [s["file"] for s in manifest["shards"]] == ["sa_000000.tar", "sa_000001.tar"]


def test_every_exported_mask_decodes_to_the_stored_pixels(engine_dataset, tmp_path):
    png, jpeg = engine_dataset
    export_sa1b(png.dataset, tmp_path / "out")

    records = shard_records(tmp_path / "out")
    assert set(records) == {png.pk, jpeg.pk}  # the image without masks is left out
    for image in (png, jpeg):
        stored = [rle_codec.decode(m.rle) for m in image.masks.order_by("pk")]
        exported = [
            mask_utils.decode(a["segmentation"]).astype(bool)
            for a in records[image.pk]["annotations"]
        ]
        assert len(exported) == len(stored)
        for got, want in zip(exported, stored, strict=True):
            assert got.shape == (image.height, image.width)
            assert np.array_equal(got, want)


def test_jpeg_is_copied_and_other_formats_are_reencoded(engine_dataset, tmp_path):
    png, jpeg = engine_dataset
    export_sa1b(png.dataset, tmp_path / "out")

    members = read_shard(tmp_path / "out" / "sa_000000.tar")
    assert members[f"sa_{jpeg.pk}.jpg"] == image_path(jpeg).read_bytes()
    reencoded = PILImage.open(io.BytesIO(members[f"sa_{png.pk}.jpg"]))
    assert reencoded.format == "JPEG" and reencoded.size == (64, 48)
    original = np.asarray(PILImage.open(image_path(png)).convert("RGB"), dtype=float)
    assert np.abs(np.asarray(reencoded, dtype=float) - original).mean() < 3  # quality 95


def test_shards_manifest_and_id_list(dataset, tmp_path):
    images = [factories.add_image(dataset, seed=s) for s in range(5)]
    for image in images:
        add_mask(image, blob(image, 30, 20, 5))
    manifest = export_sa1b(dataset, tmp_path / "out", shard_size=2)

    out = tmp_path / "out"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == [
        "meta",
        "meta/manifest.json",
        "meta/sa_images_ids.txt",
        "sa_000000.tar",
        "sa_000001.tar",
        "sa_000002.tar",
    ]
    assert json.loads((out / "meta" / "manifest.json").read_text()) == manifest
    assert manifest["files"] == [
        "meta/manifest.json",
        "meta/sa_images_ids.txt",
        "sa_000000.tar",
        "sa_000001.tar",
        "sa_000002.tar",
    ]
    assert [s["images"] for s in manifest["shards"]] == [2, 2, 1]
    assert manifest["images"] == 5 and manifest["masks"] == 5
    ids = [
        line.split("\t") for line in (out / "meta" / "sa_images_ids.txt").read_text().splitlines()
    ]
    assert ids == [[str(im.pk), f"sa_00000{i // 2}.tar"] for i, im in enumerate(images)]
    for shard in manifest["shards"]:
        assert shard["bytes"] == (out / shard["file"]).stat().st_size
        names = read_shard(out / shard["file"])
        assert f"sa_{shard['first_image_id']}.json" in names
        assert f"sa_{shard['last_image_id']}.json" in names


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"stage": 3}, ["automatic"]),
        ({"source": "model_assisted"}, ["assisted"]),
        ({"min_predicted_iou": 0.95}, ["manual", "assisted", "jpeg"]),  # people's are 1.0
        ({"min_stability_score": 0.9}, ["manual", "assisted", "automatic", "jpeg"]),
        ({"min_stability_score": 0.98}, ["manual", "assisted", "jpeg"]),
    ],
)
def test_filters_select_masks(engine_dataset, tmp_path, filters, expected):
    png, jpeg = engine_dataset
    names = dict(zip(["manual", "assisted", "automatic"], png.masks.order_by("pk"), strict=True))
    names["jpeg"] = jpeg.masks.get()
    export_sa1b(png.dataset, tmp_path / "out", filters=ExportFilters(**filters))

    exported = {a["id"] for r in shard_records(tmp_path / "out").values() for a in r["annotations"]}
    assert exported == {names[name].pk for name in expected}


def test_model_version_filter(engine_dataset, tmp_path):
    png, _ = engine_dataset
    version = get_active_version()
    export_sa1b(png.dataset, tmp_path / "out", filters=ExportFilters(model_version=version.pk))

    records = shard_records(tmp_path / "out")
    assert list(records) == [png.pk]
    assert [a["predicted_iou"] for a in records[png.pk]["annotations"]] == [0.91]


def test_missing_image_file_is_reported_and_the_rest_exported(engine_dataset, tmp_path):
    png, jpeg = engine_dataset
    image_path(jpeg).unlink()
    manifest = export_sa1b(png.dataset, tmp_path / "out")

    assert manifest["skipped"] == [
        {"image_id": jpeg.pk, "reason": "the image file is missing from the server's storage"}
    ]
    assert list(shard_records(tmp_path / "out")) == [png.pk]
