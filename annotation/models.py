"""The annotation data model. Constraints that keep the data right live in the database."""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models


class Role(models.TextChoices):
    ANNOTATOR = "annotator"
    REVIEWER = "reviewer"
    ADMIN = "admin"


class Stage(models.IntegerChoices):
    """The paper's three data-engine stages."""

    ASSISTED_MANUAL = 1, "assisted-manual"
    SEMI_AUTOMATIC = 2, "semi-automatic"
    FULLY_AUTOMATIC = 3, "fully automatic"


class ImageStatus(models.TextChoices):
    PENDING = "pending", "waiting for annotation in its stage"
    DONE = "done", "annotated in its stage"
    SKIPPED = "skipped", "set aside by an annotator"


class EmbeddingStatus(models.TextChoices):
    NONE = "none"
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class MaskSource(models.TextChoices):
    MANUAL = "manual"
    MODEL_ASSISTED = "model_assisted"
    PREFILLED = "prefilled"
    AUTOMATIC = "automatic"
    IMPORTED = "imported"


class PrefillReview(models.TextChoices):
    """What an annotator did with a mask the model pre-filled (stage 2). A kept mask counts as
    kept, not as drawn by the annotator; an edited one keeps its ``prefilled`` source."""

    UNREVIEWED = "", "not reviewed"
    KEPT = "kept", "kept as the model made it"
    EDITED = "edited", "corrected by an annotator"


class Dataset(models.Model):
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Label(models.Model):
    """A class name a dataset's masks may carry (COCO's category). A mask has one label or none:
    class-agnostic masks, as in SA-1B, stay the default. ``external_id`` is the category id of the
    COCO file it came from, written back on export."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="labels")
    name = models.CharField(max_length=100)
    color = models.CharField(max_length=7, default="#1f77b4", help_text="#rrggbb")
    supercategory = models.CharField(max_length=100, blank=True)
    external_id = models.BigIntegerField(
        null=True, blank=True, help_text="category id in the source COCO file"
    )
    position = models.PositiveIntegerField(default=0, help_text="order in pickers; digit key")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["dataset_id", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "name"], name="label_unique_name"),
            models.UniqueConstraint(
                fields=["dataset", "external_id"],
                condition=models.Q(external_id__isnull=False),
                name="label_unique_external_id",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} in dataset {self.dataset_id}"


class DatasetMembership(models.Model):
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="dataset_memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.ANNOTATOR)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["dataset_id", "user_id"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "user"], name="membership_unique_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.dataset} ({self.role})"


class Image(models.Model):
    """A stored image. ``sha256`` hashes the file as imported (duplicates are found by it);
    ``content_sha256`` hashes the stored file, whose pixels the embedding is computed from (they
    differ when import applied EXIF orientation or a downscale)."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="images")
    file = models.CharField(max_length=500, help_text="path relative to MEDIA_ROOT")
    original_name = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64)
    content_sha256 = models.CharField(max_length=64)
    format = models.CharField(max_length=16)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    file_size = models.PositiveBigIntegerField()
    stage = models.PositiveSmallIntegerField(choices=Stage.choices, default=Stage.ASSISTED_MANUAL)
    status = models.CharField(max_length=16, choices=ImageStatus.choices, default="pending")
    held_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="held_images",
    )
    held_until = models.DateTimeField(null=True, blank=True)
    embedding_status = models.CharField(
        max_length=16, choices=EmbeddingStatus.choices, default=EmbeddingStatus.NONE
    )
    embedding_error = models.TextField(blank=True)
    encoder_key = models.CharField(
        max_length=128, blank=True, help_text="encoder key the embedding status refers to"
    )
    external_id = models.BigIntegerField(
        null=True, blank=True, help_text="image id in the source COCO file"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "sha256"], name="image_unique_hash"),
        ]
        indexes = [
            models.Index(fields=["dataset", "stage", "status", "created_at"]),
            models.Index(
                fields=["dataset", "external_id"],
                condition=models.Q(external_id__isnull=False),
                name="image_external_id_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.original_name} ({self.width}x{self.height})"


class AnnotatorSession(models.Model):
    """Time one annotator spent on one image; heartbeats count active seconds."""

    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="annotator_sessions"
    )
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="sessions")
    stage = models.PositiveSmallIntegerField(choices=Stage.choices)
    started_at = models.DateTimeField(auto_now_add=True)
    last_heartbeat_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    active_seconds = models.FloatField(default=0.0)
    masks_made = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["annotator", "image"],
                condition=models.Q(ended_at__isnull=True),
                name="session_one_open_per_annotator_image",
            )
        ]

    def __str__(self) -> str:
        return f"session {self.pk} of {self.annotator} on image {self.image_id}"


