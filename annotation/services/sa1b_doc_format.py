"""The bytes of a per-image SA-1B document (annotation.services.sa1b_docs), and the image's
SA-1B record for an export read from them.

A document holds every mask of one image, checked as the export checks them
(``export_format.sa1b_annotation_rows``), in three parts::

    <summary JSON>\\n<index JSON>\\n<record>

- the **record**: the image's SA-1B JSON exactly as an export without filters writes it
  (``image_record`` of every mask that passed its check), so such an export copies it as is;
- the **summary** (one short line): format and version, the image's id, width and height (a
  document of another size is not used), the number of masks in the record, the length of the
  record and of its head (``{"image": {...}, "annotations": [``), and the masks that failed
  their check: ``[mask_id, stage, source, model_version_id, iou, stability, reason]``;
- the **index** (read only by filtered exports): per mask of the record
  ``[mask_id, stage, source, model_version_id, iou, stability, start, end]``, where
  ``record[start:end]`` is its annotation's JSON and iou/stability are the exported scores.

A filtered export selects masks from the index exactly as ``export_format.selected_masks`` does
in SQL and joins their slices of the record: the same bytes as a record built from the rows.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from annotation.services.export_format import ExportFilters

FORMAT = "sade-sa1b-doc"
VERSION = 1
SEPARATOR = b", "
TAIL = b"]}"
NO_FILTERS = ExportFilters()


class DocError(ValueError):
    """The bytes are not a document of this version for the image at hand."""


def record_head(image_id: int, width: int, height: int) -> bytes:
    header = json.dumps(
        {"image_id": image_id, "width": width, "height": height, "file_name": f"sa_{image_id}.jpg"}
    )
    return f'{{"image": {header}, "annotations": ['.encode()


def image_record(image_id: int, width: int, height: int, annotations: list[bytes]) -> bytes:
    """The image's SA-1B JSON: the header, then its annotations' JSON texts."""
    return record_head(image_id, width, height) + SEPARATOR.join(annotations) + TAIL


def encode_doc(
    image: tuple[int, int, int],
    masks: list[tuple[tuple, str]],
    failed: list[dict[str, Any]],
) -> Doc:
    """The document of ``image`` ((id, width, height)) from its masks as
    ``sa1b_annotation_rows`` returns them and its entries of that call's ``failed``; its bytes
    are ``.data``."""
    image_id, width, height = image
    head = record_head(image_id, width, height)
    texts = [text.encode() for _, text in masks]
    index, position = [], len(head)
    for (row, _), text in zip(masks, texts, strict=True):
        stage, source, version = row[9:12]
        end = position + len(text)
        index.append([row[1], stage, source, version, float(row[5]), float(row[6]), position, end])
        position = end + len(SEPARATOR)
    record = head + SEPARATOR.join(texts) + TAIL
    summary = {
        "format": FORMAT,
        "version": VERSION,
        "image": [image_id, width, height],
        "masks": len(texts),
        "head": len(head),
        "record": len(record),
        "failed": [
            [
                entry["mask_id"],
                *entry["selection"][:3],
                *map(float, entry["selection"][3:]),
                entry["reason"],
            ]
            for entry in failed
        ],  # fmt: skip
    }
    head_line, index_line = json.dumps(summary).encode(), json.dumps(index).encode()
    data = b"%s\n%s\n%s" % (head_line, index_line, record)
    index_start = len(head_line) + 1
    return Doc(summary, data, index_start, index_start + len(index_line) + 1)


@dataclass(frozen=True)
class Doc:
    """A parsed document: its summary, and its bytes to slice the index and record from."""

    summary: dict[str, Any]
    data: bytes
    index_start: int
    record_start: int

    def record(self, filters: ExportFilters, failed: list[dict[str, Any]]) -> tuple[bytes, int]:
        """The image's SA-1B JSON for an export with ``filters`` and its number of masks; the
        selected masks that failed their check are appended to ``failed``."""
        image_id, everything = self.summary["image"][0], filters == NO_FILTERS
        failed.extend(
            {"mask_id": f[0], "image_id": image_id, "reason": f[6]}
            for f in self.summary["failed"]
            if everything or selected(filters, *f[1:6])
        )
        if everything:
            return self.data[self.record_start :], self.summary["masks"]
        record = memoryview(self.data)[self.record_start :]
        index = json.loads(self.data[self.index_start : self.record_start - 1])
        picked = [record[m[6] : m[7]] for m in index if selected(filters, *m[1:6])]
        head = record[: self.summary["head"]]
        return b"%s%s%s" % (head, SEPARATOR.join(picked), TAIL), len(picked)


def selected(
    filters: ExportFilters, stage: int, source: str, version: int | None, iou: float, stab: float
) -> bool:
    """``export_format.selected_masks`` for one mask. A NaN score passes a minimum, as it does
    in PostgreSQL, where NaN sorts above every number (SQLite cannot store one)."""
    return (
        (filters.stage is None or stage == filters.stage)
        and (filters.source is None or source == filters.source)
        and (filters.model_version is None or version == filters.model_version)
        and (filters.min_predicted_iou is None or _at_least(iou, filters.min_predicted_iou))
        and (filters.min_stability_score is None or _at_least(stab, filters.min_stability_score))
    )


def _at_least(value: float, minimum: float) -> bool:
    return value >= minimum or math.isnan(value)


def parse_doc(data: bytes, image: tuple[int, int, int]) -> Doc:
    """The document in ``data`` if it is one of this version for ``image`` (id, width,
    height) and its parts fit together; else DocError."""
    first = data.find(b"\n")
    second = data.find(b"\n", first + 1) if first >= 0 else -1
    if second < 0:
        raise DocError("not a document: fewer than three parts")
    try:
        summary = json.loads(data[:first])
    except (ValueError, RecursionError) as exc:
        raise DocError(f"the summary is not JSON: {exc}") from None
    if not (
        isinstance(summary, dict)
        and summary.get("format") == FORMAT
        and summary.get("version") == VERSION
        and summary.get("image") == list(image)
        and summary.get("record") == len(data) - second - 1
        and isinstance(summary.get("masks"), int)
        and isinstance(summary.get("head"), int)
        and isinstance(summary.get("failed"), list)
    ):
        raise DocError("the summary is not this image's, or not of this version")
    return Doc(summary=summary, data=data, index_start=first + 1, record_start=second + 1)
