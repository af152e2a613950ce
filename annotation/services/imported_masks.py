"""What both annotation imports (SA-1B and COCO) share: the report, the reason an image is left
out, and writing an image's masks without duplicating those an earlier import wrote.

A mask imported again is recognised by its ``client_id``, derived from its pixels (and, for a COCO
annotation, its id in the file, so that two annotations of the same pixels stay two masks), or by
its COCO annotation id (``external_id``) on the same image.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from annotation.models import Image, Mask, MaskSource
from engine import rle as rle_codec

CLIENT_ID_NAMESPACE = uuid.UUID("5a1b0000-c0c0-4e5a-9d1b-000000000001")


@dataclass
class AnnotationImportReport:
    imported: list[dict[str, Any]] = field(default_factory=list)
    already_imported: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    labels_created: list[str] = field(default_factory=list)

    @property
    def masks(self) -> int:
        return sum(item["masks"] for item in self.imported)

    def as_dict(self) -> dict[str, Any]:
        return {
            "masks_imported": self.masks,
            "imported": self.imported,
            "already_imported": self.already_imported,
            "skipped": self.skipped,
            "labels_created": self.labels_created,
        }

    def summary(self) -> str:
        labels = f", {len(self.labels_created)} labels created" if self.labels_created else ""
        return (
            f"{self.masks} masks imported on {len(self.imported)} images, "
            f"{len(self.already_imported)} images already imported, "
            f"{len(self.skipped)} skipped{labels}"
        )


class Skip(Exception):
    """This image (and all its masks) is left out, for the reason given."""


def brief(value: Any) -> str:
    """A value from the file for a message: its repr, cut short."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # an int of over 4300 digits, deep nesting
        return f"a {type(value).__name__}"
    return text if len(text) <= 60 else text[:57] + "..."


def store_masks(image: Image, masks: list[dict[str, Any]], name: str, report, user: Any) -> None:
    """Write the masks not already on the image (inside the caller's transaction). Each dict
    holds ``rle`` and Mask fields (scores, SA-1B fields, ``label``, ``iscrowd``,
    ``external_id``)."""
    new: dict[uuid.UUID, Mask] = {}
    earlier: dict[uuid.UUID, tuple[uuid.UUID, int | None]] = {}
    for fields in masks:
        # Checked against the image the masks land on (an SA-1B file's was its JSON's word).
        try:
            valid = rle_codec.checked(fields["rle"], expected_size=(image.height, image.width))
        except rle_codec.RLEError as exc:
            raise Skip(f"{exc}; none of this image's masks imported") from exc
        if valid.area == 0:
            raise Skip("a mask is empty (no foreground pixel); none of its masks imported")
        digest = hashlib.sha256(json.dumps(valid.rle, sort_keys=True).encode()).hexdigest()
        pixels_only = uuid.uuid5(CLIENT_ID_NAMESPACE, digest)
        external_id = fields.get("external_id")
        client_id = (
            pixels_only
            if external_id is None
            else uuid.uuid5(CLIENT_ID_NAMESPACE, f"{digest}:{external_id}")
        )
        # A mask an earlier import wrote by its pixels alone (an SA-1B import, or a COCO import
        # of this platform's older versions) is the same mask.
        earlier[client_id] = (pixels_only, external_id)
        new[client_id] = Mask(
            image=image,
            rle=valid.rle,
            bbox=valid.bbox,
            area=valid.area,
            source=MaskSource.IMPORTED,
            stage=image.stage,
            author=user if getattr(user, "is_authenticated", False) else None,
            client_id=client_id,
            **{key: value for key, value in fields.items() if key != "rle"},
        )
    on_image = Mask.objects.filter(image=image)
    known_ids = set(
        on_image.filter(client_id__in=[*new, *(p for p, _ in earlier.values())]).values_list(
            "client_id", flat=True
        )
    )
    external_ids = [e for _, e in earlier.values() if e is not None]
    known_external = set(
        on_image.filter(external_id__in=external_ids).values_list("external_id", flat=True)
        if external_ids
        else ()
    )

    def known(client_id: uuid.UUID) -> bool:
        pixels_only, external_id = earlier[client_id]
        return client_id in known_ids or pixels_only in known_ids or external_id in known_external

    existing = [cid for cid in new if known(cid)]
    created = Mask.objects.bulk_create([m for cid, m in new.items() if not known(cid)])
    entry = {"name": name, "image_id": image.pk, "masks": len(created)}
    if created or not existing:
        report.imported.append(entry)
    else:
        report.already_imported.append({**entry, "masks": len(existing)})
