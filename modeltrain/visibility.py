"""Who may see what about a model version.

A version made by a training round carries the data of the dataset it was trained on: its name
(``round-N-<dataset>``), its ``trained_on`` text (the dataset's name and mask counts), its
held-out metrics and its training config. Its children carry the same in their ``trained_on``
(they name the parent). So a version's *lineage datasets* are the datasets of every training
round from it back to the start, and a signed-in user sees a version in full only when they are a
member of all of them. Staff see everything. Versions no training round made (Meta's checkpoints,
the cold start, a registered file) have no lineage datasets and are visible to everyone.

The active version answers every user's clicks, so everyone is told which version answers; a user
who may not see it gets it *redacted*: its id, type and round, but no name, description, metrics
or config.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from annotation.models import DatasetMembership
from modeltrain.models import ModelVersion

REDACTED_TRAINED_ON = (
    "retrained here (round {round}) on data of a dataset you are not a member of; its details "
    "are shown to that dataset's members and to site admins"
)


def _lineage_datasets() -> dict[int, set[int]]:
    """For every version id, the ids of the datasets its weights were trained on (its own round's
    and its ancestors'). Versions are few (one per round), so this reads them all once."""
    rows = ModelVersion.objects.values_list("pk", "parent_id", "training_round__dataset_id")
    parent = {pk: parent_id for pk, parent_id, _ in rows}
    own = {pk: dataset_id for pk, _, dataset_id in rows}
    lineage: dict[int, set[int]] = {}
    for pk in parent:
        datasets: set[int] = set()
        seen: set[int] = set()
        node: int | None = pk
        while node is not None and node not in seen:  # parent links cannot loop (PROTECT), but
            seen.add(node)  # a hand-edited database might: never walk forever
            if own.get(node) is not None:
                datasets.add(own[node])  # type: ignore[arg-type]
            node = parent.get(node)
        lineage[pk] = datasets
    return lineage


def _member_datasets(user: AbstractBaseUser | AnonymousUser) -> set[int]:
    if not user.is_authenticated:
        return set()
    return set(DatasetMembership.objects.filter(user=user).values_list("dataset_id", flat=True))


def visible_version_ids(user: AbstractBaseUser | AnonymousUser) -> set[int] | None:
    """The ids of the versions ``user`` may see in full; None means all (staff)."""
    if user.is_authenticated and user.is_staff:
        return None
    member_of = _member_datasets(user)
    return {pk for pk, datasets in _lineage_datasets().items() if datasets <= member_of}


def visible_versions(user: AbstractBaseUser | AnonymousUser) -> QuerySet[ModelVersion]:
    """The versions ``user`` may list and read (the model-versions API)."""
    ids = visible_version_ids(user)
    queryset = ModelVersion.objects.all()
    return queryset if ids is None else queryset.filter(pk__in=ids)


def may_see(user: AbstractBaseUser | AnonymousUser, version_id: int | None) -> bool:
    ids = visible_version_ids(user)
    return ids is None or version_id is None or version_id in ids


def redacted_name(version_id: int) -> str:
    return f"model version {version_id}"


def redact(description: dict[str, Any]) -> dict[str, Any]:
    """A version description (``runtime.describe_version``'s keys) with everything that tells
    of its training data replaced; id, type, round, officialness and the hint stay."""
    return {
        **description,
        "name": redacted_name(description["id"]),
        "trained_on": REDACTED_TRAINED_ON.format(round=description.get("round", "?")),
    }


def shown_to(user: AbstractBaseUser | AnonymousUser, description: dict[str, Any]) -> dict[str, Any]:
    """``description`` (of the version answering a user) as ``user`` may see it."""
    return description if may_see(user, description.get("id")) else redact(description)
