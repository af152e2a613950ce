"""SA-1B import from tars and folders: the round trip, and each kind of bad input."""

from __future__ import annotations

import io
import json
import tarfile

import pytest
from django.core.management import CommandError, call_command

from annotation.models import Dataset, Image, Mask
from annotation.services.annotation_imports import import_annotations
from annotation.services.sa1b import export_sa1b
from engine import rle as rle_codec
from tests import factories
from tests.exports.conftest import add_jpeg_image, add_mask, blob, shard_records

pytestmark = pytest.mark.django_db


def make_tar(path, members: dict[str, bytes]):
    with tarfile.open(path, "w") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def sa1b_json(image_id, width, height, annotations) -> bytes:
    header = {"image_id": image_id, "width": width, "height": height}
    return json.dumps(
        {"image": header | {"file_name": f"sa_{image_id}.jpg"}, "annotations": annotations}
    ).encode()


def annotation(pixels, **fields):
    rle = rle_codec.encode(pixels)
    return {
        "id": 1,
        "segmentation": rle,
        "bbox": rle_codec.bbox_xywh(rle),
        "area": rle_codec.area(rle),
        "predicted_iou": 0.9,
        "stability_score": 0.95,
        "crop_box": [0, 0, 64, 48],
        "point_coords": [[3, 4]],
    } | fields


def without_ids(records: dict[int, dict]) -> list[list[dict]]:
    return [
        [{k: v for k, v in a.items() if k != "id"} for a in record["annotations"]]
        for _, record in sorted(records.items())
    ]


@pytest.fixture
def exported(dataset, tmp_path, tiny_model):
    png = factories.add_image(dataset, seed=1)
    jpeg = add_jpeg_image(dataset, seed=2)
    add_mask(png, blob(png, 20, 20, 8), prompt={"points": [[20.0, 21.0]], "labels": [1]})
    add_mask(
        png,
        blob(png, 45, 30, 5),
        "automatic",
        stage=3,
        model_version=tiny_model,
        predicted_iou=0.9,
        stability_score=0.96,
        point_coords=[[45.0, 30.0]],
        crop_box=[16.0, 12.0, 32.0, 24.0],
    )
    add_mask(jpeg, blob(jpeg, 10, 10, 6), "model_assisted")
    export_sa1b(dataset, tmp_path / "a", shard_size=1)
    return tmp_path / "a"


def test_sa1b_export_imported_into_a_fresh_dataset_exports_identical_masks(exported, tmp_path):
    fresh = Dataset.objects.create(name="fresh")
    report = import_annotations(fresh, exported)
    export_sa1b(fresh, tmp_path / "b")

    assert not report.skipped and report.masks == 3
    assert Image.objects.filter(dataset=fresh).count() == 2
    assert set(Mask.objects.filter(image__dataset=fresh).values_list("source", flat=True)) == {
        "imported"
    }
    first, second = shard_records(exported), shard_records(tmp_path / "b")
    assert without_ids(first) == without_ids(second)
    for a, b in zip(sorted(first.items()), sorted(second.items()), strict=True):
        assert {k: v for k, v in a[1]["image"].items() if k not in ("image_id", "file_name")} == {
            k: v for k, v in b[1]["image"].items() if k not in ("image_id", "file_name")
        }


def test_a_single_tar_imports_and_a_second_import_adds_nothing(exported):
    fresh = Dataset.objects.create(name="fresh")
    first = import_annotations(fresh, exported / "sa_000000.tar")
    again = import_annotations(fresh, exported / "sa_000000.tar")

    assert first.masks == 2 and again.masks == 0
    assert again.already_imported[0]["masks"] == 2
    assert Mask.objects.filter(image__dataset=fresh).count() == 2


def test_tar_with_a_missing_json_or_image_skips_that_pair(dataset, tmp_path):
    jpg = factories.image_bytes(64, 48, 1, "JPEG")
    good = sa1b_json(1, 64, 48, [annotation(blob_pixels())])
    tar = make_tar(
        tmp_path / "x.tar",
        {
            "sa_1.jpg": jpg,
            "sa_1.json": good,
            "sa_2.jpg": factories.image_bytes(64, 48, 2, "JPEG"),
            "sa_3.json": good,
            "notes.txt": b"hello",
        },
    )
    report = import_annotations(dataset, tar)

    assert report.masks == 1
    assert report.skipped == [
        {"name": "notes.txt", "reason": "not an image or a JSON file"},
        {"name": "sa_2", "reason": "the image has no JSON file"},
        {"name": "sa_3", "reason": "the JSON file has no image"},
    ]
    assert Image.objects.filter(dataset=dataset).count() == 1  # sa_2's image was not imported


