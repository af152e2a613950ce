"""Model versions are shown to the users who may see their training data: a version retrained on
a dataset carries its name, counts and metrics, so an outsider of that dataset sees neither the
version in GET /api/model-versions/ nor its details in the dataset stats or the active-model
description, while staff and the dataset's members do."""

from __future__ import annotations

import pytest

from modeltrain.models import TrainingRound
from registry.models import ModelVersion
from tests import factories

pytestmark = pytest.mark.django_db


def retrained_on(dataset, parent: ModelVersion, *, active: bool = False) -> ModelVersion:
    """A version as a finished round on ``dataset`` leaves it (named and described after it)."""
    version = ModelVersion.objects.create(
        name=f"round-1-{dataset.name}",
        model_type=parent.model_type,
        checkpoint=parent.checkpoint,
        encoder_key=parent.encoder_key,
        parent=parent,
        round=parent.round + 1,
        trained_on=f"{parent.name}, then round 1: 31 masks of 4 images of dataset {dataset.name!r}",
        metrics={"heldout": {"miou_1_click": 0.71}},
    )
    TrainingRound.objects.create(
        dataset=dataset, parent=parent, result=version, status=TrainingRound.Status.DONE
    )
    if active:
        ModelVersion.objects.filter(is_active=True).update(is_active=False)
        ModelVersion.objects.filter(pk=version.pk).update(is_active=True)
    return version


def names(response) -> set[str]:
    body = response.json()
    rows = body["results"] if isinstance(body, dict) else body
    return {row["name"] for row in rows}


def test_an_outsider_does_not_list_a_version_trained_on_another_dataset(
    tiny_model, dataset, other_dataset, outsider_client, annotator_client, admin_client
):
    secret = retrained_on(dataset, tiny_model)

    assert names(outsider_client.get("/api/model-versions/")) == {tiny_model.name}
    assert outsider_client.get(f"/api/model-versions/{secret.pk}/").status_code == 404
    assert names(annotator_client.get("/api/model-versions/")) == {tiny_model.name, secret.name}
    assert names(admin_client.get("/api/model-versions/")) == {tiny_model.name, secret.name}


def test_a_child_version_is_hidden_from_members_of_only_the_childs_dataset(
    tiny_model, dataset, other_dataset, outsider_client
):
    parent = retrained_on(dataset, tiny_model)
    child = retrained_on(other_dataset, parent)
    child.name = "round-2-dogs"
    child.save()

    # The child's description names its parent, trained on "cats": not for "dogs" members only.
    assert "cats" in child.trained_on
    assert names(outsider_client.get("/api/model-versions/")) == {tiny_model.name}


def test_the_active_version_is_described_to_an_outsider_without_its_training_data(
    tiny_model, dataset, other_dataset, outsider_client, annotator_client
):
    secret = retrained_on(dataset, tiny_model, active=True)

    seen = outsider_client.get("/api/model/").json()
    assert seen["id"] == secret.pk and seen["round"] == 1
    assert "cats" not in seen["name"] and "cats" not in seen["trained_on"]
    assert "not a member" in seen["trained_on"]
    assert annotator_client.get("/api/model/").json()["name"] == secret.name


def test_dataset_stats_show_an_outsiders_versions_only_redacted(
    tiny_model, dataset, other_dataset, outsider, client_for
):
    secret = retrained_on(dataset, tiny_model)
    dog_image = factories.add_image(other_dataset)
    factories.add_mask(dog_image, source="model_assisted", model_version=secret)

    stats = client_for(outsider).get(f"/api/datasets/{other_dataset.pk}/stats/").json()

    rows = {row["id"]: row for row in stats["model_versions"]}
    assert set(rows) == {tiny_model.pk, secret.pk}
    assert rows[secret.pk]["name"] == f"model version {secret.pk}"
    assert rows[secret.pk]["metrics"] == {} and rows[secret.pk]["heldout"] is None
    assert rows[secret.pk]["masks_in_dataset"] == 1
    assert "cats" not in str(stats)


def test_a_version_of_another_dataset_that_made_no_mask_here_is_not_in_the_stats(
    tiny_model, dataset, other_dataset, outsider, client_for, admin_client
):
    secret = retrained_on(dataset, tiny_model)

    stats = client_for(outsider).get(f"/api/datasets/{other_dataset.pk}/stats/").json()
    staff_stats = admin_client.get(f"/api/datasets/{other_dataset.pk}/stats/").json()

    assert {row["id"] for row in stats["model_versions"]} == {tiny_model.pk}
    assert secret.pk in {row["id"] for row in staff_stats["model_versions"]}
