"""Quality control of annotators: ground-truth images with their frozen masks, the share of each
annotator's queue that is ground truth or double annotation, and the attempts annotators make on
those images. An attempt's masks live in their own table, never in the mask table, so that
exports, training, statistics and the mask tallies cannot see them."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from annotation.models import Dataset, Image, Stage


class DatasetQualitySettings(models.Model):
    """How much of each annotator's work checks quality: ``ground_truth_share`` of the images
    they are handed are ground-truth images; ``double_share`` of the images annotated in a stage
    go to a second annotator too."""

    dataset = models.OneToOneField(
        Dataset, on_delete=models.CASCADE, related_name="quality_settings"
    )
    ground_truth_share = models.FloatField(default=0.0, help_text="0..0.5")
    double_share = models.FloatField(default=0.0, help_text="0..1")
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "dataset quality settings"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ground_truth_share__gte=0, ground_truth_share__lte=0.5),
                name="quality_ground_truth_share_range",
            ),
            models.CheckConstraint(
                condition=models.Q(double_share__gte=0, double_share__lte=1),
                name="quality_double_share_range",
            ),
        ]

    def __str__(self) -> str:
        return f"quality settings of dataset {self.dataset_id}"


class GroundTruthImage(models.Model):
    """An image whose masks an admin reviewed and froze: copies of them, taken when it was
    marked, are the truth annotators are measured against (later edits do not move it)."""

    image = models.OneToOneField(Image, on_delete=models.CASCADE, related_name="ground_truth")
    stage = models.PositiveSmallIntegerField(choices=Stage.choices)
    marked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    marked_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["marked_at", "id"]

    def __str__(self) -> str:
        return f"ground truth of image {self.image_id}"


class GroundTruthMask(models.Model):
    ground_truth = models.ForeignKey(
        GroundTruthImage, on_delete=models.CASCADE, related_name="masks"
    )
    rle = models.JSONField()
    bbox = models.JSONField()
    area = models.PositiveIntegerField()
    source_mask_id = models.BigIntegerField(help_text="the dataset mask it was copied from")

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"truth mask {self.pk} of image {self.ground_truth_id}"


class AttemptKind(models.TextChoices):
    GROUND_TRUTH = "ground_truth", "a ground-truth image, measured against the truth"
    DOUBLE = "double", "a second annotation, measured against the first"


class QualityAttempt(models.Model):
    """One annotator's work on an image handed out to measure them: a ground-truth image or the
    second annotation of a doubled one. The image itself is not held nor changed; the attempt is
    the hold. The figures are filled when the annotator completes it."""

    kind = models.CharField(max_length=16, choices=AttemptKind.choices)
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="+")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="quality_attempts")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="quality_attempts",
        help_text="none yet: a doubled image waiting for its second annotator",
    )
    first_annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="double: who completed the image first",
    )
    stage = models.PositiveSmallIntegerField(choices=Stage.choices)
    started_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    released_at = models.DateTimeField(
        null=True, blank=True, help_text="given back unfinished: kept so late saves find it"
    )
    withdrawn_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="its ground truth was un-marked: kept, out of every figure",
    )
    reference_masks = models.PositiveIntegerField(default=0, help_text="truth / first masks")
    attempt_masks = models.PositiveIntegerField(default=0)
    matched = models.PositiveIntegerField(default=0, help_text="pairs at IoU >= 0.5")
    matched_above_90 = models.PositiveIntegerField(default=0, help_text="pairs at IoU > 0.90")
    iou_sum = models.FloatField(default=0.0, help_text="sum of the matched pairs' IoU")
    seconds = models.FloatField(default=0.0, help_text="seconds spent on the attempt's masks")

    class Meta:
        ordering = ["started_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["image", "annotator"], name="attempt_unique_annotator"),
            models.UniqueConstraint(
                fields=["image"],
                condition=models.Q(kind="double", released_at__isnull=True),
                name="attempt_one_double_per_image",
            ),
        ]
        indexes = [models.Index(fields=["dataset", "kind", "completed_at"])]

    def __str__(self) -> str:
        return f"{self.kind} attempt of {self.annotator_id} on image {self.image_id}"


class AttemptMask(models.Model):
    """A mask an annotator drew in an attempt. The API shows it with id ATTEMPT_MASK_ID_BASE +
    its id, so its ids never meet those of the dataset's masks."""

    attempt = models.ForeignKey(QualityAttempt, on_delete=models.CASCADE, related_name="masks")
    rle = models.JSONField()
    bbox = models.JSONField()
    area = models.PositiveIntegerField()
    source = models.CharField(max_length=16)
    seconds_spent = models.FloatField(default=0.0)
    client_id = models.UUIDField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["attempt", "client_id"], name="attempt_mask_unique_client_id"
            ),
        ]

    def __str__(self) -> str:
        return f"attempt mask {self.pk} of attempt {self.attempt_id}"


class AnnotatorDraw(models.Model):
    """How many images one annotator was handed in a dataset while quality checks were on: the
    count that, hashed, decides whether the next one is a ground-truth image (reproducible)."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="+")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    claims = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["dataset", "annotator"], name="draw_unique_annotator")
        ]

    def __str__(self) -> str:
        return f"{self.claims} claims of {self.annotator_id} in dataset {self.dataset_id}"
