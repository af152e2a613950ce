"""Who may see what about a model version.

A version made by a training round carries the data of the dataset it was trained on: its name
(``round-N-<dataset>``), its ``trained_on`` text (the dataset's name and mask counts), its
held-out metrics and its training config. Its children carry the same in their ``trained_on``
(they name the parent). So a version's *lineage datasets* are the datasets it was trained on
(``VersionDataset``, recorded by whoever trains) and those of its ancestors, back to the start,
and a viewer sees a version in full only when they are a member of all of them. Staff see
everything. Versions no training round made (Meta's checkpoints, the cold start, a registered
file) have no lineage datasets and are visible to everyone.

The registry knows datasets by id only: a viewer is described by ``member_of``, the ids of the
datasets they are a member of, or None for someone who may see every dataset (staff);
annotation.services.access.member_dataset_ids computes it for a user.

The active version answers every user's clicks, so everyone is told which version answers; a user
who may not see it gets it *redacted*: its id, type and round, but no name, description, metrics
or config.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from django.db.models import QuerySet

from registry.models import ModelVersion, VersionDataset

REDACTED_TRAINED_ON = (
    "retrained here (round {round}) on data of a dataset you are not a member of; its details "
    "are shown to that dataset's members and to site admins"
)


def _lineage_datasets() -> dict[int, set[int]]:
    """For every version id, the ids of the datasets its weights were trained on (its own and its
    ancestors'). Versions are few (one per round), so this reads them all once."""
    parent = dict(ModelVersion.objects.values_list("pk", "parent_id"))
    own: dict[int, set[int]] = {}
    for version_id, dataset_id in VersionDataset.objects.values_list("version_id", "dataset_id"):
        own.setdefault(version_id, set()).add(dataset_id)
    lineage: dict[int, set[int]] = {}
    for pk in parent:
        datasets: set[int] = set()
        seen: set[int] = set()
        node: int | None = pk
        while node is not None and node not in seen:  # parent links cannot loop (PROTECT), but
            seen.add(node)  # a hand-edited database might: never walk forever
            datasets |= own.get(node, set())
            node = parent.get(node)
        lineage[pk] = datasets
    return lineage


def visible_version_ids(member_of: Collection[int] | None) -> set[int] | None:
    """The ids of the versions a viewer who is a member of the datasets ``member_of`` may see in
    full; None means all (``member_of`` None: staff)."""
    if member_of is None:
        return None
    members = set(member_of)
    return {pk for pk, datasets in _lineage_datasets().items() if datasets <= members}


def visible_versions(member_of: Collection[int] | None) -> QuerySet[ModelVersion]:
    """The versions the viewer may list and read (the model-versions API)."""
    ids = visible_version_ids(member_of)
    queryset = ModelVersion.objects.all()
    return queryset if ids is None else queryset.filter(pk__in=ids)


def may_see(member_of: Collection[int] | None, version_id: int | None) -> bool:
    ids = visible_version_ids(member_of)
    return ids is None or version_id is None or version_id in ids


def redacted_name(version_id: int) -> str:
    return f"model version {version_id}"


def redact(description: dict[str, Any]) -> dict[str, Any]:
    """A version description (``predictors.describe_version``'s keys) with everything that tells
    of its training data replaced; id, type, round, officialness and the hint stay."""
    return {
        **description,
        "name": redacted_name(description["id"]),
        "trained_on": REDACTED_TRAINED_ON.format(round=description.get("round", "?")),
    }


def shown_to(member_of: Collection[int] | None, description: dict[str, Any]) -> dict[str, Any]:
    """``description`` (of the version answering a viewer) as that viewer may see it."""
    return description if may_see(member_of, description.get("id")) else redact(description)


def record_trained_on(version_id: int, dataset_id: int) -> None:
    """Record that version ``version_id`` was trained on dataset ``dataset_id`` (idempotent)."""
    VersionDataset.objects.bulk_create(
        [VersionDataset(version_id=version_id, dataset_id=dataset_id)], ignore_conflicts=True
    )


def forget_trained_on(version_id: int, dataset_id: int) -> None:
    """Undo ``record_trained_on`` (the record of that training is gone)."""
    VersionDataset.objects.filter(version_id=version_id, dataset_id=dataset_id).delete()