class Mask(models.Model):
    """One object mask as COCO RLE, with where it came from (SA-1B's per-annotation fields)."""

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="masks")
    rle = models.JSONField(help_text='COCO RLE {"size": [h, w], "counts": str}')
    bbox = models.JSONField(help_text="[x, y, w, h] computed from the RLE")
    area = models.PositiveIntegerField()
    source = models.CharField(max_length=16, choices=MaskSource.choices)
    stage = models.PositiveSmallIntegerField(choices=Stage.choices)
    predicted_iou = models.FloatField(null=True, blank=True)
    stability_score = models.FloatField(null=True, blank=True)
    point_coords = models.JSONField(null=True, blank=True, help_text="[[x, y]] (SA-1B)")
    crop_box = models.JSONField(null=True, blank=True, help_text="[x, y, w, h] (SA-1B)")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="masks",
    )
    model_version = models.ForeignKey(
        "registry.ModelVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="masks",
    )
    session = models.ForeignKey(
        AnnotatorSession, null=True, blank=True, on_delete=models.SET_NULL, related_name="masks"
    )
    seconds_spent = models.FloatField(default=0.0)
    client_id = models.UUIDField(null=True, blank=True)
    label = models.ForeignKey(
        Label, null=True, blank=True, on_delete=models.SET_NULL, related_name="masks"
    )
    iscrowd = models.BooleanField(default=False, help_text="COCO crowd region")
    external_id = models.BigIntegerField(
        null=True, blank=True, help_text="annotation id in the source COCO file"
    )
    version = models.PositiveIntegerField(
        default=1, help_text="raised by every change; an edit naming an older version is refused"
    )
    review = models.CharField(
        max_length=8, choices=PrefillReview.choices, default=PrefillReview.UNREVIEWED, blank=True
    )
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="reviewed_masks",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["image", "client_id"], name="mask_unique_client_id"),
            models.CheckConstraint(
                condition=models.Q(seconds_spent__gte=0), name="mask_seconds_not_negative"
            ),
        ]
        indexes = [
            # Per-label counts read only labelled masks; stage-3 masks stay unlabelled.
            models.Index(
                fields=["label"], condition=models.Q(label__isnull=False), name="mask_label_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"mask {self.pk} on image {self.image_id} ({self.source})"


class MaskPrompt(models.Model):
    """The clicks and box behind an accepted mask, in the order they were given, so retraining
    can replay real interactions."""

    mask = models.OneToOneField(Mask, on_delete=models.CASCADE, related_name="prompt")
    points = models.JSONField(default=list, help_text="[[x, y], ...] in click order")
    labels = models.JSONField(default=list, help_text="1 = foreground, 0 = background, per point")
    box = models.JSONField(null=True, blank=True, help_text="[x0, y0, x1, y1]")
    chosen_index = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="which of the multimask candidates was accepted"
    )

    def __str__(self) -> str:
        return f"prompt of mask {self.mask_id}: {len(self.points)} clicks"


class JobStatus(models.TextChoices):
    """The one lifecycle of every background job: queued → running → done, failed or cancelled.
    The last three are final (annotation.services.jobs writes them with conditional updates)."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class BackgroundJob(models.Model):
    """What every job a worker runs for someone records: its status, who asked, what went wrong,
    and when it was asked for, started and finished. Newest first. Every concrete subclass, in
    any app, is one kind of job for annotation.services.jobs (found through the app registry)."""

    Status = JobStatus
    ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)
    # The setting holding the hard time limit of the one task that runs a whole job (a job
    # running longer is lost, see annotation.services.jobs); None for a job run by many tasks.
    time_limit_setting: ClassVar[str | None] = "CELERY_TASK_TIME_LIMIT"

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["-created_at", "-id"]


class ImportJob(BackgroundJob):
    """An import of a folder or zip on the server, run by a cpu worker; the report is kept."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="import_jobs")
    path = models.CharField(max_length=1000)
    short_side = models.PositiveIntegerField(default=0)
    report = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"import {self.path} into {self.dataset} ({self.status})"


class Export(BackgroundJob):
    """An SA-1B or COCO export of a dataset's masks, written by a cpu worker under
    MEDIA_ROOT/exports/<id>/ (see annotation.services.exports)."""

    class Format(models.TextChoices):
        SA1B = "sa1b", "SA-1B tar shards"
        COCO = "coco", "COCO instances JSON"

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="exports")
    format = models.CharField(max_length=8, choices=Format.choices, default=Format.SA1B)
    filters = models.JSONField(default=dict, blank=True)
    shard_size = models.PositiveIntegerField(default=1000, help_text="images per tar shard")
    progress_done = models.PositiveIntegerField(default=0, help_text="images written")
    progress_total = models.PositiveIntegerField(default=0, help_text="images to write")
    output = models.CharField(max_length=1000, blank=True, help_text="folder of the files")
    report = models.JSONField(default=dict, blank=True, help_text="files, counts, skipped")

    def __str__(self) -> str:
        return f"{self.format} export {self.pk} of {self.dataset} ({self.status})"


