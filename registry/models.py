"""Model versions: which SAM weights answer predictions and what they were trained on."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.db import models


class ModelVersion(models.Model):
    """One set of SAM weights on disk. Exactly one version is active at a time (a partial unique
    index, so two processes registering at once cannot both win)."""

    name = models.CharField(max_length=200, unique=True)
    model_type = models.CharField(max_length=32, help_text="engine registry name, e.g. vit_b")
    checkpoint = models.CharField(
        max_length=1000,
        help_text="checkpoint file, relative to CHECKPOINT_DIR when inside it",
    )
    encoder_key = models.CharField(
        max_length=128, help_text="hash of the image-encoder weights; embeddings are keyed by it"
    )
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    round = models.PositiveIntegerField(default=0, help_text="retraining round (0: the start)")
    is_active = models.BooleanField(default=False)
    trained_on = models.TextField(help_text="plain words on the data these weights have seen")
    is_official = models.BooleanField(default=False, help_text="one of Meta's released files")
    metrics = models.JSONField(default=dict, blank=True)
    config = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"],
                condition=models.Q(is_active=True),
                name="modelversion_at_most_one_active",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.model_type}{', active' if self.is_active else ''})"

    @property
    def embedding_key(self) -> str:
        """The embedding store's key for this version's image embeddings at the platform's
        precision (SAM_PRECISION): fp32 and bf16 embeddings never mix."""
        from engine.precision import embedding_key

        return embedding_key(self.encoder_key, settings.SAM_PRECISION)

    @property
    def checkpoint_path(self) -> Path:
        path = Path(self.checkpoint)
        return path if path.is_absolute() else Path(settings.CHECKPOINT_DIR) / path


class VersionDataset(models.Model):
    """A dataset whose data a version was trained on directly (the dataset of the training round
    that made it). A version's weights have also seen everything its ancestors were trained on:
    registry.visibility walks the parent links. Written by whoever trains (modeltrain); the
    dataset is a bare id so that the registry needs nothing above it."""

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="datasets")
    dataset_id = models.BigIntegerField()

    class Meta:
        ordering = ["version_id", "dataset_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["version", "dataset_id"], name="versiondataset_once_per_version"
            )
        ]

    def __str__(self) -> str:
        return f"version {self.version_id} trained on dataset {self.dataset_id}"


def relative_checkpoint(path: Path) -> str:
    """How a checkpoint path is stored: relative to CHECKPOINT_DIR when inside it, so the
    data directory can move; absolute otherwise."""
    path = Path(path).resolve()
    root = Path(settings.CHECKPOINT_DIR).resolve()
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
