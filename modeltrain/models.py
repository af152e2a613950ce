"""Training records: which images are held out, and the retraining rounds (each makes a
registry.ModelVersion)."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from annotation.models import BackgroundJob
from registry import visibility
from registry.models import ModelVersion


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

    time_limit_setting = "TRAINING_TASK_TIME_LIMIT"

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


# The registry decides who may see a version from the datasets it was trained on
# (registry.visibility); a round tells it, whichever way the round was written.
@receiver(post_save, sender=TrainingRound)
def _round_saved(sender: type, instance: TrainingRound, **kwargs: Any) -> None:
    if instance.result_id is not None:
        visibility.record_trained_on(instance.result_id, instance.dataset_id)


@receiver(post_delete, sender=TrainingRound)
def _round_deleted(sender: type, instance: TrainingRound, **kwargs: Any) -> None:
    if instance.result_id is not None:
        visibility.forget_trained_on(instance.result_id, instance.dataset_id)
