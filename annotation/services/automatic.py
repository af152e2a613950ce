"""Automatic passes: the model segmenting images on its own, stage 3's fully automatic pass and
stage 2's pre-fill.

A pass is one gpu task per image, so a killed worker loses at most the image it was on (late
acknowledgement gives that message to the next worker); the images are queued a chunk at a
time (``run_automatic_pass``), so a pass over millions of images is not millions of messages.
Each image's work is idempotent: one transaction replaces the masks this model version wrote
with this pass's source on that image and marks the image done in the pass, so a redelivered or
repeated task never duplicates a mask and never touches masks people drew, imported masks or
another version's masks.

Reviewed work is never overwritten: a model mask a person kept or fixed stays (only the model's
unreviewed masks are replaced), a new mask overlapping a reviewed or drawn mask beyond the pass's
NMS threshold is dropped as a duplicate of it, and an image a person marked done gets no mask (a
new unreviewed one would put it back in review). The launch reports what it leaves alone.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, IntegerField, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from annotation.models import (
    AutomaticPass,
    AutomaticPassImage,
    Dataset,
    DatasetMembership,
    Image,
    ImageStatus,
    Mask,
    Role,
)
from annotation.services.access import User
from annotation.services.automatic_config import DEFAULT_PRESET, config_from_json
from annotation.services.automatic_plan import (
    PEOPLE_SOURCES,
    REVIEWED,
    SOURCE,
    plan_automatic_pass,
)
from annotation.services.embeddings import get_or_compute_embedding
from annotation.services.errors import Conflict, InvalidInput
from annotation.services.jobs import TRANSIENT_ERRORS
from annotation.services.masks import mask_geometry
from annotation.services.queueing import queue_task
from annotation.services.sa1b_docs import refresh_docs
from annotation.services.storage import image_path
from engine import AutomaticMask, AutomaticMaskGenerator
from engine import rle as rle_codec
from engine.images import load_image
from registry.models import ModelVersion
from registry.predictors import get_predictor

logger = logging.getLogger(__name__)

Kind, Status, ItemStatus = AutomaticPass.Kind, AutomaticPass.Status, AutomaticPassImage.Status
ACTIVE = (Status.QUEUED, Status.RUNNING)


def launch_automatic_pass(
    dataset: Dataset,
    user: AbstractBaseUser,
    kind: str,
    image_ids: Iterable[int] | None = None,
    config: dict | None = None,
    stage: int | None = None,
    *,
    preset: str = DEFAULT_PRESET,
    whole_dataset: bool = False,
) -> AutomaticPass:
    """Record a pass of the active model over images of ``dataset`` and queue it (the view has
    checked that ``user``, who is recorded as its author, administers the dataset).

    The images are ``image_ids`` (all in the dataset, or the whole request is rejected), else
    every image of the dataset with ``whole_dataset``, else every image in ``stage``, by
    default stage 3 for kind automatic and stage 2 for prefill. ``preset`` (a name of PRESETS)
    and then ``config`` override fields of the kind's preset (AutomaticConfig.paper() /
    .prefill()).

    Images a person marked done are left out of the pass (InvalidInput when that leaves none);
    the returned pass carries ``left_alone`` (a LeftAlone over the selection) for the answer.
    """
    plan = plan_automatic_pass(
        dataset, kind, image_ids, config, stage, preset=preset, whole_dataset=whole_dataset
    )
    if not plan.to_process:
        raise InvalidInput(
            f"all {len(plan.selected)} selected images were marked done by people; a pass "
            "leaves reviewed images alone (move them back to pending to segment them again)",
            done_images=len(plan.selected),
        )
    with transaction.atomic():
        run = AutomaticPass.objects.create(
            dataset=dataset,
            kind=kind,
            stage=plan.stage,
            config=plan.config,
            model_version=plan.version,
            total_images=len(plan.to_process),
            created_by=user,
        )
        AutomaticPassImage.objects.bulk_create(
            [AutomaticPassImage(automatic_pass=run, image_id=pk) for pk in plan.to_process],
            batch_size=1000,
        )
        queue_task("annotation.run_automatic_pass", run.pk)
    run.left_alone = plan.left_alone
    return run


def run_automatic_pass(pass_id: int, after: int = 0) -> int:
    """Queue the next chunk of the pass's images not done yet (ids above ``after``, at most
    ``AUTOMATIC_PASS_QUEUE_CHUNK``), then, if images remain beyond it, this same step again
    behind them; returns how many images were queued.

    The queue is first in, first out, so the next step runs once workers have taken the chunk
    before it: the broker holds about one chunk per pass, not one message per image of the
    pass, and a cancel stops the queueing at the next chunk.

    Safe to call again (a redelivered message, a resume from ``after=0``): done images are not
    queued, and an image queued twice is written once more, not duplicated."""
    run = AutomaticPass.objects.filter(pk=pass_id).first()
    if run is None or run.status not in ACTIVE:
        return 0
    AutomaticPass.objects.filter(pk=run.pk, status=Status.QUEUED).update(
        status=Status.RUNNING, started_at=timezone.now()
    )
    chunk = int(settings.AUTOMATIC_PASS_QUEUE_CHUNK)
    pending = list(
        run.items.filter(status=ItemStatus.PENDING, image_id__gt=after)
        .order_by("image_id")
        .values_list("image_id", flat=True)[: chunk + 1]
    )
    queued, more = pending[:chunk], len(pending) > chunk
    for image_id in queued:  # called from a task, outside any transaction: queue now
        queue_task("annotation.automatic_pass_image", run.pk, image_id, after_commit=False)
    if more:
        queue_task("annotation.run_automatic_pass", run.pk, queued[-1], after_commit=False)
    elif not queued:
        finish_if_complete(run.pk)
    return len(queued)


def run_pass_image(pass_id: int, image_id: int, *, force: bool = False) -> str:
    """Segment one image of a pass and store its masks; returns what happened ("done",
    "failed", "skipped": already done or the pass is no longer active, "gone": deleted).
    ``force`` runs the image even when it is done or the pass is over (its masks are replaced).
    """
    item = (
        AutomaticPassImage.objects.select_related("automatic_pass__model_version", "image")
        .filter(automatic_pass_id=pass_id, image_id=image_id)
        .first()
    )
    if item is None:  # the image (or the pass) was deleted since it was queued
        finish_if_complete(pass_id)
        return "gone"
    run = item.automatic_pass
    if not force and (run.status not in ACTIVE or item.status == ItemStatus.DONE):
        return "skipped"
    try:
        masks = generate_masks(item.image, run)
    except TRANSIENT_ERRORS:
        raise  # the task retries the image later
    except Exception as exc:  # one unreadable image must not stop the pass, and must show
        message = f"{exc.__class__.__name__}: {exc}"[:2000]
        logger.warning("automatic pass %s failed on image %s: %s", pass_id, image_id, message)
        AutomaticPassImage.objects.filter(pk=item.pk, status=ItemStatus.PENDING).update(
            status=ItemStatus.FAILED, error=message, finished_at=timezone.now()
        )
        finish_if_complete(pass_id)
        return "failed"
    store_pass_masks(item, masks)
    if run.kind == AutomaticPass.Kind.AUTOMATIC:
        # Stage 3's masks are written and checked once more, as the image's SA-1B document the
        # export copies (nobody edits them); after the commit, and never failing the image.
        refresh_docs([image_id])
    finish_if_complete(pass_id)
    return "done"


def generate_masks(image: Image, run: AutomaticPass) -> list[AutomaticMask]:
    """The generator's masks for one image, with the pass's model version and config; the
    whole-image crop reuses the cached embedding."""
    version = run.model_version
    predictor = get_predictor(version.pk)
    embedding, _ = get_or_compute_embedding(image, version)
    pixels = load_image(
        image_path(image), max_pixels=max(settings.IMPORT_MAX_PIXELS, image.width * image.height)
    ).array
    generator = AutomaticMaskGenerator(predictor, config_from_json(run.config))
    return generator.generate(pixels, embedding=embedding)


def store_pass_masks(item: AutomaticPassImage, masks: list[AutomaticMask]) -> int:
    """Replace the unreviewed masks of the pass's source and model version on the item's image
    with ``masks`` and mark the item done, all in one transaction; returns how many were stored.

    Reviewed masks stay and new masks duplicating a mask that stays are dropped; on an image a
    person marked done since the launch nothing is written."""
    run = item.automatic_pass
    source = SOURCE[run.kind]
    with transaction.atomic():
        # Locks the item (PostgreSQL), so two deliveries of one image take turns.
        locked = AutomaticPassImage.objects.select_for_update().get(pk=item.pk)
        image = Image.objects.only("pk", "stage", "status", "width", "height").get(
            pk=locked.image_id
        )
        if image.status == ImageStatus.DONE:
            masks = []
        else:
            Mask.objects.filter(
                image=image, source=source, model_version=run.model_version
            ).exclude(REVIEWED).delete()
            masks = _without_duplicates(image, masks, config_from_json(run.config).box_nms_thresh)
        rows = _mask_rows(image, masks, source, run.model_version)
        Mask.objects.bulk_create(rows, batch_size=500)
        stored = len(rows)
        AutomaticPassImage.objects.filter(pk=locked.pk).update(
            status=ItemStatus.DONE,
            mask_count=stored,
            runs=locked.runs + 1,
            error="",
            finished_at=timezone.now(),
        )
    return stored


def _mask_rows(
    image: Image, masks: list[AutomaticMask], source: str, version: ModelVersion | None
) -> list[Mask]:
    """The pass's non-empty masks as rows, each with the area and box of its own RLE.

    The generator's box follows Meta's reference ([x, y, w, h] with x + w the last column, one
    short of the tight box); every other way in stores the RLE's tight box (pycocotools'
    ``toBbox``), and readers that check stored rows (exports, training data, ``check_masks``)
    compare the two, so a pass storing the generator's box had every mask refused there."""
    rows = []
    for mask in masks:
        if mask.area == 0:
            continue
        try:
            rle, bbox, area = mask_geometry(image, mask.segmentation)
        except InvalidInput as exc:  # the engine's own RLE: never expected
            logger.error("automatic mask of image %s not stored: %s", image.pk, exc)
            continue
        rows.append(
            Mask(
                image=image,
                rle=rle,
                bbox=bbox,
                area=area,
                source=source,
                stage=image.stage,
                predicted_iou=mask.predicted_iou,
                stability_score=mask.stability_score,
                point_coords=mask.point_coords,
                crop_box=mask.crop_box,
                model_version=version,
            )
        )
    return rows