class AutomaticPass(BackgroundJob):
    """The model segmenting a selection of images on its own: stage 3's fully automatic pass or
    stage 2's pre-fill. Each image is one gpu task; ``AutomaticPassImage`` rows record which are
    done, so a pass survives killed workers and can be resumed."""

    class Kind(models.TextChoices):
        AUTOMATIC = "automatic", "fully automatic (stage 3)"
        PREFILL = "prefill", "pre-fill of confident masks (stage 2)"

    time_limit_setting = None  # one task per image; a pass is resumed, never lost

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="automatic_passes")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    stage = models.PositiveSmallIntegerField(
        choices=Stage.choices, null=True, blank=True, help_text="the stage selected, if any"
    )
    config = models.JSONField(help_text="every AutomaticConfig field the pass runs with")
    model_version = models.ForeignKey(
        "registry.ModelVersion", on_delete=models.PROTECT, related_name="automatic_passes"
    )
    total_images = models.PositiveIntegerField(default=0)

    class Meta(BackgroundJob.Meta):
        verbose_name_plural = "automatic passes"

    def __str__(self) -> str:
        return f"{self.kind} pass {self.pk} on {self.dataset} ({self.status})"


class AutomaticPassImage(models.Model):
    """One image of a pass: pending until its masks are written (in the same transaction)."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DONE = "done"
        FAILED = "failed"

    automatic_pass = models.ForeignKey(
        AutomaticPass, on_delete=models.CASCADE, related_name="items"
    )
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="automatic_items")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    mask_count = models.PositiveIntegerField(default=0)
    runs = models.PositiveIntegerField(default=0, help_text="times its masks were written")
    error = models.TextField(blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["automatic_pass_id", "image_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["automatic_pass", "image"], name="automatic_item_unique_image"
            ),
        ]
        indexes = [models.Index(fields=["automatic_pass", "status"])]

    def __str__(self) -> str:
        return f"image {self.image_id} in pass {self.automatic_pass_id} ({self.status})"


class MaskTally(models.Model):
    """How many masks an image has per stage and model version (0: none), kept by database
    triggers on the mask table (annotation.services.tallies), so that the statistics read a few
    rows per image instead of every mask."""

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="mask_tallies")
    stage = models.PositiveSmallIntegerField(choices=Stage.choices)
    model_version_key = models.PositiveIntegerField(help_text="model version id, 0 for none")
    masks = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["image", "stage", "model_version_key"], name="mask_tally_unique_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.masks} masks on image {self.image_id} in stage {self.stage}"


class HumanMaskDay(models.Model):
    """Per dataset, stage and day (UTC) the masks were made: how many masks people made with a
    recorded time (sources manual and model_assisted, seconds_spent > 0) and their seconds,
    kept by the same triggers."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="human_mask_days")
    stage = models.PositiveSmallIntegerField(choices=Stage.choices)
    day = models.DateField()
    masks = models.PositiveIntegerField()
    seconds = models.FloatField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["dataset", "stage", "day"], name="human_mask_day_unique_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.masks} masks by people in {self.dataset_id} stage {self.stage} on {self.day}"


# The audit and quality-control models live in their own modules; importing them here
# registers them.
from annotation.audit_models import Audit, AuditImage, AuditItem  # noqa: E402, F401
from annotation.models_docs import ImageDoc  # noqa: E402, F401
from annotation.models_quality import (  # noqa: E402, F401
    AnnotatorDraw,
    AttemptKind,
    AttemptMask,
    DatasetQualitySettings,
    GroundTruthImage,
    GroundTruthMask,
    QualityAttempt,
)
