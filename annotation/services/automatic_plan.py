"""Before an automatic pass runs: which images it takes (a stage, a selection, the whole
dataset), its settings (the kind's preset, a named preset, overrides), what it leaves alone
because people reviewed it, and a preview of all that for the admin who launches it, with a
warning when the model's masks will not pass the thresholds (an untrained cold start under the
paper's strict ones) and, once a pass is done, why it wrote no mask."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import Q

from annotation.models import AutomaticPass, Dataset, Image, ImageStatus, Mask, MaskSource, Stage
from annotation.services.automatic_config import DEFAULT_PRESET, PRESETS, resolve_config
from annotation.services.errors import InvalidInput
from registry.active import get_active_version
from registry.models import ModelVersion

Kind, Status = AutomaticPass.Kind, AutomaticPass.Status
SOURCE = {Kind.AUTOMATIC: MaskSource.AUTOMATIC, Kind.PREFILL: MaskSource.PREFILLED}
DEFAULT_STAGE = {Kind.AUTOMATIC: Stage.FULLY_AUTOMATIC, Kind.PREFILL: Stage.SEMI_AUTOMATIC}
# Masks people drew (with or without the model's help): a pass never writes these sources.
PEOPLE_SOURCES = (MaskSource.MANUAL, MaskSource.MODEL_ASSISTED)
# A model's mask a person reviewed: kept or corrected in stage 2 (``review``), or changed in any
# way (every change raises ``version``, which a pass writes at 1).
REVIEWED = Q(review__gt="") | Q(version__gt=1)


@dataclass(frozen=True)
class LeftAlone:
    """What a pass leaves as it is because people reviewed it, over the images selected:
    images a person marked done (not segmented at all), model masks a person kept or fixed, and
    masks people drew."""

    done_images: int
    reviewed_masks: int
    people_masks: int


def left_alone(dataset: Dataset, image_ids: Iterable[int]) -> LeftAlone:
    images = Image.objects.filter(dataset=dataset, pk__in=list(image_ids))
    masks = Mask.objects.filter(image__in=images)
    return LeftAlone(
        done_images=images.filter(status=ImageStatus.DONE).count(),
        reviewed_masks=masks.filter(REVIEWED, source__in=SOURCE.values()).count(),
        people_masks=masks.filter(source__in=PEOPLE_SOURCES).count(),
    )


@dataclass
class PassPlan:
    """What a launch with these arguments would do: the resolved config, the images selected and
    those it would segment (the selected ones a person has not marked done), what it leaves
    alone, and the model it would run."""

    kind: str
    preset: str
    stage: int | None
    config: dict
    selected: list[int]
    to_process: list[int]
    left_alone: LeftAlone
    version: ModelVersion


def plan_automatic_pass(
    dataset: Dataset,
    kind: str,
    image_ids: Iterable[int] | None = None,
    config: dict | None = None,
    stage: int | None = None,
    *,
    preset: str = DEFAULT_PRESET,
    whole_dataset: bool = False,
) -> PassPlan:
    """The images and settings of a pass, without recording or queueing anything (the launch
    and its preview both start here). Raises InvalidInput for a bad selection or config."""
    resolved = resolve_config(kind, config, preset)
    selected, stage = _select_images(dataset, kind, image_ids, stage, whole_dataset)
    done = set(
        Image.objects.filter(pk__in=selected, status=ImageStatus.DONE).values_list("pk", flat=True)
    )
    return PassPlan(
        kind=kind,
        preset=preset,
        stage=stage,
        config=resolved,
        selected=selected,
        to_process=[pk for pk in selected if pk not in done],
        left_alone=left_alone(dataset, selected),
        version=get_active_version(),
    )


def preview_automatic_pass(dataset: Dataset, kind: str, **selection: Any) -> dict[str, Any]:
    """What launching a pass with these arguments (those of ``plan_automatic_pass``) would
    touch, for the admin to see first: images selected and to segment, what stays as people
    left it, the unreviewed masks of an earlier pass of this model that would be replaced, the
    model, and warnings (nothing to do; a model whose masks will not pass the thresholds)."""
    plan = plan_automatic_pass(dataset, kind, **selection)
    replaced = (
        Mask.objects.filter(
            image_id__in=plan.to_process, source=SOURCE[kind], model_version=plan.version
        )
        .exclude(REVIEWED)
        .count()
    )
    warnings = []
    if not plan.to_process:
        warnings.append(
            f"all {len(plan.selected)} selected images were marked done by people: there is "
            "nothing to segment (move them back to pending to segment them again)"
        )
    weak = weak_model_warning(plan.version, plan.config)
    if weak:
        warnings.append(weak)
    return {
        "kind": kind,
        "preset": plan.preset,
        "stage": plan.stage,
        "config": plan.config,
        "selected_images": len(plan.selected),
        "images_to_process": len(plan.to_process),
        "left_alone": dataclasses.asdict(plan.left_alone),
        "masks_replaced": replaced,
        "model": {
            "id": plan.version.pk,
            "name": plan.version.name,
            "untrained": is_untrained(plan.version),
            "is_official": plan.version.is_official,
        },
        "warnings": warnings,
    }


def is_untrained(version: ModelVersion | None) -> bool:
    """The cold start: random weights, never trained here, not one of Meta's files."""
    return (
        version is not None
        and not version.is_official
        and version.round == 0
        and version.parent_id is None
    )


