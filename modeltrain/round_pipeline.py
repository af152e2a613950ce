"""Running a training round (the gpu task's work): export its files, train, evaluate the new
weights and the active version on the same held-out masks, then save the version and maybe
promote it, in one transaction at the very end.

Whatever stops a round before that transaction (an error, a cancellation, a worker shutting
down) leaves no version behind and the active one as it was; the round is marked failed or
cancelled, never left running. A round delivered again after its worker died starts over.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from annotation.services import jobs
from annotation.services.embeddings import embedding_store
from engine import SamPredictor, build_sam, encoder_key, save_checkpoint
from engine.precision import embedding_key
from engine.sam import Sam
from modeltrain.data import RoundData
from modeltrain.evaluation import EvalImage, GroundTruth, evaluate_images
from modeltrain.models import TrainingRound
from modeltrain.round_export import export_round
from modeltrain.training import Progress, TrainConfig, train
from modeltrain.versions import better, promote_version
from registry import visibility
from registry.active import get_active_version
from registry.models import ModelVersion, relative_checkpoint
from registry.predictors import get_predictor

logger = logging.getLogger(__name__)
Status = TrainingRound.Status


class RoundCancelled(Exception):
    """An admin cancelled the round while it ran."""


def run_training_round(round_id: int, on_progress: Callable[[Progress], None] | None = None) -> str:
    """The gpu task's work. Returns the round's final status (a finished round is left as it
    is, so a redelivered task does nothing twice). ``on_progress`` also sees every step."""
    run = TrainingRound.objects.filter(pk=round_id).select_related("dataset", "parent").first()
    if run is None:
        return "gone"
    if not jobs.start_job(run, error="", step=0, phase="export"):
        return run.status
    run.refresh_from_db()
    try:
        _run(run, on_progress)
    except RoundCancelled:
        return Status.CANCELLED
    except BaseException as exc:  # interrupted too (a worker's shutdown): never left running
        logger.exception("training round %s failed", run.pk)
        run.status, run.error = Status.FAILED, f"{exc.__class__.__name__}: {exc}"[:4000]
        jobs.finish_job(run, [])
        if not isinstance(exc, Exception):
            raise
        return Status.FAILED
    finally:
        shutil.rmtree(_folder(run), ignore_errors=True)
    return Status.DONE


def _folder(run: TrainingRound) -> Path:
    return Path(settings.TRAINING_DIR) / f"round-{run.pk}"


def _set(run: TrainingRound, **fields: Any) -> None:
    """Write fields of a running round; a round cancelled meanwhile stops here."""
    if not TrainingRound.objects.filter(pk=run.pk, status=Status.RUNNING).update(**fields):
        raise RoundCancelled(run.pk)
    for name, value in fields.items():
        setattr(run, name, value)


class _ProgressWriter:
    """Writes step, loss and eta to the round at most every TRAINING_PROGRESS_SECONDS (and at
    the last step); each write also notices a cancellation."""

    def __init__(self, run: TrainingRound, also: Callable[[Progress], None] | None) -> None:
        self.run, self.also, self.last = run, also, -math.inf

    def __call__(self, progress: Progress) -> None:
        if self.also is not None:
            self.also(progress)
        now = time.monotonic()
        if progress.step < progress.steps and now - self.last < settings.TRAINING_PROGRESS_SECONDS:
            return
        self.last = now
        _set(
            self.run,
            step=progress.step,
            total_steps=progress.steps,
            loss=progress.loss if math.isfinite(progress.loss) else None,
            eta_seconds=round(progress.eta_seconds, 1),
        )


def _run(run: TrainingRound, on_progress: Callable[[Progress], None] | None) -> None:
    folder = _folder(run)
    shutil.rmtree(folder, ignore_errors=True)  # what an interrupted first delivery left
    config = TrainConfig.from_dict(run.config)
    parent = run.parent
    model = build_sam(parent.model_type, parent.checkpoint_path, device=config.device)
    embedder = SamPredictor(model)
    data, until = export_round(
        run.dataset,
        folder,
        parent,
        with_embeddings=config.mode == "decoder",
        store=embedding_store(),
        embed=lambda record: embedder.embed(record.load_pixels()),
    )
    _set(
        run,
        phase="train",
        data_until=until,
        train_images=len(data.train.with_masks()),
        train_masks=data.train_masks,
        heldout_images=len(data.heldout),
        heldout_masks=data.heldout_masks,
    )
    result = train(model, data, config, on_progress=_ProgressWriter(run, on_progress))
    _set(run, phase="evaluate")
    new_key = encoder_key(model)
    precision = settings.SAM_PRECISION
    metrics = evaluate_heldout(
        SamPredictor(model, precision), embedding_key(new_key, precision), data
    )
    active = get_active_version()
    digest = heldout_digest(data)
    measured = (active.metrics.get("heldout_digest"), active.metrics.get("heldout_precision"))
    if measured == (digest, precision):
        baseline = active.metrics["heldout"]  # measured on exactly these masks already
    else:
        baseline = evaluate_heldout(get_predictor(active.pk), active.embedding_key, data)
    _set(run, phase="save", baseline_metrics=baseline)
    _save_version(run, model, new_key, metrics, baseline, active, digest, result.seconds)


def heldout_digest(data: RoundData) -> str:
    """What held-out numbers were measured on: the masks (ids and pixels) and the click limit;
    equal digests mean comparable numbers."""
    masks = [(m.id, m.rle["counts"]) for r in data.heldout for m in r.masks]
    payload = json.dumps([sorted(masks), int(settings.TRAINING_EVAL_MAX_CLICKS)])
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def evaluate_heldout(predictor: SamPredictor, key: str, data: RoundData) -> dict[str, Any]:
    """The held-out summary (modeltrain.metrics.summarize) of ``predictor`` on the round's
    held-out masks; embeddings come from (and go to) the cache under ``key``."""
    images = _heldout_images(predictor, key, data)
    return evaluate_images(predictor, images, max_clicks=int(settings.TRAINING_EVAL_MAX_CLICKS))


def _heldout_images(predictor: SamPredictor, key: str, data: RoundData) -> Iterator[EvalImage]:
    store = embedding_store()
    for record in data.heldout:
        embedding = store.get(record.sha256, key)
        if embedding is None:
            try:
                embedding = predictor.embed(record.load_pixels())
            except (OSError, ValueError) as exc:
                logger.warning("held-out image %s left out: %s", record.image_id, exc)
                continue
            store.put(record.sha256, key, embedding)
        objects = [GroundTruth(mask=mask) for mask in record.load_masks()]
        yield EvalImage(name=str(record.image_id), objects=objects, embedding=embedding)


def _decide(run: TrainingRound, metrics: dict, baseline: dict, active: ModelVersion) -> tuple:
    if run.promotion == TrainingRound.Promotion.ALWAYS:
        return True, "promoted: the round's promotion policy is always"
    if run.promotion == TrainingRound.Promotion.NEVER:
        return False, "not promoted: the round's promotion policy is never"
    promote, why = better(metrics, baseline)
    return promote, f"{'promoted' if promote else 'not promoted'} ({why} of {active.name})"


def _save_version(
    run: TrainingRound,
    model: Sam,
    key: str,
    metrics: dict[str, Any],
    baseline: dict[str, Any],
    active: ModelVersion,
    digest: str,
    seconds: float,
) -> ModelVersion:
    parent, dataset = run.parent, run.dataset
    number = parent.round + 1
    trained_on = (
        f"{parent.name}, then round {number}: {run.train_masks} masks of {run.train_images} "
        f"images of dataset {dataset.name!r} ({run.config['mode']} training, "
        f"{run.config['steps']} steps)"
    )
    counts = {
        "dataset": dataset.pk,
        "train_images": run.train_images,
        "train_masks": run.train_masks,
        "heldout_images": run.heldout_images,
        "heldout_masks": run.heldout_masks,
    }
    held = {
        "heldout_dataset": dataset.pk,
        "heldout_digest": digest,
        "heldout_precision": settings.SAM_PRECISION,  # the encoder's, when they were measured
    }
    path = Path(settings.CHECKPOINT_DIR) / f"round-{run.pk}-{parent.model_type}.pt"
    stored = {"heldout": metrics, **held}
    save_checkpoint(
        model,
        path,
        round=number,
        trained_on=trained_on,
        parent=parent.name,
        config=run.config,
        data=counts,
        metrics=stored,
    )
    promote, decision = _decide(run, metrics, baseline, active)
    try:
        with transaction.atomic():
            version = ModelVersion.objects.create(
                name=f"round-{run.pk}-{dataset.name}"[:200],
                model_type=parent.model_type,
                checkpoint=relative_checkpoint(path),
                encoder_key=key,
                parent=parent,
                round=number,
                trained_on=trained_on,
                metrics=stored,
                config={"train": run.config, "data": counts, "seconds": round(seconds, 1)},
            )
            if active.metrics.get("heldout_digest") != digest:
                # The version that was active now has numbers on these masks too.
                active.metrics = {**active.metrics, "heldout": baseline, **held}
                active.save(update_fields=["metrics"])
            _set(
                run,
                status=Status.DONE,
                phase="",
                result=version,
                promoted=promote,
                decision=decision,
                finished_at=timezone.now(),
            )
            # _set writes with an UPDATE, which sends no post_save: tell the registry here.
            visibility.record_trained_on(version.pk, run.dataset_id)
            if promote:
                promote_version(version)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    logger.info("training round %s made %s: %s", run.pk, version.name, decision)
    return version
