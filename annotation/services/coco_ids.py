"""The ids a COCO export writes for images, annotations and categories.

With ``platform`` the platform's own keys. Otherwise the source file's ids (``external_id``) are
written back, and an item without one, or whose id an earlier item (lower key) of the export
already has, gets a fresh one: its key plus an offset that puts every fresh id above the highest
source id (below the lowest, should that overflow signed 64-bit). Keys are unique, so fresh ids
never collide with each other nor with the kept ids. This costs two aggregate queries and memory
only for repeated ids, whatever the number of masks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.db.models import Count, Max, Min, QuerySet

from annotation.models import Dataset, Label
from annotation.services.errors import InvalidInput

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
UNLABELLED = "object"

IdMap = Callable[[int, int | None], int]


def id_map(items: QuerySet[Any], platform: bool) -> IdMap:
    """(key, external id) -> the exported id, for the items of ``items`` (images or masks)."""
    if platform:
        return lambda pk, external: pk
    items = items.order_by()
    bounds = items.aggregate(high=Max("external_id"), low=Min("external_id"), last=Max("pk"))
    repeated = (
        items.filter(external_id__isnull=False)
        .values("external_id")
        .annotate(n=Count("pk"), first=Min("pk"))
        .filter(n__gt=1)
        .values_list("external_id", "first")
    )
    holder = dict(repeated)  # repeated external id -> the key that keeps it
    offset = _offset(bounds["high"], bounds["low"], bounds["last"] or 0)

    def exported(pk: int, external: int | None) -> int:
        if external is not None and holder.get(external, pk) == pk:
            return external
        if offset is None:
            raise InvalidInput(
                "the source ids span all of signed 64-bit: no fresh id fits; export with "
                "ids 'platform'"
            )
        return pk + offset

    return exported


def _offset(high: int | None, low: int | None, last: int) -> int | None:
    if high is None or low is None:
        return 0
    above = max(high, 0)
    if last + above <= INT64_MAX:
        return above
    below = low - 1 - last
    return below if below >= INT64_MIN else None


def fresh_id(used: Iterable[int]) -> int:
    """An id above every one of ``used`` (a few: categories), else the lowest positive free."""
    taken = set(used)
    top = max(taken, default=0) + 1
    if top <= INT64_MAX:
        return max(top, 1)
    candidate = 1
    while candidate in taken:
        candidate += 1
    return candidate


def category_table(
    dataset: Dataset, masks: QuerySet[Any], platform: bool
) -> tuple[list[dict[str, Any]], Callable[[int | None], int]]:
    """(the export's categories, label key -> category id). Every label of the dataset is a
    category, used or not, in the pickers' order; masks without a label (or, should one exist,
    with another dataset's) go under one more category, ``object``, when there are such masks."""
    labels = list(
        Label.objects.filter(dataset=dataset)
        .order_by("position", "id")
        .values("id", "name", "supercategory", "external_id")
    )
    ids: dict[int, int] = {}
    if platform:
        ids = {label["id"]: label["id"] for label in labels}
    else:
        used = {label["external_id"] for label in labels if label["external_id"] is not None}
        for label in labels:
            if label["external_id"] is None:
                ids[label["id"]] = fresh_id(used)
                used.add(ids[label["id"]])
            else:
                ids[label["id"]] = label["external_id"]
    categories = [
        {"id": ids[label["id"]], "name": label["name"], "supercategory": label["supercategory"]}
        for label in labels
    ]
    unlabelled_id: int | None = None
    if masks.exclude(label_id__in=list(ids)).exists():
        unlabelled_id = fresh_id(ids.values())
        names = {label["name"] for label in labels}
        name = UNLABELLED
        while name in names:  # a label of that name holds labelled masks: keep them apart
            name = f"{name} (no label)"
        categories.append({"id": unlabelled_id, "name": name, "supercategory": UNLABELLED})

    def category_of(label_id: int | None) -> int:
        if label_id is not None and label_id in ids:
            return ids[label_id]
        # None only when a mask lost its label after the categories were listed (a label
        # deleted during the export): its id then collides with no listed category.
        return unlabelled_id if unlabelled_id is not None else fresh_id(ids.values())

    return categories, category_of