def _strict(config: dict) -> bool:
    relaxed = PRESETS["relaxed"]
    return any(config.get(name, 0) > value for name, value in relaxed.items())


def _model_words(version: ModelVersion, which: str) -> str:
    if is_untrained(version):
        return f"{which} ({version.name}) is the untrained cold start"
    return f"{which} ({version.name}) was trained here from a cold start, not Meta's checkpoint"


def _thresholds(config: dict) -> str:
    return (
        f"predicted IoU > {config.get('pred_iou_thresh', 0):g} and stability >= "
        f"{config.get('stability_score_thresh', 0):g}"
    )


CHECKPOINT_HINT = "install Meta's checkpoint (python -m engine.checkpoints download vit_b)"


def weak_model_warning(version: ModelVersion | None, config: dict) -> str:
    """Why a pass would keep few or no masks, or "": a model that is not Meta's checkpoint (its
    masks are rarely confident; an untrained one's never) under thresholds stricter than the
    relaxed preset's."""
    if version is None or version.is_official or not _strict(config):
        return ""
    outcome = "will most likely keep 0 masks" if is_untrained(version) else "may keep few masks"
    return (
        f"{_model_words(version, 'the active model')}: its masks rarely reach "
        f"{_thresholds(config)}, so this pass {outcome}; choose the 'relaxed' preset, or "
        f"{CHECKPOINT_HINT}"
    )


def zero_masks_note(
    status: str, done_images: int, masks: int, config: dict, version: ModelVersion | None
) -> str:
    """Why a finished pass wrote no mask, or "" when it wrote some (or is not done)."""
    if status != Status.DONE or masks or not done_images:
        return ""
    note = f"0 masks passed the thresholds ({_thresholds(config)})"
    if version is not None and not version.is_official:
        advice = (
            f"try the 'relaxed' preset or {CHECKPOINT_HINT}"
            if _strict(config)
            else f"{CHECKPOINT_HINT}, or train it on people's masks first"
        )
        return f"{note}: {_model_words(version, 'the model')}; {advice}"
    if _strict(config):
        return f"{note}; the 'relaxed' preset keeps less confident masks"
    return f"{note}, or every mask overlapped a mask people reviewed or drew"


def _select_images(
    dataset: Dataset,
    kind: str,
    image_ids: Iterable[int] | None,
    stage: int | None,
    whole_dataset: bool = False,
) -> tuple[list[int], int | None]:
    if sum((image_ids is not None, stage is not None, whole_dataset)) > 1:
        raise InvalidInput("give either image_ids or stage (or whole_dataset), only one of them")
    if whole_dataset:
        ids = list(
            Image.objects.filter(dataset=dataset).order_by("pk").values_list("pk", flat=True)
        )
        if not ids:
            raise InvalidInput(f"dataset {dataset.name!r} has no images")
        return ids, None
    if image_ids is not None:
        ids = sorted(set(image_ids))
        if not ids:
            raise InvalidInput("image_ids is empty; leave it out to select a whole stage")
        found = set(Image.objects.filter(dataset=dataset, pk__in=ids).values_list("pk", flat=True))
        missing = [pk for pk in ids if pk not in found]
        if missing:
            raise InvalidInput(
                f"images {missing[:20]} are not in dataset {dataset.name!r}", missing=missing
            )
        return ids, None
    stage = DEFAULT_STAGE[kind] if stage is None else stage
    if stage not in Stage.values:
        raise InvalidInput(f"stage must be one of {Stage.values}, got {stage!r}")
    ids = list(
        Image.objects.filter(dataset=dataset, stage=stage)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if not ids:
        raise InvalidInput(f"dataset {dataset.name!r} has no image in stage {stage}")
    return ids, stage
