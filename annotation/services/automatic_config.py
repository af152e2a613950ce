"""The settings of an automatic pass: a preset (the paper's recipe for stage 3, the stricter
pre-fill for stage 2) with a caller's overrides checked field by field, stored on the pass as
plain JSON so a resumed or re-run pass uses exactly the numbers it was launched with."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from annotation.models import AutomaticPass
from annotation.services.errors import InvalidInput
from engine import AutomaticConfig

FIELDS = tuple(f.name for f in dataclasses.fields(AutomaticConfig))
INT_FIELDS = frozenset(name for name in FIELDS if type(getattr(AutomaticConfig(), name)) is int)
NULLABLE_FIELDS = frozenset({"max_mask_region_area_ratio"})

# Bounds the engine itself does not impose, against a pass that would never end or exhaust memory
# (a 256x256 grid is 65k prompts per crop; 3 crop layers are 85 encoder runs per image).
LIMITS: dict[str, tuple[float, float]] = {
    "points_per_side": (1, 128),
    "points_per_batch": (1, 1024),
    "pred_iou_thresh": (0.0, 1.0),
    "crop_n_layers": (0, 3),
    "crop_n_points_downscale_factor": (1, 8),
    "min_mask_region_area": (0, 1_000_000),
    "stability_score_offset": (0.0, 100.0),
    "crop_edge_tolerance": (0.0, 10_000.0),
}


# The presets a launch chooses from, applied over the kind's own settings: "paper" is the kind's
# recipe as it is (the SA-1B recipe for automatic, the stricter stage 2 pre-fill for prefill);
# "relaxed" keeps less confident masks (the thresholds of "Everything"'s relaxed choice), for a
# model whose masks rarely reach the paper's confidence (an untrained or cold-started one).
PRESETS: dict[str, dict[str, float]] = {
    "paper": {},
    "relaxed": {"pred_iou_thresh": 0.5, "stability_score_thresh": 0.8},
}
DEFAULT_PRESET = "paper"


def preset(kind: str) -> AutomaticConfig:
    """The preset of a pass kind: the SA-1B recipe, or stage 2's pre-fill."""
    if kind == AutomaticPass.Kind.AUTOMATIC:
        return AutomaticConfig.paper()
    if kind == AutomaticPass.Kind.PREFILL:
        return AutomaticConfig.prefill()
    raise InvalidInput(f"kind must be one of {', '.join(AutomaticPass.Kind.values)}, got {kind!r}")


def resolve_config(
    kind: str, overrides: Any = None, preset_name: str = DEFAULT_PRESET
) -> dict[str, Any]:
    """Every AutomaticConfig field for a pass of ``kind``: its preset, then the named entry of
    PRESETS, then ``overrides`` (a mapping of field name to value) applied. Raises InvalidInput
    naming the field at fault."""
    base = preset(kind)
    if preset_name not in PRESETS:
        raise InvalidInput(f"preset must be one of {', '.join(PRESETS)}, got {preset_name!r}")
    base = dataclasses.replace(base, **PRESETS[preset_name])
    if overrides is None:
        overrides = {}
    if not isinstance(overrides, dict):
        raise InvalidInput("config must be an object mapping AutomaticConfig fields to values")
    unknown = sorted(set(overrides) - set(FIELDS))
    if unknown:
        raise InvalidInput(
            f"unknown config fields {unknown}; the fields are {', '.join(FIELDS)}",
            unknown=unknown,
        )
    values = {name: _checked(name, value) for name, value in overrides.items()}
    try:
        config = dataclasses.replace(base, **values)
    except ValueError as exc:
        raise InvalidInput(f"invalid config: {exc}") from exc
    return dataclasses.asdict(config)


def config_from_json(data: dict[str, Any]) -> AutomaticConfig:
    """The AutomaticConfig a pass stored (``resolve_config``'s output)."""
    return AutomaticConfig(**{name: data[name] for name in FIELDS if name in data})


def _checked(name: str, value: Any) -> Any:
    if value is None:
        if name in NULLABLE_FIELDS:
            return None
        raise InvalidInput(f"config field {name} cannot be null", field=name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"config field {name} must be a number, got {value!r}", field=name)
    if name in INT_FIELDS:
        if isinstance(value, float) and not value.is_integer():
            raise InvalidInput(f"config field {name} must be an integer, got {value!r}", field=name)
        value = int(value)
    else:
        value = float(value)
        if not math.isfinite(value):
            raise InvalidInput(f"config field {name} must be finite, got {value!r}", field=name)
    low, high = LIMITS.get(name, (-math.inf, math.inf))
    if not low <= value <= high:
        raise InvalidInput(
            f"config field {name} must be between {low:g} and {high:g}, got {value!r}",
            field=name,
        )
    return value
