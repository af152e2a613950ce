"""A dataset's label set (COCO's categories): listed for its members, made, renamed, recoloured,
reordered and deleted by its admins (the view checks who); and the label a mask may carry,
which must be one of its own dataset's.

Deleting a label leaves its masks in place, unlabelled (class-agnostic), each at a new version,
so an editor holding the old version learns of the change instead of writing the label back.
"""

from __future__ import annotations

import re
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, Max, QuerySet
from django.utils import timezone

from annotation.models import Dataset, Label, Mask
from annotation.services.errors import Conflict, InvalidInput

COLOR = re.compile(r"#[0-9a-fA-F]{6}")
MAX_NAME = 100
# Matches Label.position, a PositiveIntegerField, on every database.
MAX_POSITION = 2**31 - 1
# The picker's colours for labels made without one (the default chart palette), in turn.
DEFAULT_COLORS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
# A value that says "leave the mask's label as it is" (None means "no label").
KEEP = object()


def dataset_labels(dataset: Dataset) -> QuerySet[Label]:
    """The dataset's labels in picker order (position, then age): the digit keys follow it."""
    return Label.objects.filter(dataset=dataset).order_by("position", "id")


def create_label(
    dataset: Dataset,
    *,
    name: str,
    color: str | None = None,
    supercategory: str = "",
    position: int | None = None,
) -> Label:
    """A new label of ``dataset``; without a position it goes last, without a colour it takes
    the next of DEFAULT_COLORS. A name the dataset already has is a Conflict (409)."""
    name = _checked_name(name)
    existing = Label.objects.filter(dataset=dataset)
    if position is None:
        last = existing.aggregate(last=Max("position"))["last"]
        position = 0 if last is None else min(last + 1, MAX_POSITION)
    if color is None:
        color = DEFAULT_COLORS[existing.count() % len(DEFAULT_COLORS)]
    fields = {
        "name": name,
        "color": _checked_color(color),
        "supercategory": supercategory,
        "position": _checked_position(position),
    }
    try:
        with transaction.atomic():
            return Label.objects.create(dataset=dataset, **fields)
    except IntegrityError:
        raise _name_taken(dataset, name) from None


def update_label(label: Label, **changes: Any) -> Label:
    """Rename, recolour, reorder or re-group a label; only the fields given change."""
    checks = {
        "name": _checked_name,
        "color": _checked_color,
        "position": _checked_position,
        "supercategory": str,
    }
    unknown = set(changes) - set(checks)
    if unknown:
        raise InvalidInput(f"a label has no field {sorted(unknown)[0]!r} to change")
    for field, value in changes.items():
        setattr(label, field, checks[field](value))
    try:
        with transaction.atomic():
            label.save(update_fields=list(changes) or None)
    except IntegrityError:
        raise _name_taken(label.dataset, label.name) from None
    return label


def delete_label(label: Label) -> int:
    """Delete a label; its masks stay, unlabelled, each at a new version. Returns how many masks
    lost the label."""
    with transaction.atomic():
        unlabelled = Mask.objects.filter(label=label).update(
            label=None, version=F("version") + 1, updated_at=timezone.now()
        )
        label.delete()
    return unlabelled


def label_for_mask(dataset: Dataset, label_id: int | None) -> Label | None:
    """The label ``label_id`` names, which must be one of the mask's dataset's (400 otherwise:
    a label of another dataset, or none at all); None stays None (no label)."""
    if label_id is None:
        return None
    label = Label.objects.filter(pk=label_id, dataset=dataset).first()
    if label is None:
        raise InvalidInput(
            f"label {label_id} is not a label of dataset {dataset.name!r}; "
            f"GET /api/datasets/{dataset.pk}/labels/ lists them",
            field="label",
        )
    return label


def _checked_name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= MAX_NAME:
        raise InvalidInput(f"a label's name has 1 to {MAX_NAME} characters", field="name")
    return name


def _checked_color(color: str) -> str:
    if not isinstance(color, str) or not COLOR.fullmatch(color):
        shown = str(color)[:40]
        raise InvalidInput(f"color {shown!r} is not '#rrggbb' (hex)", field="color")
    return color.lower()


def _checked_position(position: int) -> int:
    if not 0 <= position <= MAX_POSITION:
        raise InvalidInput(f"position is a whole number from 0 to {MAX_POSITION}", field="position")
    return position


def _name_taken(dataset: Dataset, name: str) -> Conflict:
    return Conflict(f"dataset {dataset.name!r} already has a label named {name!r}", field="name")
