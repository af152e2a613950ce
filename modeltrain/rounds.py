"""Training rounds: launching one (admin page, API, command, nightly schedule), cancelling it,
and who sees which. The gpu task's work is in modeltrain.round_pipeline."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from annotation.models import Dataset, DatasetMembership, Role
from annotation.services import jobs
from annotation.services.access import User
from annotation.services.errors import Conflict, InvalidInput
from annotation.services.queueing import queue_task
from modeltrain.models import ImageSplit, TrainingRound
from modeltrain.round_export import assign_splits, new_training_masks, training_masks
from modeltrain.training import MODES, TrainConfig
from registry.active import get_active_version
from registry.models import ModelVersion

logger = logging.getLogger(__name__)
Status = TrainingRound.Status
ACTIVE = jobs.ACTIVE


def default_config(parent: ModelVersion, mode: str = "auto") -> TrainConfig:
    """The configuration a round starts from. ``auto`` fine-tunes everything on a GPU and only
    the decoder (on cached embeddings) on a CPU: there, the cold-start vit_tiny learns more in
    the same time from its random encoder's features than by training the encoder too.
    Meta's checkpoints are fine-tuned gently. A decoder learning from scratch at 1e-3 drifts
    toward one mask for every prompt (on GrabCut, 300 steps on 30 masks: held-out 1-click
    mIoU 0.35, and with more iterations per mask a constant mask); 3e-4 gave 0.49."""
    if mode not in ("auto", *MODES):
        raise InvalidInput(f"mode must be auto, {' or '.join(MODES)}; got {mode!r}")
    device = str(settings.SAM_DEVICE)
    if mode == "auto":
        mode = "full" if device.startswith("cuda") else "decoder"
    lr = 1e-5 if parent.is_official else (5e-4 if mode == "full" else 3e-4)
    return TrainConfig(mode=mode, steps=int(settings.TRAINING_STEPS), lr=lr, device=device)


def plan_round(
    dataset: Dataset,
    *,
    mode: str | None = None,
    promotion: str | None = None,
    options: dict[str, Any] | None = None,
) -> tuple[ModelVersion, dict[str, Any], str]:
    """Check a launch without recording it: (parent version, config, promotion policy).
    Raises InvalidInput for bad options or no masks, Conflict when a round is already on."""
    promotion = promotion or str(settings.TRAINING_PROMOTION)
    if promotion not in TrainingRound.Promotion.values:
        raise InvalidInput(
            f"promotion must be one of {', '.join(TrainingRound.Promotion.values)}; "
            f"got {promotion!r}"
        )
    parent = get_active_version()
    config = default_config(parent, mode or str(settings.TRAINING_MODE)).as_dict()
    try:
        config = TrainConfig.from_dict({**config, **(options or {})}).as_dict()
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"training options: {exc}") from None
    if TrainingRound.objects.filter(dataset=dataset, status__in=ACTIVE).exists():
        raise Conflict(f"a training round is already queued or running on dataset {dataset.name!r}")
    assign_splits(dataset)
    if new_training_masks(dataset, None) == 0:
        raise InvalidInput(no_masks_message(dataset))
    return parent, config, promotion


def no_masks_message(dataset: Dataset) -> str:
    """Why ``dataset`` has nothing to train on, with how many masks it has and where they are,
    so the admin knows what to annotate (its splits assigned)."""
    reason = f"dataset {dataset.name!r} has no masks to train on"
    masks = training_masks(dataset)
    on_heldout = masks.filter(image__training_split__heldout=True)
    n_masks = on_heldout.count()
    if n_masks:
        n_images = ImageSplit.objects.filter(dataset=dataset, heldout=True).count()
        return (
            f"{reason}: {n_masks} masks, all on the {n_images} held-out image(s) kept for "
            "evaluation; annotate other images"
        )
    return (
        f"{reason}: rounds learn from masks people drew (manual, model-assisted) or imported, "
        "and it has none yet; annotate some images"
    )


def launch_training_round(
    dataset: Dataset,
    user: User | None = None,
    *,
    mode: str | None = None,
    promotion: str | None = None,
    options: dict[str, Any] | None = None,
    trigger: str = "manual",
    queue: bool = True,
) -> TrainingRound:
    """Record a round on ``dataset`` starting from the active version and queue it on the gpu
    queue (``queue=False``: the caller runs it, as ``manage.py train_round`` does).
    ``options`` overrides TrainConfig fields; ``user`` is recorded as its author (None: the
    system); the views and the admin have checked it is staff.
    Raises what ``plan_round`` raises."""
    parent, config, promotion = plan_round(dataset, mode=mode, promotion=promotion, options=options)
    try:
        with transaction.atomic():
            run = TrainingRound.objects.create(
                dataset=dataset,
                parent=parent,
                config=config,
                promotion=promotion,
                trigger=trigger,
                total_steps=config["steps"],
                created_by=user if user is not None and user.is_authenticated else None,
            )
            if queue:
                queue_task("modeltrain.run_training_round", run.pk)
    except IntegrityError:
        raise Conflict(
            f"a training round is already queued or running on dataset {dataset.name!r}"
        ) from None
    return run


def cancel_training_round(run: TrainingRound) -> TrainingRound:
    """Stop a queued or running round; the running one stops at its next progress report."""
    try:
        return jobs.cancel_job(run, "training round")
    except Conflict:
        raise Conflict(f"training round {run.pk} is {run.status}, not queued or running") from None


def visible_rounds(user: User) -> QuerySet[TrainingRound]:
    """Staff see every round; a dataset's admins see that dataset's rounds."""
    rounds = TrainingRound.objects.select_related("dataset", "parent", "result")
    if not user.is_authenticated:
        return rounds.none()
    if user.is_staff:
        return rounds
    administered = DatasetMembership.objects.filter(user=user, role=Role.ADMIN).values("dataset")
    return rounds.filter(dataset__in=administered)


def nightly_training_rounds() -> list[int]:
    """The beat task's work: launch a round on every dataset with at least
    TRAINING_NIGHTLY_MIN_NEW_MASKS training masks new or changed since its last finished round
    (and none queued or running). Returns the ids of the rounds launched."""
    launched = []
    threshold = int(settings.TRAINING_NIGHTLY_MIN_NEW_MASKS)
    for dataset in Dataset.objects.order_by("pk"):
        if TrainingRound.objects.filter(dataset=dataset, status__in=ACTIVE).exists():
            continue
        last = (
            TrainingRound.objects.filter(dataset=dataset, status=Status.DONE)
            .order_by("-data_until")
            .first()
        )
        assign_splits(dataset)
        fresh = new_training_masks(dataset, last.data_until if last else None)
        if fresh < max(1, threshold):
            logger.info("nightly round: %s has %d new masks (< %d)", dataset, fresh, threshold)
            continue
        try:
            launched.append(launch_training_round(dataset, trigger="nightly").pk)
        except Conflict:  # launched by hand meanwhile
            continue
    return launched
