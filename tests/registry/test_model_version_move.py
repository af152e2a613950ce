"""Moving ModelVersion from modeltrain to the registry keeps the data: a database migrated before
the move (versions, a training round with its result, a mask made by a version) migrates forward
with every row, id and foreign key in place, the active flag still unique, and each version
visible to the same people as before (the lineage datasets filled from the rounds)."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from registry import visibility
from registry.models import ModelVersion, VersionDataset

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [
    ("annotation", "0007_job_cancelled"),
    ("modeltrain", "0002_training_rounds"),
    ("registry", None),
]


def migrate(targets):
    """Migrate the test database to ``targets``; the models as they were there."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor.loader.project_state([t for t in targets if t[1] is not None]).apps


def latest():
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


def old_rows(apps) -> dict[str, int]:
    """Versions, a round and masks as the old schema held them; their ids by name."""
    versions = apps.get_model("modeltrain", "ModelVersion")
    datasets = apps.get_model("annotation", "Dataset")
    images = apps.get_model("annotation", "Image")
    masks = apps.get_model("annotation", "Mask")
    rounds = apps.get_model("modeltrain", "TrainingRound")
    common = {"model_type": "vit_tiny", "encoder_key": "k" * 64}
    base = versions.objects.create(
        name="cold-start", checkpoint="cold.pt", trained_on="nothing", is_active=True, **common
    )
    made = versions.objects.create(
        name="round-1-private", checkpoint="r1.pt", trained_on="private data", parent=base, **common
    )
    child = versions.objects.create(
        name="registered-child",
        checkpoint="r2.pt",
        trained_on="from round 1",
        parent=made,
        **common,
    )
    private = datasets.objects.create(name="private")
    public = datasets.objects.create(name="public")
    run = rounds.objects.create(dataset=private, parent=base, result=made, status="done")
    image = images.objects.create(
        dataset=public, file="a.png", original_name="a.png", sha256="s" * 64,
        content_sha256="c" * 64, format="png", width=4, height=4, file_size=10,
    )  # fmt: skip
    rle = {"size": [4, 4], "counts": "04000"}
    mask = masks.objects.create(
        image=image, rle=rle, bbox=[0, 0, 1, 1], area=1, source="model", stage=1, model_version=made
    )
    return {
        "base": base.pk,
        "made": made.pk,
        "child": child.pk,
        "private": private.pk,
        "public": public.pk,
        "round": run.pk,
        "mask": mask.pk,
    }


def test_versions_rounds_and_masks_survive_the_move():
    try:
        ids = old_rows(migrate(BEFORE))
        migrate(latest())
    finally:
        migrate(latest())  # leave the test database as every other test expects it
    from annotation.models import Mask
    from modeltrain.models import TrainingRound

    assert ModelVersion._meta.db_table == "registry_modelversion"
    versions = {v.name: v for v in ModelVersion.objects.all()}
    assert {name: v.pk for name, v in versions.items()} == {
        "cold-start": ids["base"],
        "round-1-private": ids["made"],
        "registered-child": ids["child"],
    }
    assert versions["registered-child"].parent_id == ids["made"]
    assert versions["cold-start"].is_active
    run = TrainingRound.objects.get(pk=ids["round"])
    assert (run.parent_id, run.result_id, run.dataset_id) == (
        ids["base"],
        ids["made"],
        ids["private"],
    )
    assert Mask.objects.get(pk=ids["mask"]).model_version_id == ids["made"]
    assert run.result.training_round == run
    assert list(VersionDataset.objects.values_list("version_id", "dataset_id")) == [
        (ids["made"], ids["private"])
    ]
    # The version retrained on the private dataset, and its descendant, are shown to that
    # dataset's members and staff only; the cold start to everyone.
    assert visibility.visible_version_ids(set()) == {ids["base"]}
    assert visibility.visible_version_ids({ids["public"]}) == {ids["base"]}
    trained_here = {ids["base"], ids["made"], ids["child"]}
    assert visibility.visible_version_ids({ids["private"], ids["public"]}) == trained_here
    assert visibility.visible_version_ids(None) is None
    # The partial unique index came along: still at most one active version.
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersion.objects.filter(pk=ids["made"]).update(is_active=True)
    # New rows get fresh ids after the old ones (the id sequence came along too).
    new = ModelVersion.objects.create(
        name="after", model_type="vit_tiny", checkpoint="n.pt", encoder_key="k", trained_on="x"
    )
    assert new.pk > ids["child"]
