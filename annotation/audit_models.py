"""Audits of model-made masks (issue 18): a sample of a dataset's images whose model masks
reviewers correct, the originals kept beside the corrections. Imported by annotation.models, so
they are the annotation app's models; kept apart because they are a feature of their own."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from annotation.models import Dataset, Image, MaskSource, Stage


class Audit(models.Model):
    """An audit of a dataset's model-made masks: which masks (``source`` and/or
    ``model_version``; empty: every model-made mask), how many images, the seed of the draw,
    and the report (annotation.services.audits), rewritten whenever an image is reviewed."""

    class Status(models.TextChoices):
        OPEN = "open", "reviewers are working on the sample"
        DONE = "done", "every sampled image reviewed"
        CANCELLED = "cancelled"

    class Source(models.TextChoices):
        BOTH = "", "automatic and pre-filled masks"
        AUTOMATIC = MaskSource.AUTOMATIC.value, "stage-3 automatic masks"
        PREFILLED = MaskSource.PREFILLED.value, "stage-2 pre-filled masks"

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="audits")
    source = models.CharField(
        max_length=16, choices=Source.choices, blank=True, default=Source.BOTH
    )
    model_version = models.ForeignKey(
        "registry.ModelVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="audits",
    )
    sample_size = models.PositiveIntegerField(help_text="images asked for")
    seed = models.BigIntegerField(default=0)
    candidate_images = models.PositiveIntegerField(default=0, help_text="images it drew from")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    report = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"audit {self.pk} of {self.dataset} ({self.status})"


class AuditImage(models.Model):
    """One sampled image: pending until a reviewer marks it reviewed. ``prior_mask_ids`` are
    every mask the image had when it was drawn: masks beyond them are objects the reviewer
    added (the model's misses)."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DONE = "done"

    audit = models.ForeignKey(Audit, on_delete=models.CASCADE, related_name="images")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="audit_entries")
    position = models.PositiveIntegerField(help_text="order of the draw")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    held_until = models.DateTimeField(null=True, blank=True)
    prior_mask_ids = models.JSONField(default=list)
    added_mask_ids = models.JSONField(default=list)
    reviewed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["audit_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["audit", "image"], name="audit_image_unique"),
        ]
        indexes = [models.Index(fields=["audit", "status"])]

    def __str__(self) -> str:
        return f"image {self.image_id} in audit {self.audit_id} ({self.status})"


class AuditItem(models.Model):
    """One original mask of a sampled image, copied when it was drawn (the mask itself may be
    edited or deleted since), with the outcome of the review once the image is reviewed."""

    class Outcome(models.TextChoices):
        PENDING = "", "not reviewed yet"
        KEPT = "kept", "unchanged"
        FIXED = "fixed", "corrected"
        DELETED = "deleted", "removed as wrong"

    audit_image = models.ForeignKey(AuditImage, on_delete=models.CASCADE, related_name="items")
    mask_id = models.BigIntegerField(help_text="the original mask's id (no key: it may go)")
    rle = models.JSONField()
    bbox = models.JSONField()
    area = models.PositiveIntegerField()
    source = models.CharField(max_length=16, choices=MaskSource.choices)
    stage = models.PositiveSmallIntegerField(choices=Stage.choices)
    model_version = models.ForeignKey(
        "registry.ModelVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    predicted_iou = models.FloatField(null=True, blank=True)
    outcome = models.CharField(max_length=8, choices=Outcome.choices, default="", blank=True)
    iou = models.FloatField(null=True, blank=True)
    boundary_iou = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["audit_image_id", "mask_id"]
        constraints = [
            models.UniqueConstraint(fields=["audit_image", "mask_id"], name="audit_item_unique"),
        ]

    def __str__(self) -> str:
        return f"mask {self.mask_id} in {self.audit_image}"
