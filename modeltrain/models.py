"""Model versions: which SAM weights answer predictions and what they were trained on."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.db import models

from annotation.models import BackgroundJob


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
    def checkpoint_path(self) -> Path:
        path = Path(self.checkpoint)
        return path if path.is_absolute() else Path(settings.CHECKPOINT_DIR) / path


def relative_checkpoint(path: Path) -> str:
    """How a checkpoint path is stored: relative to CHECKPOINT_DIR when inside it, so the
    data directory can move; absolute otherwise."""
    path = Path(path).resolve()
    root = Path(settings.CHECKPOINT_DIR).resolve()
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


class ImageSplit(models.Model):
    """Whether an image is held out for evaluation. Decided once per image, the first time a
    round sees its dataset, and never changed: a held-out image is never trained on, and an
    image trained on never becomes held-out (even when the held-out fraction setting changes)."""

    image = models.OneToOneField(
        "annotation.Image", on_delete=models.CASCADE, related_name="training_split"
    )
    dataset = models.ForeignKey(
        "annotation.Dataset", on_delete=models.CASCADE, related_name="image_splits"
    )
    heldout = models.BooleanField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["image_id"]
        indexes = [models.Index(fields=["dataset", "heldout"])]

    def __str__(self) -> str:
        return f"image {self.image_id}: {'held out' if self.heldout else 'training'}"


class TrainingRound(BackgroundJob):
    """One retraining round on one dataset: export, train, evaluate, then maybe promote. The
    version it makes exists only once it has succeeded; a failed, cancelled or interrupted round
    leaves no version behind and never changes the active one."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"
        CANCELLED = "cancelled"

    class Trigger(models.TextChoices):
        MANUAL = "manual", "launched by an admin (admin page, API or command)"
        NIGHTLY = "nightly", "the nightly schedule"

    class Promotion(models.TextChoices):
        AUTO = "auto", "promote when held-out metrics beat the active version's"
        ALWAYS = "always", "always promote"
        NEVER = "never", "never promote (an admin decides)"

    dataset = models.ForeignKey(
        "annotation.Dataset", on_delete=models.CASCADE, related_name="training_rounds"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.MANUAL)
    promotion = models.CharField(max_length=16, choices=Promotion.choices, default=Promotion.AUTO)
    config = models.JSONField(default=dict, help_text="modeltrain.training.TrainConfig fields")
    parent = models.ForeignKey(
        ModelVersion,
        on_delete=models.PROTECT,
        related_name="rounds_started",
        help_text="the version training starts from (the active one at launch)",
    )
    result = models.OneToOneField(
        ModelVersion,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="training_round",
        help_text="the version this round made",
    )
    step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0)
    loss = models.FloatField(null=True, blank=True, help_text="mean loss of the last steps")
    eta_seconds = models.FloatField(null=True, blank=True)
    phase = models.CharField(max_length=32, blank=True, help_text="export, train, evaluate")
    data_until = models.DateTimeField(
        null=True, blank=True, help_text="masks changed up to this time were exported"
    )
    train_images = models.PositiveIntegerField(default=0)
    train_masks = models.PositiveIntegerField(default=0)
    heldout_images = models.PositiveIntegerField(default=0)
    heldout_masks = models.PositiveIntegerField(default=0)
    baseline_metrics = models.JSONField(
        default=dict, blank=True, help_text="the version active at evaluation, same held-out set"
    )
    promoted = models.BooleanField(default=False)
    decision = models.TextField(blank=True, help_text="why the new version was (not) promoted")

    class Meta(BackgroundJob.Meta):
        indexes = [models.Index(fields=["dataset", "status"])]
        constraints = [
            # One round at a time per dataset, even when two launches race.
            models.UniqueConstraint(
                fields=["dataset"],
                condition=models.Q(status__in=["queued", "running"]),
                name="traininground_one_active_per_dataset",
            )
        ]

    def __str__(self) -> str:
        return f"training round {self.pk} on {self.dataset} ({self.status})"