def blob_pixels():
    import numpy as np

    pixels = np.zeros((48, 64), bool)
    pixels[10:20, 10:30] = True
    return pixels


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (b"{not json", "not an SA-1B JSON file: JSONDecodeError"),
        (json.dumps({"image": {}}).encode(), "not an SA-1B JSON file: KeyError"),
        (
            sa1b_json(
                1,
                64,
                48,
                [
                    annotation(blob_pixels()),
                    {"id": 2, "segmentation": rle_codec.encode(blob_pixels()[:40])},
                ],
            ),
            "annotation 2: RLE size [40, 64] does not match the expected size [48, 64]",
        ),
        (
            sa1b_json(1, 64, 48, [annotation(blob_pixels(), predicted_iou="high")]),
            "annotation 1: predicted_iou must be a number, got 'high'",
        ),
        (
            sa1b_json(1, 32, 48, [annotation(blob_pixels()[:, :32])]),
            "the JSON says 32x48, the image is stored as 64x48",
        ),
    ],
)
def test_bad_json_leaves_the_image_and_its_masks_out(dataset, tmp_path, record, reason):
    tar = make_tar(
        tmp_path / "x.tar",
        {"sa_1.jpg": factories.image_bytes(64, 48, 1, "JPEG"), "sa_1.json": record},
    )
    report = import_annotations(dataset, tar)

    assert len(report.skipped) == 1 and report.skipped[0]["name"] == "sa_1"
    assert report.skipped[0]["reason"].startswith(reason), report.skipped
    assert not Image.objects.exists() and not Mask.objects.exists()
    assert not list((tmp_path / "media").rglob("*.jpg"))  # the stored file is removed too


def test_not_a_tar_nor_json_imports_nothing(dataset, tmp_path):
    path = tmp_path / "junk.bin"
    path.write_bytes(b"\x00\x01 definitely not an archive" * 40)
    with pytest.raises(Exception, match="neither COCO JSON nor a readable SA-1B tar"):
        import_annotations(dataset, path)
    with pytest.raises(Exception, match="does not exist"):
        import_annotations(dataset, tmp_path / "nothing-here")


def test_import_annotations_command(exported, capsys):
    Dataset.objects.create(name="fresh")
    call_command("import_annotations", "fresh", str(exported))
    out = capsys.readouterr().out
    assert "fresh: 3 masks imported on 2 images, 0 images already imported, 0 skipped" in out

    with pytest.raises(CommandError, match="no dataset named 'nope' \\(add --create"):
        call_command("import_annotations", "nope", str(exported))
    assert not Dataset.objects.filter(name="nope").exists()


def test_import_annotations_command_creates_the_dataset_when_asked(exported, capsys):
    call_command("import_annotations", "new-one", str(exported), "--create")
    out = capsys.readouterr().out

    created = Dataset.objects.get(name="new-one")
    assert f"created dataset 'new-one' (id {created.pk})" in out
    assert "new-one: 3 masks imported on 2 images" in out
    assert Mask.objects.filter(image__dataset=created).count() == 3


def test_export_sa1b_command(exported, tmp_path, capsys):
    call_command(
        "export_sa1b",
        "cats",
        str(tmp_path / "c"),
        "--source",
        "automatic",
        "--min-iou",
        "0.5",
        "--shard-size",
        "5",
    )
    assert "cats: 1 images, 1 masks in 1 shards" in capsys.readouterr().out
    with pytest.raises(CommandError, match="source must be one of"):
        call_command("export_sa1b", "cats", str(tmp_path / "d"), "--source", "alien")
    assert not (tmp_path / "d").exists()


def test_a_folder_of_loose_sa1b_files_imports(exported, tmp_path):
    folder = tmp_path / "loose" / "part1"
    folder.mkdir(parents=True)
    with tarfile.open(exported / "sa_000000.tar") as archive:
        for member in archive.getmembers():
            (folder / member.name).write_bytes(archive.extractfile(member).read())
    fresh = Dataset.objects.create(name="fresh")
    report = import_annotations(fresh, tmp_path / "loose")

    assert not report.skipped and report.masks == 2
    [entry] = report.imported
    assert entry["name"].startswith("part1/sa_")
    assert Image.objects.get(dataset=fresh).original_name == entry["name"] + ".jpg"


@pytest.mark.parametrize("layout", ["meta folder", "beside the shards (earlier exports)"])
def test_an_export_extracted_in_place_imports_without_its_metadata(exported, layout):
    for shard in sorted(exported.glob("sa_*.tar")):
        with tarfile.open(shard) as archive:
            archive.extractall(exported, filter="data")
    if layout != "meta folder":
        for name in ("manifest.json", "sa_images_ids.txt"):
            (exported / "meta" / name).rename(exported / name)
    fresh = Dataset.objects.create(name="fresh")
    report = import_annotations(fresh, exported)

    # The metadata is neither an image's JSON nor an orphan; loose files and the tars holding
    # the same masks import once.
    assert report.skipped == []
    assert report.masks == 3 and Mask.objects.filter(image__dataset=fresh).count() == 3
