"""Finding and repairing stored masks that do not hold up: rows written before every way in
checked RLEs (one whose run lengths wrapped a 64-bit sum was accepted then), or by hand.

Each mask's RLE is checked against its image's size as if it came from outside
(``engine.rle.checked``), then its stored area and box against the RLE:

- **invalid**: the RLE is malformed, of another size, or its runs do not fit the image; or the
  mask is empty. Nothing can be recovered: with ``fix``, the row is deleted.
- **inconsistent**: the RLE is valid but spelled in a non-canonical way, or the stored area or
  box disagree with it. With ``fix``, they are rewritten from the RLE.

Masks are read in id order by keyset pages, so a dataset of any size is checked in constant
memory, and each repair is its own conditional write (a mask edited meanwhile is left alone and
reported).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from annotation.models import Dataset, Mask
from annotation.services.export_format import same_box
from engine import rle as rle_codec

PAGE = 1000
EDITED_MEANWHILE = " (edited or deleted meanwhile: left alone)"


@dataclass
class MaskCheckReport:
    checked: int = 0
    invalid: list[dict[str, Any]] = field(default_factory=list)
    inconsistent: list[dict[str, Any]] = field(default_factory=list)
    fixed: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "invalid": self.invalid,
            "inconsistent": self.inconsistent,
            "fixed": self.fixed,
        }


def check_stored_masks(
    *,
    dataset: Dataset | None = None,
    fix: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> MaskCheckReport:
    """Check every stored mask (of ``dataset``, else all); with ``fix``, delete the invalid ones
    and rewrite the inconsistent ones. Returns what was found (and done). ``progress(done,
    total)`` is called after each page (the total is counted once, at the start)."""
    report = MaskCheckReport(fixed=fix)
    masks = Mask.objects.order_by("pk")
    if dataset is not None:
        masks = masks.filter(image__dataset=dataset)
    total = masks.count() if progress is not None else 0
    columns = ("pk", "image_id", "version", "rle", "area", "bbox", "image__height", "image__width")
    after = 0
    while True:
        page = list(masks.filter(pk__gt=after).values_list(*columns)[:PAGE])
        if not page:
            return report
        for row in page:
            report.checked += 1
            _check(row, report, fix)
        after = page[-1][0]
        if progress is not None:
            progress(report.checked, max(total, report.checked))


def _check(row: tuple, report: MaskCheckReport, fix: bool) -> None:
    mask_id, image_id, version, rle, area, bbox, height, width = row
    entry = {"mask_id": mask_id, "image_id": image_id}
    try:
        valid = rle_codec.checked(rle, expected_size=(height, width))
        if valid.area == 0:
            raise rle_codec.RLEError("the mask is empty (no foreground pixel)")
    except rle_codec.RLEError as exc:
        report.invalid.append({**entry, "reason": str(exc)})
        if fix and not Mask.objects.filter(pk=mask_id, version=version).delete()[0]:
            report.invalid[-1]["reason"] += EDITED_MEANWHILE
        return
    problems = []
    if valid.rle != rle:
        problems.append("the RLE is not in canonical form")
    if area != valid.area:
        problems.append(f"the stored area is {area}, the RLE holds {valid.area} pixels")
    if not same_box(bbox, valid.bbox):
        problems.append(f"the stored box is {str(bbox)[:80]}, the RLE's is {valid.bbox}")
    if not problems:
        return
    report.inconsistent.append({**entry, "reason": "; ".join(problems)})
    if fix and not Mask.objects.filter(pk=mask_id, version=version).update(
        rle=valid.rle, area=valid.area, bbox=valid.bbox
    ):
        report.inconsistent[-1]["reason"] += EDITED_MEANWHILE