def _without_duplicates(
    image: Image, masks: list[AutomaticMask], threshold: float
) -> list[AutomaticMask]:
    """``masks`` less those overlapping a mask people reviewed or drew on ``image`` by more than
    ``threshold`` (mask IoU; the pass's NMS threshold, the overlap at which the generator calls
    two of its own masks one), so a kept mask is not proposed again beside itself."""
    reviewed = Q(source__in=PEOPLE_SOURCES) | REVIEWED
    staying = list(Mask.objects.filter(reviewed, image=image).values_list("rle", flat=True))
    fresh = [mask for mask in masks if mask.area > 0]
    if not staying or not fresh:
        return fresh
    overlap = rle_codec.iou_matrix([mask.segmentation for mask in fresh], staying)
    return [mask for mask, row in zip(fresh, overlap, strict=True) if not (row > threshold).any()]


def finish_if_complete(pass_id: int) -> bool:
    """Mark the pass done (or failed, when every image failed) once no image is pending.

    Called after each image's transaction has committed, so of two images finishing at once
    the later check sees both."""
    items = AutomaticPassImage.objects.filter(automatic_pass_id=pass_id)
    if items.filter(status=ItemStatus.PENDING).exists():
        return False
    total = items.count()
    failed = items.filter(status=ItemStatus.FAILED).order_by("image_id")
    n_failed = failed.count()
    error = ""
    if n_failed:
        first = failed.first()
        error = f"{n_failed} of {total} images failed; image {first.image_id}: {first.error}"
    status = Status.FAILED if total and n_failed == total else Status.DONE
    return bool(
        AutomaticPass.objects.filter(pk=pass_id, status__in=ACTIVE).update(
            status=status, error=error[:4000], finished_at=timezone.now()
        )
    )


