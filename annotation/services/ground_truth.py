"""Ground truth and the quality settings of a dataset: admins freeze the reviewed masks of some
images as the truth annotators are measured against, and say how much of each annotator's
queue checks quality (annotation.services.quality_claims hands those images out)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from annotation.models import (
    AttemptKind,
    Dataset,
    DatasetQualitySettings,
    GroundTruthImage,
    GroundTruthMask,
    Image,
    ImageStatus,
    Mask,
    QualityAttempt,
)
from annotation.services.errors import InvalidInput

MAX_GROUND_TRUTH_SHARE = 0.5
MAX_MARKED_AT_ONCE = 1000


def quality_settings(dataset: Dataset) -> dict[str, Any]:
    """The dataset's shares (0 for both when never set)."""
    row = DatasetQualitySettings.objects.filter(dataset=dataset).first()
    return {
        "ground_truth_share": row.ground_truth_share if row else 0.0,
        "double_share": row.double_share if row else 0.0,
        "updated_at": row.updated_at if row else None,
    }


def update_quality_settings(
    dataset: Dataset,
    user: AbstractBaseUser,
    *,
    ground_truth_share: float | None = None,
    double_share: float | None = None,
) -> dict[str, Any]:
    """Set either share (the other keeps its value). InvalidInput naming the field when a share
    is not a finite number in its range."""
    _check_share("ground_truth_share", ground_truth_share, MAX_GROUND_TRUTH_SHARE)
    _check_share("double_share", double_share, 1.0)
    changes: dict[str, Any] = {"updated_by": user}
    if ground_truth_share is not None:
        changes["ground_truth_share"] = float(ground_truth_share)
    if double_share is not None:
        changes["double_share"] = float(double_share)
    DatasetQualitySettings.objects.update_or_create(dataset=dataset, defaults=changes)
    return quality_settings(dataset)


def _check_share(name: str, value: float | None, maximum: float) -> None:
    if value is None:
        return
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidInput(f"{name} must be a number from 0 to {maximum}", field=name)
    if not 0 <= value <= maximum:
        raise InvalidInput(f"{name} must be from 0 to {maximum}, got {value}", field=name)


def _image_ids(image_ids: Iterable[int], verb: str) -> list[int]:
    """The distinct ids, sorted; InvalidInput when there are none or too many to ``verb``."""
    ids = sorted(set(image_ids))
    if not ids:
        raise InvalidInput("give at least one image id", field="image_ids")
    if len(ids) > MAX_MARKED_AT_ONCE:
        raise InvalidInput(f"{verb} at most {MAX_MARKED_AT_ONCE} images at once", field="image_ids")
    return ids


def mark_ground_truth(
    dataset: Dataset, user: AbstractBaseUser, image_ids: Iterable[int]
) -> list[GroundTruthImage]:
    """Freeze the current masks of these images of ``dataset`` as ground truth: the masks are
    copied (later edits of the dataset's masks do not move the truth), and each image is set
    done in its stage so that nobody annotates it further as ordinary work. All or nothing:
    an id not in the dataset, an image without masks or one already marked rejects the call."""
    ids = _image_ids(image_ids, "mark")
    with transaction.atomic():
        images = {
            image.pk: image
            for image in Image.objects.select_for_update().filter(dataset=dataset, pk__in=ids)
        }
        missing = [pk for pk in ids if pk not in images]
        if missing:
            raise InvalidInput(
                f"images {missing[:20]} are not in dataset {dataset.name!r}", field="image_ids"
            )
        marked = list(
            GroundTruthImage.objects.filter(image_id__in=ids).values_list("image_id", flat=True)
        )
        if marked:
            raise InvalidInput(
                f"images {sorted(marked)[:20]} are ground truth already", field="image_ids"
            )
        masks_by_image: dict[int, list[Mask]] = {pk: [] for pk in ids}
        for mask in Mask.objects.filter(image_id__in=ids).order_by("pk"):
            masks_by_image[mask.image_id].append(mask)
        empty = [pk for pk, masks in masks_by_image.items() if not masks]
        if empty:
            raise InvalidInput(
                f"images {empty[:20]} have no masks to freeze as ground truth", field="image_ids"
            )
        created = []
        for pk in ids:
            truth = GroundTruthImage.objects.create(
                image=images[pk], stage=images[pk].stage, marked_by=user
            )
            GroundTruthMask.objects.bulk_create(
                GroundTruthMask(
                    ground_truth=truth,
                    rle=mask.rle,
                    bbox=mask.bbox,
                    area=mask.area,
                    source_mask_id=mask.pk,
                )
                for mask in masks_by_image[pk]
            )
            created.append(truth)
        Image.objects.filter(pk__in=ids).update(
            status=ImageStatus.DONE, held_by=None, held_until=None
        )
    return created


