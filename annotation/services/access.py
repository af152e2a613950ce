"""Who may see and change what. Staff users administer everything; everyone else sees only the
datasets they are members of (other datasets answer 404, not 403, so their existence does not
leak), and a dataset's admins import, change stages and manage members."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Q, QuerySet

from annotation.models import (
    AnnotatorSession,
    Dataset,
    DatasetMembership,
    Image,
    ImportJob,
    Mask,
    MaskSource,
    Role,
)
from annotation.services.errors import NotAllowed

User = AbstractBaseUser | AnonymousUser


def visible_datasets(user: User) -> QuerySet[Dataset]:
    if not user.is_authenticated:
        return Dataset.objects.none()
    if user.is_staff:
        return Dataset.objects.all()
    return Dataset.objects.filter(memberships__user=user)


def member_dataset_ids(user: User) -> set[int] | None:
    """The ids of the datasets ``user`` is a member of, None for staff (every dataset): how the
    registry is told whose model versions a user may see (registry.visibility)."""
    if user.is_authenticated and user.is_staff:
        return None
    if not user.is_authenticated:
        return set()
    return set(DatasetMembership.objects.filter(user=user).values_list("dataset_id", flat=True))


def visible_images(user: User) -> QuerySet[Image]:
    return Image.objects.filter(dataset__in=visible_datasets(user))


def visible_masks(user: User) -> QuerySet[Mask]:
    return Mask.objects.filter(image__dataset__in=visible_datasets(user))


def visible_sessions(user: User) -> QuerySet[AnnotatorSession]:
    """Own sessions, plus every session in the datasets the user administers."""
    if not user.is_authenticated:
        return AnnotatorSession.objects.none()
    if user.is_staff:
        return AnnotatorSession.objects.all()
    administered = DatasetMembership.objects.filter(user=user, role=Role.ADMIN).values("dataset")
    return AnnotatorSession.objects.filter(Q(annotator=user) | Q(image__dataset__in=administered))


def visible_import_jobs(user: User) -> QuerySet[ImportJob]:
    """Import jobs of the datasets the user administers."""
    if not user.is_authenticated:
        return ImportJob.objects.none()
    if user.is_staff:
        return ImportJob.objects.all()
    administered = DatasetMembership.objects.filter(user=user, role=Role.ADMIN).values("dataset")
    return ImportJob.objects.filter(dataset__in=administered)


def role_in(user: User, dataset: Dataset) -> str | None:
    """The user's role in the dataset ("admin" for staff), None for outsiders."""
    if not user.is_authenticated:
        return None
    if user.is_staff:
        return Role.ADMIN
    membership = DatasetMembership.objects.filter(user=user, dataset=dataset).first()
    return membership.role if membership else None


def can_administer(user: User, dataset: Dataset) -> bool:
    return role_in(user, dataset) == Role.ADMIN


def require_admin(user: User, dataset: Dataset, action: str) -> None:
    if not can_administer(user, dataset):
        raise NotAllowed(f"only admins of dataset {dataset.name!r} may {action}")


def require_staff(user: User, action: str) -> None:
    if not (user.is_authenticated and user.is_staff):
        raise NotAllowed(f"only site admins (staff) may {action}")


def require_session_owner(user: User, session: AnnotatorSession) -> None:
    if session.annotator_id != user.pk:
        raise NotAllowed("only the session's annotator may send its heartbeats or finish it")


# What annotators draw; the other sources (passes, imports, pre-fill) are the engine's, and only
# a dataset's admins store such masks by hand.
ANNOTATOR_SOURCES = (MaskSource.MANUAL, MaskSource.MODEL_ASSISTED)


def require_mask_source(user: User, dataset: Dataset, source: str) -> None:
    if source not in ANNOTATOR_SOURCES and role_in(user, dataset) != Role.ADMIN:
        raise NotAllowed(
            f"{source!r} masks come from the engine's passes and imports; annotators create "
            f"'manual' or 'model_assisted' masks"
        )


def require_mask_editor(
    user: User, mask: Mask, action: str, who: str = "the mask's author, reviewers and admins"
) -> None:
    if not can_edit_mask(user, mask):
        raise NotAllowed(f"only {who} may {action} it")


def can_edit_mask(user: User, mask: Mask) -> bool:
    """Authors edit their own masks; reviewers and admins edit any in their datasets; any
    annotator of the dataset reviews (keeps, fixes, deletes) the masks the model pre-filled."""
    if mask.author_id is not None and mask.author_id == user.pk:
        return True
    role = role_in(user, mask.image.dataset)
    if mask.source == MaskSource.PREFILLED and role is not None:
        return True
    return role in (Role.REVIEWER, Role.ADMIN)


def set_membership(dataset: Dataset, user: AbstractBaseUser, role: str) -> DatasetMembership:
    membership, _ = DatasetMembership.objects.update_or_create(
        dataset=dataset, user=user, defaults={"role": role}
    )
    return membership


def remove_membership(dataset: Dataset, user: AbstractBaseUser) -> bool:
    deleted, _ = DatasetMembership.objects.filter(dataset=dataset, user=user).delete()
    return deleted > 0


def require_reviewer(user: User, dataset: Dataset, action: str) -> None:
    """Reviewers and admins of the dataset (quality reports and settings); others 403."""
    if role_in(user, dataset) not in (Role.REVIEWER, Role.ADMIN):
        raise NotAllowed(f"only reviewers and admins of dataset {dataset.name!r} may {action}")
