"""A dataset with masks of every kind for the SA-1B document tests, and what the export wrote
before documents existed: every image's record built from its mask rows with the filters in SQL
(``export_format.sa1b_annotations``), the reference the export must equal byte for byte."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotation.models import Image, ImageDoc, Mask
from annotation.services.export_format import (
    IMAGE_BATCH,
    ExportFilters,
    sa1b_annotations,
    selected_images,
)
from annotation.services.sa1b import export_sa1b
from annotation.services.sa1b_doc_format import image_record
from annotation.services.sa1b_docs import doc_path
from registry.models import ModelVersion
from tests.exports.conftest import add_jpeg_image, add_mask, blob

FILTERS = [
    {},
    {"stage": 3},
    {"stage": 1},
    {"source": "automatic"},
    {"source": "manual"},
    {"model_version": "v2"},
    {"min_predicted_iou": 0.9},
    {"min_stability_score": 0.96},
    {"stage": 3, "min_predicted_iou": 0.9, "source": "automatic"},
]


def make_images(dataset) -> dict[str, Image]:
    """A: people's masks (a click, none, edited scores), a model's, one failing its check, an
    import without scores. B: a model's masks of two versions and scores, a pre-filled one. C:
    one mask, which fails its check. D: one manual mask. E: none."""
    v1 = ModelVersion.objects.create(name="docs-v1", model_type="vit_tiny", trained_on="-")
    v2 = ModelVersion.objects.create(name="docs-v2", model_type="vit_tiny", trained_on="-")
    a, b, c, d, e = (add_jpeg_image(dataset, seed=seed) for seed in range(5))
    prompt = {"points": [[5.0, 5.0], [20.0, 21.0]], "labels": [0, 1]}
    add_mask(a, blob(a, 20, 20, 8), "manual", prompt=prompt)
    add_mask(a, blob(a, 50, 30, 6), "model_assisted", predicted_iou=0.4)
    scored = {"predicted_iou": 0.91, "stability_score": 0.97, "point_coords": [[40.0, 10.0]]}
    add_mask(a, blob(a, 40, 10, 5), "automatic", stage=3, model_version=v1,
             crop_box=[0.0, 0.0, 32.0, 24.0], **scored)  # fmt: skip
    bad = add_mask(a, blob(a, 10, 30, 5), "automatic", stage=3, model_version=v1)
    Mask.objects.filter(pk=bad.pk).update(area=bad.area + 1)
    add_mask(a, blob(a, 30, 30, 4), "imported", stage=1)
    for i, (iou, stab, version) in enumerate([(0.5, 0.99, v1), (0.95, 0.9, v2), (0.97, 0.98, v2)]):
        point = [[10.0 + 15 * i, 20.0]]
        add_mask(b, blob(b, 10 + 15 * i, 20, 5), "automatic", stage=3, model_version=version,
                 predicted_iou=iou, stability_score=stab, point_coords=point)  # fmt: skip
    add_mask(b, blob(b, 30, 40, 6), "prefilled", stage=2, model_version=v2, predicted_iou=0.93)
    lonely = add_mask(c, blob(c, 30, 20, 7), "automatic", stage=3, model_version=v2)
    Mask.objects.filter(pk=lonely.pk).update(bbox=[0.0, 0.0, 1.0, 1.0])
    add_mask(d, blob(d, 12, 12, 9), "manual")
    return {"A": a, "B": b, "C": c, "D": d, "E": e, "v2": v2}


def filters_of(raw: dict, images: dict) -> ExportFilters:
    if raw.get("model_version") == "v2":
        raw = {**raw, "model_version": images["v2"].pk}
    return ExportFilters(**raw)


def reference(dataset, filters: ExportFilters) -> tuple[dict[int, bytes], list[dict]]:
    """image id -> its JSON, and the failed masks, as built from the rows with SQL filters."""
    images = list(selected_images(dataset, filters).values_list("id", "width", "height"))
    failed: list[dict] = []
    records = {}
    for start in range(0, len(images), IMAGE_BATCH):
        batch = images[start : start + IMAGE_BATCH]
        texts = sa1b_annotations(batch, filters, failed)
        for image_id, width, height in batch:
            if texts[image_id]:
                encoded = [text.encode() for text in texts[image_id]]
                records[image_id] = image_record(image_id, width, height, encoded)
    return records, failed


def exported(dataset, out: Path, filters: ExportFilters) -> tuple[dict[int, bytes], dict]:
    """image id -> the JSON bytes the export wrote, and its manifest."""
    manifest = export_sa1b(dataset, out, filters=filters, shard_size=2)
    records = {}
    for shard in sorted(out.glob("sa_*.tar")):
        with tarfile.open(shard) as archive:
            for member in archive.getmembers():
                if member.name.endswith(".json"):
                    records[int(member.name[3:-5])] = archive.extractfile(member).read()
    return records, manifest


def assert_export_is_the_reference(
    dataset, out: Path, filters: ExportFilters, queries: list | None = None
) -> dict:
    """Export, compare with ``reference``; the export's SQL (only) goes into ``queries``."""
    with CaptureQueriesContext(connection) as ctx:
        records, manifest = exported(dataset, out, filters)
    if queries is not None:
        queries += [query["sql"] for query in ctx.captured_queries]
    expected, failed = reference(dataset, filters)
    assert records == expected
    assert manifest["failed_masks"] == failed
    assert manifest["images"] == len(expected)
    assert manifest["masks"] == sum(len(json.loads(r)["annotations"]) for r in expected.values())
    return manifest


def valid_docs() -> set[int]:
    """Images whose recorded document is current and whose file is there."""
    return {
        doc.image_id
        for doc in ImageDoc.objects.all()
        if doc.doc_revision == doc.revision and doc_path(doc.image_id, doc.revision).is_file()
    }
