"""Audits of model-made masks, as the SA paper checked its automatic masks: draw a sample of a
dataset's images that carry model masks, copy those originals aside, let reviewers correct the
images with the ordinary annotation tools (keep, fix, delete, add what is missing), and compare
each original with what it became (annotation.services.audit_report).

Reviewers get the sample through ``next_audit_image`` (a hold of their own, like an annotator's
claim); while an audit is open its pending images are never handed to annotators
(``audit_held_images``, used by the claim), so audit work looks like any other review and
annotators cannot tell which images are audited.
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from annotation.models import (
    Audit,
    AuditImage,
    AuditItem,
    Dataset,
    DatasetMembership,
    Image,
    Mask,
    MaskSource,
    Role,
)
from annotation.services.access import User, role_in
from annotation.services.audit_report import build_report, review_image
from annotation.services.errors import Conflict, InvalidInput, NotAllowed
from registry.models import ModelVersion

MODEL_SOURCES = (MaskSource.AUTOMATIC, MaskSource.PREFILLED)
MAX_SAMPLE = 10_000
MAX_SEED = 2**63 - 1
AUDITOR_ROLES = (Role.REVIEWER, Role.ADMIN)


def can_audit(user: User, dataset: Dataset) -> bool:
    return role_in(user, dataset) in AUDITOR_ROLES


def require_auditor(user: User, dataset: Dataset, action: str) -> None:
    if not can_audit(user, dataset):
        raise NotAllowed(f"only reviewers and admins of dataset {dataset.name!r} may {action}")


def visible_audits(user: User) -> QuerySet[Audit]:
    """Audits of the datasets the user reviews or administers (all for staff); annotators and
    outsiders see none."""
    if not user.is_authenticated:
        return Audit.objects.none()
    if user.is_staff:
        return Audit.objects.all()
    audited = DatasetMembership.objects.filter(user=user, role__in=AUDITOR_ROLES).values("dataset")
    return Audit.objects.filter(dataset__in=audited)


def audit_held_images() -> QuerySet[AuditImage]:
    """Image ids held by open audits (pending sample images): annotators' claims skip them."""
    return AuditImage.objects.filter(
        audit__status=Audit.Status.OPEN, status=AuditImage.Status.PENDING
    ).values("image")


def _audited_masks(dataset: Dataset, source: str, model_version: ModelVersion | None):
    masks = Mask.objects.filter(image__dataset=dataset)
    masks = masks.filter(source=source) if source else masks.filter(source__in=MODEL_SOURCES)
    if model_version is not None:
        masks = masks.filter(model_version=model_version)
    return masks


def _check_options(source: Any, sample_size: Any, seed: Any) -> None:
    if source not in Audit.Source.values:
        raise InvalidInput(
            "source must be automatic, prefilled or empty (both)",
            field="source",
        )
    if isinstance(sample_size, bool) or not isinstance(sample_size, int):
        raise InvalidInput("sample_size must be a whole number", field="sample_size")
    if not 1 <= sample_size <= MAX_SAMPLE:
        raise InvalidInput(f"sample_size must be from 1 to {MAX_SAMPLE}", field="sample_size")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise InvalidInput(f"seed must be a whole number from 0 to {MAX_SEED}", field="seed")


def start_audit(
    dataset: Dataset,
    user: User,
    *,
    source: str = "",
    model_version: ModelVersion | None = None,
    sample_size: int,
    seed: int = 0,
) -> Audit:
    """Draw ``sample_size`` images (all, if fewer qualify) among ``dataset``'s images with
    masks of ``source`` (both model sources when empty) and ``model_version`` (any when None),
    and copy their originals. Images pending in another open audit are not drawn. The draw
    depends only on the seed and the candidates (sorted ids), so it can be repeated."""
    _check_options(source, sample_size, seed)
    with transaction.atomic():
        masks = _audited_masks(dataset, source, model_version).exclude(
            image__in=audit_held_images()
        )
        candidates = sorted(set(masks.values_list("image_id", flat=True)))
        if not candidates:
            raise Conflict(
                f"dataset {dataset.name!r} has no image with such model-made masks to audit "
                "(or they are all in open audits)"
            )
        drawn = random.Random(seed).sample(candidates, min(sample_size, len(candidates)))
        audit = Audit.objects.create(
            dataset=dataset,
            source=source,
            model_version=model_version,
            sample_size=sample_size,
            seed=seed,
            candidate_images=len(candidates),
            created_by=user if user.is_authenticated else None,
        )
        prior: dict[int, list[int]] = {image_id: [] for image_id in drawn}
        for image_id, mask_id in Mask.objects.filter(image_id__in=drawn).values_list(
            "image_id", "pk"
        ):
            prior[image_id].append(mask_id)
        entries = AuditImage.objects.bulk_create(
            AuditImage(audit=audit, image_id=image_id, position=k, prior_mask_ids=prior[image_id])
            for k, image_id in enumerate(drawn)
        )
        entry_of = {entry.image_id: entry for entry in entries}
        # Not ``masks``: the drawn images are the audit's own now, which that query excludes.
        originals = _audited_masks(dataset, source, model_version)
        originals = originals.filter(image_id__in=drawn).order_by("pk")
        AuditItem.objects.bulk_create(
            AuditItem(
                audit_image=entry_of[mask.image_id],
                mask_id=mask.pk,
                rle=mask.rle,
                bbox=mask.bbox,
                area=mask.area,
                source=mask.source,
                stage=mask.stage,
                model_version_id=mask.model_version_id,
                predicted_iou=mask.predicted_iou,
            )
            for mask in originals.iterator()
        )
        audit.report = build_report(audit)
        audit.save(update_fields=["report"])
    return audit


