"""A COCO instances file as other tools write them, for the round-trip tests: categories whose
ids are not 1..N (and one no annotation uses), image and annotation ids that are not 1..N (some
beyond 32 bits), polygons of several parts per object, compressed RLE, and crowd regions as
uncompressed RLE; plus readers that compare two COCO files the way pycocotools sees them."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from engine import rle as rle_codec
from tests import factories

# (seed, width, height, COCO image id)
IMAGES = [(1, 64, 48, 900_001), (2, 80, 60, 77), (3, 50, 70, 5_000_000_000)]
CATEGORIES = [
    {"id": 7, "name": "cat", "supercategory": "animal"},
    {"id": 42, "name": "dog", "supercategory": "animal"},
    {"id": 1_000_003, "name": "traffic light", "supercategory": "outdoor"},
    {"id": 9, "name": "unused", "supercategory": "misc"},
]


def uncompressed(pixels: np.ndarray) -> dict:
    """COCO's crowd RLE: counts a list of run lengths, column-major, starting with 0s."""
    flat = np.asfortranarray(pixels.astype(np.uint8)).ravel(order="F")
    changes = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.r_[0, changes, flat.size]
    runs = np.diff(bounds).tolist()
    if flat[0]:
        runs = [0, *runs]
    return {"size": list(pixels.shape), "counts": [int(r) for r in runs]}


def disc(height: int, width: int, cx: float, cy: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[:height, :width]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def annotations_for(image_id: int, width: int, height: int, first_id: int) -> list[dict]:
    """Five objects: a two-part polygon, a three-part polygon, compressed RLE, a crowd region as
    uncompressed RLE, and a second annotation of the same pixels as the first (another id and
    category: two masks, not one)."""
    two_parts = [[2, 2, 12, 2, 12, 9, 2, 9], [20.5, 3, 28, 3, 24, 11.5]]
    three_parts = [
        [width - 12, 2, width - 3, 2, width - 3, 8, width - 12, 8],
        [width - 12, 12, width - 3, 12, width - 7, 18],
        [30, height - 8, 36, height - 8, 36, height - 2, 30, height - 2],
    ]
    crowd = np.zeros((height, width), bool)
    crowd[height // 2 : height // 2 + 6, 3:20] = True
    crowd[height // 2 + 2, 25:30] = True  # a second, thin part
    return [
        {"id": first_id, "category_id": 7, "segmentation": two_parts, "iscrowd": 0},
        {"id": first_id + 13, "category_id": 42, "segmentation": three_parts, "iscrowd": 0},
        {
            "id": first_id * 3 + 2**40,
            "category_id": 1_000_003,
            "segmentation": rle_codec.encode(disc(height, width, width / 2, height / 3, 6)),
            "iscrowd": 0,
        },
        {"id": first_id + 501, "category_id": 7, "segmentation": uncompressed(crowd), "iscrowd": 1},
        {"id": first_id + 777, "category_id": 42, "segmentation": two_parts, "iscrowd": 0},
    ]


def area_and_bbox(segmentation, height: int, width: int) -> dict:
    """What COCO files carry beside each segmentation (COCOeval reads ``area``)."""
    if isinstance(segmentation, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    elif isinstance(segmentation["counts"], list):
        rle = mask_utils.frPyObjects(segmentation, height, width)
    else:
        rle = {"size": segmentation["size"], "counts": segmentation["counts"].encode()}
    return {"area": float(mask_utils.area(rle)), "bbox": mask_utils.toBbox(rle).tolist()}


def source_document() -> dict:
    images, annotations = [], []
    for index, (seed, width, height, image_id) in enumerate(IMAGES):
        images.append(
            {"id": image_id, "file_name": f"img-{seed}.png", "width": width, "height": height}
        )
        for annotation in annotations_for(image_id, width, height, 1_000 + 97 * index):
            annotation["image_id"] = image_id
            annotation.update(area_and_bbox(annotation["segmentation"], height, width))
            annotations.append(annotation)
    return {"images": images, "annotations": annotations, "categories": CATEGORIES}


def add_source_images(dataset) -> None:
    """The file's images in the dataset (what a COCO import matches by file name)."""
    for seed, width, height, _ in IMAGES:
        factories.add_image(dataset, width, height, seed)


def load(path: Path) -> COCO:
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints as it loads
        return COCO(str(path))


def write(path: Path, document) -> Path:
    path.write_text(json.dumps(document))
    return path


def assert_same_coco(source: Path, exported: Path) -> None:
    """Same images (ids, file names, sizes), categories, annotation ids with their image,
    category and crowd flag, and pixel-identical masks as pycocotools decodes them."""
    a, b = load(source), load(exported)
    image_fields = ("file_name", "width", "height")
    assert {i: [a.imgs[i][k] for k in image_fields] for i in a.imgs} == {
        i: [b.imgs[i][k] for k in image_fields] for i in b.imgs
    }
    assert {c: (a.cats[c]["name"], a.cats[c]["supercategory"]) for c in a.cats} == {
        c: (b.cats[c]["name"], b.cats[c]["supercategory"]) for c in b.cats
    }
    assert sorted(a.anns) == sorted(b.anns)
    for ann_id, ours in a.anns.items():
        theirs = b.anns[ann_id]
        keys = ("image_id", "category_id", "iscrowd")
        assert [ours[k] for k in keys] == [theirs[k] for k in keys], ann_id
        assert np.array_equal(a.annToMask(ours), b.annToMask(theirs)), ann_id