def cancel_automatic_pass(run: AutomaticPass) -> AutomaticPass:
    """Stop a queued or running pass: images not started are skipped; masks already written
    stay (launch the pass again, or delete them, to undo)."""
    updated = AutomaticPass.objects.filter(pk=run.pk, status__in=ACTIVE).update(
        status=Status.CANCELLED, finished_at=timezone.now()
    )
    if not updated:
        raise Conflict(f"pass {run.pk} is {run.status}; only queued or running passes stop")
    return with_progress(AutomaticPass.objects.filter(pk=run.pk)).get()


def resume_automatic_pass(run: AutomaticPass) -> AutomaticPass:
    """Queue again the images of a pass that are not done (failed ones included), e.g. after a
    cancel, failures that were fixed, or messages lost with a broker."""
    with transaction.atomic():
        run.items.filter(status=ItemStatus.FAILED).update(status=ItemStatus.PENDING, error="")
        if not run.items.filter(status=ItemStatus.PENDING).exists():
            raise Conflict(f"every image of pass {run.pk} is done; launch a new pass to redo it")
        AutomaticPass.objects.filter(pk=run.pk).update(
            status=Status.RUNNING, error="", finished_at=None
        )
        queue_task("annotation.run_automatic_pass", run.pk)
    return with_progress(AutomaticPass.objects.filter(pk=run.pk)).get()


def visible_passes(user: User) -> QuerySet[AutomaticPass]:
    """Passes of the datasets the user administers (all for staff), with their progress."""
    if not user.is_authenticated:
        return AutomaticPass.objects.none()
    passes = AutomaticPass.objects.all()
    if not user.is_staff:
        administered = DatasetMembership.objects.filter(user=user, role=Role.ADMIN)
        passes = passes.filter(dataset__in=administered.values("dataset"))
    return with_progress(passes)


def with_progress(passes: QuerySet[AutomaticPass]) -> QuerySet[AutomaticPass]:
    """Annotate done_images, failed_images and mask_count (counted from the per-image rows, the
    one place progress is written)."""
    return passes.select_related("model_version").annotate(
        done_images=Count("items", filter=Q(items__status=ItemStatus.DONE)),
        failed_images=Count("items", filter=Q(items__status=ItemStatus.FAILED)),
        mask_count=Coalesce(
            Sum("items__mask_count", filter=Q(items__status=ItemStatus.DONE)),
            Value(0),
            output_field=IntegerField(),
        ),
    )
