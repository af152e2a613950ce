"""Numbers Python's JSON reader accepts but a float cannot hold (integers of hundreds of
digits, Infinity, NaN) and shapes the schema does not expect, in COCO and SA-1B annotation
imports: each leaves its image out with a reason (or, for a file no JSON reader takes, refuses
the file), never an OverflowError or ValueError escaping the import."""

from __future__ import annotations

import json

import numpy as np
import pytest

from annotation.models import Mask
from annotation.services.annotation_imports import import_annotations
from annotation.services.errors import InvalidInput
from engine import rle as rle_codec
from tests import factories
from tests.exports.conftest import blob
from tests.exports.test_coco import image_entry
from tests.exports.test_sa1b_import import annotation, make_tar

pytestmark = pytest.mark.django_db

HUGE = "1" + "0" * 400  # an integer no float holds


def coco_text(good, bad, bad_segmentation: str) -> str:
    """A COCO file (as text, so that it can hold what json.dumps would not write) with one good
    annotation and one whose segmentation is ``bad_segmentation`` verbatim."""
    ok = json.dumps(rle_codec.encode(blob(good, 20, 20, 6)))
    images = json.dumps([image_entry(good), image_entry(bad)])
    return (
        f'{{"images": {images}, "annotations": ['
        f'{{"id": 1, "image_id": {good.pk}, "segmentation": {ok}}}, '
        f'{{"id": 2, "image_id": {bad.pk}, "segmentation": {bad_segmentation}}}]}}'
    )


@pytest.mark.parametrize(
    ("segmentation", "words"),
    [
        (f"[[0, 0, 10, 0, 10, {HUGE}]]", "finite numbers"),
        ("[[0, 0, 10, 0, 10, Infinity]]", "finite numbers"),
        ("[[0, 0, 10, 0, 10, -Infinity]]", "finite numbers"),
        ("[[0, 0, 10, 0, 10, true]]", "finite numbers"),
        ("[[0, 0, 10, 0, 10, [10]]]", "finite numbers"),
        ("[[0, 0, 10, 0, 10, null]]", "finite numbers"),
        ("[[[0, 0, 10, 0, 10, 10]]]", "at least 3 x, y pairs"),
        ("[[0, 0, 10, 0, 1e300, 10]]", "too far outside"),
        ('[{"size": [48, 64], "counts": "0"}]', "at least 3 x, y pairs"),
        (f'{{"size": [48, 64], "counts": [{HUGE}, 3072]}}', "2**1328+ pixels long"),
        (f'{{"size": [{HUGE}, 0], "counts": ""}}', "has a side over"),
        ('{"size": [48, 64], "counts": [0, 0, 3072]}', "mask is empty"),
        ('{"size": [48, 64], "counts": 12}', "compressed string or a list"),
    ],
)
def test_a_coco_import_skips_numbers_no_float_holds(dataset, tmp_path, segmentation, words):
    good, bad = factories.add_image(dataset, seed=1), factories.add_image(dataset, seed=2)
    path = tmp_path / "in.json"
    path.write_text(coco_text(good, bad, segmentation))

    report = import_annotations(dataset, path)

    assert [m.image_id for m in Mask.objects.all()] == [good.pk]
    [skipped] = report.skipped
    assert words in skipped["reason"] and len(skipped["reason"]) < 300, skipped


def test_a_coco_file_with_an_integer_of_thousands_of_digits_is_refused_whole(dataset, tmp_path):
    path = tmp_path / "in.json"
    path.write_text('{"images": [], "annotations": [' + "9" * 5000 + "]}")

    with pytest.raises(InvalidInput, match="not a readable JSON file"):
        import_annotations(dataset, path)


def test_a_coco_rle_with_empty_runs_is_stored_canonical(dataset, tmp_path):
    image = factories.add_image(dataset, seed=1)
    pixels = blob(image, 20, 20, 6)
    canonical = rle_codec.encode(pixels)
    spelled_longer = {"size": [48, 64], "counts": padded_runs(pixels)}
    path = tmp_path / "in.json"
    doc = {
        "images": [image_entry(image)],
        "annotations": [{"id": 1, "image_id": image.pk, "segmentation": spelled_longer}],
    }
    path.write_text(json.dumps(doc))

    import_annotations(dataset, path)

    [mask] = Mask.objects.all()
    assert mask.rle == canonical and mask.area == int(pixels.sum())


def padded_runs(pixels: np.ndarray) -> list[int]:
    """Run lengths of the pixels in column-major order, with an empty foreground run and an
    empty background run after the first run: the same pixels, spelled longer."""
    flat = pixels.T.reshape(-1)
    edges = [0, *(np.flatnonzero(flat[1:] != flat[:-1]) + 1).tolist(), flat.size]
    runs = [b - a for a, b in zip(edges, edges[1:], strict=False)]
    if flat[0]:
        runs.insert(0, 0)
    return [runs[0], 0, 0, *runs[1:]]


@pytest.mark.parametrize(
    ("header", "fields", "words"),
    [
        ({"height": "Infinity"}, {}, "the image's height is not an integer"),
        ({"width": HUGE}, {}, "not a size this platform imports"),
        ({"height": 48.0}, {}, "the image's height is not an integer"),
        ({}, {"predicted_iou": HUGE}, "predicted_iou must be a number"),
        ({}, {"stability_score": "NaN"}, "stability_score must be a number"),
        ({}, {"point_coords": f"[[{HUGE}, 1]]"}, "point_coords is malformed"),
        ({}, {"crop_box": "[0, 0, Infinity, 48]"}, "crop_box is malformed"),
        ({}, {"crop_box": '"0000"'}, "crop_box is malformed"),
        ({}, {"point_coords": '[["1", "2"]]'}, "point_coords is malformed"),
        ({}, {"segmentation": "[[0, 0, 1e9, 0, 1e9, 1e9, 0, 1e9]]"}, "too far outside"),
    ],
)
def test_an_sa1b_import_skips_numbers_no_float_holds(dataset, tmp_path, header, fields, words):
    jpg = factories.image_bytes(64, 48, 1, "JPEG")
    record = {
        "image": {"image_id": 1, "width": 64, "height": 48, "file_name": "sa_1.jpg"},
        "annotations": [annotation(square(), **{key: "@" + key for key in fields})],
    }
    text = json.dumps(record)
    for key, value in header.items():  # verbatim JSON text
        text = text.replace(f'"{key}": {record["image"][key]}', f'"{key}": {value}')
    for key, value in fields.items():
        text = text.replace(f'"@{key}"', value)
    tar = make_tar(tmp_path / "x.tar", {"sa_1.jpg": jpg, "sa_1.json": text.encode()})

    report = import_annotations(dataset, tar)

    assert report.masks == 0 and not Mask.objects.exists()
    [skipped] = report.skipped
    assert words in skipped["reason"] and len(skipped["reason"]) < 300, skipped


def square() -> np.ndarray:
    pixels = np.zeros((48, 64), bool)
    pixels[10:20, 5:30] = True
    return pixels