def _hold_deadline():
    return timezone.now() + timedelta(seconds=settings.IMAGE_HOLD_SECONDS)


def next_audit_image(audit: Audit, user: AbstractBaseUser) -> Image | None:
    """The sample image ``user`` holds (hold renewed), else the first pending one nobody holds,
    now held by ``user``; None when every image is reviewed or held by other reviewers."""
    if audit.status == Audit.Status.DONE:
        return None
    if audit.status != Audit.Status.OPEN:
        raise Conflict(f"audit {audit.pk} is {audit.status}: nothing left to review")
    now = timezone.now()
    pending = audit.images.filter(status=AuditImage.Status.PENDING)
    for _ in range(5):
        with transaction.atomic():
            entry = pending.filter(reviewer=user, held_until__gt=now).first()
            if entry is None:
                free = pending.filter(Q(reviewer__isnull=True) | Q(held_until__lte=now))
                entry = free.first()
                if entry is None:
                    return None
                claimed = free.filter(pk=entry.pk)
            else:
                claimed = pending.filter(pk=entry.pk, reviewer=user)
            if claimed.update(reviewer=user, held_until=_hold_deadline()) == 1:
                return entry.image
    raise Conflict("too many reviewers are claiming audit images at once; try again")


def finish_audit_image(audit: Audit, image: Image, user: AbstractBaseUser) -> AuditImage:
    """Mark a sample image reviewed: compare each original with what it is now, count the masks
    added since the draw, rewrite the report, and close the audit when it was the last image.
    Marking a reviewed image again changes nothing."""
    with transaction.atomic():
        entry = AuditImage.objects.select_for_update().filter(audit=audit, image=image).first()
        if entry is None:
            raise InvalidInput(f"image {image.pk} is not in audit {audit.pk}", field="image")
        if entry.status == AuditImage.Status.DONE:
            return entry
        if audit.status != Audit.Status.OPEN:
            raise Conflict(f"audit {audit.pk} is {audit.status}")
        held = (
            entry.reviewer_id == user.pk and entry.held_until and entry.held_until > timezone.now()
        )
        if not held and role_in(user, audit.dataset) != Role.ADMIN:
            raise Conflict(f"you do not hold image {image.pk} of audit {audit.pk}")
        review_image(entry)
        entry.status, entry.reviewed_at = AuditImage.Status.DONE, timezone.now()
        entry.reviewer, entry.held_until = user, None
        entry.save(update_fields=["status", "reviewed_at", "reviewer", "held_until"])
        audit.report = build_report(audit)
        fields = ["report"]
        if not audit.images.filter(status=AuditImage.Status.PENDING).exists():
            audit.status, audit.finished_at = Audit.Status.DONE, timezone.now()
            fields += ["status", "finished_at"]
        audit.save(update_fields=fields)
    return entry


def cancel_audit(audit: Audit) -> Audit:
    """Stop an open audit: its images go back to annotators' queues, its report stays as it
    was (partial) and no gate relies on it."""
    updated = Audit.objects.filter(pk=audit.pk, status=Audit.Status.OPEN).update(
        status=Audit.Status.CANCELLED, finished_at=timezone.now()
    )
    audit.refresh_from_db()
    if not updated:
        raise Conflict(f"audit {audit.pk} is {audit.status}, not open")
    return audit
