"""An SA-1B export read by tools nobody here wrote: Datumaro's ``segment_anything`` importer
(shards extracted in place, beside the tars and the ``meta/`` folder, and into a folder of their
own) and pycocotools straight from the tars. The readers are the README's own snippets, run
as written with the folder names pointed at the test's export; every mask they decode must be
pixel-identical to what the database holds, on the same images, ids and file names."""

from __future__ import annotations

import re
import shutil
import tarfile
from pathlib import Path

import datumaro as dm
import numpy as np
import pytest

from annotation.models import Image
from annotation.services.sa1b import export_sa1b
from engine import rle as rle_codec
from tests import factories
from tests.exports.conftest import add_jpeg_image, add_mask, blob

pytestmark = pytest.mark.django_db

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## Reading an SA-1B export"
# The folder name the README's snippets read; the test runs them on its own folders.
README_FOLDER = '"sa1b-export"'


def readme_snippet(needle: str) -> str:
    """The Python block of the README's export section that contains ``needle``."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index(SECTION) :]
    section = section[: section.index("\n## ", len(SECTION))]
    blocks = [b for b in re.findall(r"```python\n(.*?)```", section, re.S) if needle in b]
    assert len(blocks) == 1, f"one README snippet with {needle!r}, found {len(blocks)}"
    return blocks[0]


def run_snippet(needle: str, folder: Path) -> dict:
    code = readme_snippet(needle)
    assert README_FOLDER in code
    namespace: dict = {}
    exec(compile(code.replace(README_FOLDER, repr(str(folder))), "README.md", "exec"), namespace)
    return namespace


@pytest.fixture
def exported(dataset, tmp_path, tiny_model):
    """Five images over three shards: PNGs (re-encoded) and a JPEG (copied), overlapping
    masks, a mask touching every border, a mask with holes, one of each source; and an image
    without masks (not exported)."""
    images = [factories.add_image(dataset, width=64, height=48, seed=s) for s in (1, 2, 3)]
    images.append(add_jpeg_image(dataset, seed=4, width=80, height=60))
    images.append(factories.add_image(dataset, width=33, height=17, seed=5))
    factories.add_image(dataset, seed=6)
    for n, image in enumerate(images):
        add_mask(image, blob(image, 20, 20, 8), prompt={"points": [[20.0, 20.0]], "labels": [1]})
        add_mask(image, blob(image, 24, 22, 9) & ~blob(image, 24, 22, 3), "model_assisted")
        add_mask(
            image,
            blob(image, 10 + n, 12, 40),  # clipped by every border of the image
            "automatic",
            stage=3,
            model_version=tiny_model,
            predicted_iou=0.93,
            stability_score=0.96,
            point_coords=[[10.0, 12.0]],
            crop_box=[0.0, 0.0, float(image.width), float(image.height)],
        )
    ring = np.zeros((images[0].height, images[0].width), bool)
    ring[5:40, 5:60] = True
    ring[15:30, 15:50] = False
    add_mask(images[0], ring, "imported")
    out = tmp_path / "sa1b-export"
    manifest = export_sa1b(dataset, out, shard_size=2)
    assert manifest["images"] == 5 and len(manifest["shards"]) == 3
    return out, images


def extract(shards_from: Path, into: Path) -> Path:
    into.mkdir(exist_ok=True)
    for shard in sorted(shards_from.glob("sa_*.tar")):
        with tarfile.open(shard) as archive:
            archive.extractall(into, filter="data")
    return into


def stored(images: list[Image]) -> dict[int, dict[int, np.ndarray]]:
    """image id -> mask id -> pixels, as the platform holds them."""
    return {
        image.pk: {m.pk: rle_codec.decode(m.rle) for m in image.masks.order_by("pk")}
        for image in images
    }


def check_datumaro_reads_every_mask(folder: Path, images: list[Image]) -> None:
    assert dm.Environment().detect_dataset(str(folder)) == ["segment_anything"]
    namespace = run_snippet("import datumaro", folder)
    dataset, masks = namespace["dataset"], namespace["masks"]
    want = stored(images)

    assert len(dataset) == len(images)
    assert sorted(item.id for item in dataset) == sorted(f"sa_{image.pk}" for image in images)
    by_id = {image.pk: image for image in images}
    for item in dataset:
        image = by_id[item.attributes["id"]]
        assert item.id == f"sa_{image.pk}"
        assert Path(item.media.path) == folder / f"sa_{image.pk}.jpg"
        assert item.media.data.shape[:2] == (image.height, image.width)
        rles = [a for a in item.annotations if isinstance(a, dm.RleMask)]
        assert [a.id for a in rles] == list(want[image.pk])
        boxes = {a.id: a.get_bbox() for a in item.annotations if isinstance(a, dm.Bbox)}
        for mask in image.masks.all():
            assert list(boxes[mask.pk]) == mask.bbox
    assert set(masks) == set(want)
    for image_id, pixels in masks.items():
        expected = list(want[image_id].values())
        assert len(pixels) == len(expected)
        for got, mask in zip(pixels, expected, strict=True):
            assert got.shape == mask.shape
            assert np.array_equal(got.astype(bool), mask)


def test_datumaro_reads_the_shards_extracted_in_place(exported, capsys):
    out, images = exported
    extract(out, out)
    # Beside the tars and meta/, only SA-1B's own files: nothing a reader could mistake.
    assert {p.name for p in out.iterdir() if p.is_file() and not p.name.endswith(".tar")} == {
        f"sa_{image.pk}.{ext}" for image in images for ext in ("jpg", "json")
    }
    check_datumaro_reads_every_mask(out, images)
    assert "['segment_anything']" in capsys.readouterr().out  # what the README says it prints


def test_datumaro_reads_the_shards_extracted_into_their_own_folder(exported, tmp_path):
    out, images = exported
    check_datumaro_reads_every_mask(extract(out, tmp_path / "extracted"), images)


def test_the_earlier_layout_trips_datumaro(exported):
    """Why meta/ exists: the manifest and id list beside the extracted files (as exports made
    before it had them) make the folder look like CamVid and fail the import."""
    out, _ = exported
    extract(out, out)
    for name in ("manifest.json", "sa_images_ids.txt"):
        shutil.move(out / "meta" / name, out / name)
    assert dm.Environment().detect_dataset(str(out)) != ["segment_anything"]
    with pytest.raises(dm.components.errors.DatasetImportError):
        dm.Dataset.import_from(str(out), "segment_anything")


def test_pycocotools_reads_every_mask_from_the_tars(exported):
    out, images = exported
    masks = run_snippet("pycocotools import mask", out)["masks"]
    want = stored(images)

    assert sorted(masks) == sorted(want)
    for image_id, pixels in masks.items():
        expected = list(want[image_id].values())
        assert len(pixels) == len(expected)
        for got, mask in zip(pixels, expected, strict=True):
            assert got.dtype == np.uint8 and np.array_equal(got.astype(bool), mask)