def unmark_ground_truth(
    dataset: Dataset, user: AbstractBaseUser, image_ids: Iterable[int]
) -> list[dict[str, Any]]:
    """Withdraw the ground truth of these images of ``dataset`` (a truth found wrong, or
    marked by mistake): the frozen copies go; the image and its dataset masks stay as they are.
    Every measurement against the truth is kept but withdrawn (``withdrawn_at``: out of the
    accuracy figures, which it would falsify); an attempt still open is released as well, so
    the annotator's late saves are refused rather than stored among the dataset's masks, and
    nobody is handed the image as a check any more. All or nothing: an id not in the dataset,
    or of an image that is not ground truth, rejects the call. Returns, per image, how many
    attempts were withdrawn."""
    ids = _image_ids(image_ids, "un-mark")
    with transaction.atomic():
        truths = {
            truth.image_id: truth
            for truth in GroundTruthImage.objects.select_for_update().filter(
                image__dataset=dataset, image_id__in=ids
            )
        }
        missing = [pk for pk in ids if pk not in truths]
        if missing:
            raise InvalidInput(
                f"images {missing[:20]} are not ground truth of dataset {dataset.name!r}",
                field="image_ids",
            )
        now = timezone.now()
        attempts = QualityAttempt.objects.filter(
            image_id__in=ids, kind=AttemptKind.GROUND_TRUTH, withdrawn_at__isnull=True
        )
        withdrawn = dict(
            attempts.values("image_id")
            .annotate(n=Count("pk"))
            .values_list("image_id", "n")
            .order_by()
        )
        attempts.filter(completed_at__isnull=True, released_at__isnull=True).update(released_at=now)
        attempts.update(withdrawn_at=now)
        GroundTruthImage.objects.filter(pk__in=[truth.pk for truth in truths.values()]).delete()
    return [{"image": pk, "attempts_withdrawn": withdrawn.get(pk, 0)} for pk in ids]


def ground_truth_images(dataset: Dataset) -> list[dict[str, Any]]:
    """The dataset's ground-truth images with how many masks their truth has and how many
    annotators completed them."""
    rows = (
        GroundTruthImage.objects.filter(image__dataset=dataset)
        .annotate(
            truth_masks=Count("masks", distinct=True),
            attempts_done=Count(
                "image__quality_attempts",
                filter=Q(
                    image__quality_attempts__kind=AttemptKind.GROUND_TRUTH,
                    image__quality_attempts__completed_at__isnull=False,
                    image__quality_attempts__withdrawn_at__isnull=True,
                ),
                distinct=True,
            ),
        )
        .select_related("marked_by")
        .order_by("marked_at", "pk")
    )
    return [
        {
            "image": row.image_id,
            "stage": row.stage,
            "truth_masks": row.truth_masks,
            "attempts_done": row.attempts_done,
            "marked_by": row.marked_by.get_username() if row.marked_by else None,
            "marked_at": row.marked_at,
        }
        for row in rows
    ]
