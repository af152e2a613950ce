"""The SA-1B export checks its stored masks a batch at a time (engine.rle_batch), reading the
RLE and box text without a JSON parser where it can: every exported mask is exactly what the
one-by-one check (checked_rle) gives, whatever the spelling of the row, and the rows that check
refuses are left out and listed, however they are mixed in a batch."""

from __future__ import annotations

import json

import numpy as np
import pytest
from django.db.models import JSONField, Value

from annotation.models import Mask
from annotation.services.export_format import checked_rle
from annotation.services.sa1b import export_sa1b
from engine import rle as rle_codec
from tests.exports.conftest import add_jpeg_image, add_mask, shard_records

pytestmark = pytest.mark.django_db


def masks_with_a_backslash(image, count: int) -> list[np.ndarray]:
    """Random masks whose compressed counts hold a backslash (stored as an escape in JSON)."""
    rng = np.random.default_rng(4)
    found = []
    while len(found) < count:
        pixels = rng.random((image.height, image.width)) < 0.3
        if "\\" in rle_codec.encode(pixels)["counts"]:
            found.append(pixels)
    return found


def test_every_exported_mask_is_what_the_one_by_one_check_gives(dataset, tmp_path):
    image = add_jpeg_image(dataset, seed=3)
    rng = np.random.default_rng(5)
    masks = [add_mask(image, rng.random((48, 64)) < rng.random()) for _ in range(30)]
    masks += [add_mask(image, pixels) for pixels in masks_with_a_backslash(image, 3)]
    off_area, off_box, off_size, text_box = masks[2], masks[5], masks[8], masks[11]
    Mask.objects.filter(pk=off_area.pk).update(area=off_area.area + 1)
    Mask.objects.filter(pk=off_box.pk).update(bbox=[0.0, 0.0, 1.0, 1.0])
    Mask.objects.filter(pk=off_size.pk).update(rle={**off_size.rle, "size": [64, 48]})
    # A box stored as integers: the same box, spelt otherwise than the export's text.
    Mask.objects.filter(pk=text_box.pk).update(bbox=[int(v) for v in text_box.bbox])
    Mask.objects.filter(pk=masks[14].pk).update(rle=Value(None, JSONField()))

    manifest = export_sa1b(dataset, tmp_path / "out")

    refused = {off_area.pk, off_box.pk, off_size.pk, masks[14].pk}
    assert {f["mask_id"] for f in manifest["failed_masks"]} == refused
    [record] = shard_records(tmp_path / "out").values()
    exported = {a["id"]: a for a in record["annotations"]}
    assert set(exported) == {m.pk for m in masks} - refused
    for mask in Mask.objects.filter(pk__in=list(exported)):
        size = (image.height, image.width)
        expected = checked_rle(json.dumps(mask.rle), size, mask.area, json.dumps(mask.bbox))
        assert exported[mask.pk]["segmentation"] == json.loads(expected) == mask.rle
        assert exported[mask.pk]["area"] == mask.area
