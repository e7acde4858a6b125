"""What an alert rule's values must mean, beyond their types: one set of checks for
``[[alerts.rules]]`` in the config and for the ``[[rules]]`` of rule files.

Both forms hold the same keys: the common ones (``metric``, ``threshold``,
``window``...) and, per ``kind``, the parameters of the correlation kinds
(``scan_impact``, ``unexplained_anomaly``). The config checks them when it is
loaded (``config.checks``); ``alerts.rule_loading`` when it reads a rule file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from secperf.config.units import format_duration_ms

KINDS = ("threshold", "scan_impact", "unexplained_anomaly")
NO_DATA_MODES = ("nodata", "ok")
DIRECTIONS = ("up", "down", "any")

#: Parameters of each kind with their defaults; durations as strings.
KIND_PARAMS: dict[str, dict[str, float | str]] = {
    "threshold": {},
    "scan_impact": {
        "min_effect_pct": 20.0,
        "max_q": 0.01,
        "direction": "up",
        "lookback": "24h",
        "recompute_every": "10m",
        "lag": "0s",
        "min_scans": 1.0,
    },
    "unexplained_anomaly": {
        "k": 5.0,
        "recent": "1m",
        "scan_margin": "1m",
        "min_points": 30.0,
        "explained_by": "",
    },
}
#: Every kind's parameters, whichever kind a rule has.
ALL_PARAMS = frozenset(key for params in KIND_PARAMS.values() for key in params)
DURATION_PARAMS = frozenset({"lookback", "recompute_every", "lag", "recent", "scan_margin"})
#: ``recent = "0"`` means this much (as the evaluator reads it).
DEFAULT_RECENT_MS = 60_000

#: The values some known metrics can take. A threshold outside the range can
#: never be crossed (or is always crossed), which is a mistake such as a
#: percentage written for a ratio. Process CPU is absent: it passes 100 % on
#: several cores.
METRIC_RANGES: dict[str, tuple[float, float, str]] = {
    "cpu_percent": (0.0, 100.0, "percent"),
    "memory_percent": (0.0, 100.0, "percent"),
    "swap_percent": (0.0, 100.0, "percent"),
    "security_scan_coverage": (0.0, 100.0, "percent"),
    "error_rate": (0.0, 1.0, "a ratio: 0.05 means 5 %"),
    "security_false_positives": (0.0, 1.0, "a ratio: 0.5 means 50 %"),
}
#: Keys the resolve threshold is checked against.
RESOLVE_INPUTS = frozenset({"kind", "op", "threshold", "resolve_threshold", "min_effect_pct", "k"})
#: Aggregations whose result is in the metric's own unit (rate, increase and
#: count are not).
UNIT_PRESERVING = frozenset({"last", "avg", "min", "max", "p50", "p95", "p99"})


def foreign_params(kind: str, keys: Mapping[str, Any] | set[str] | frozenset[str]) -> list[str]:
    """Parameter keys present that belong to another kind than ``kind``."""
    own = set(KIND_PARAMS.get(kind, {}))
    return sorted(k for k in keys if k in ALL_PARAMS and k not in own)


def param_problems(
    kind: str, params: Mapping[str, Any], window_ms: int, bad: set[str]
) -> list[str]:
    """Values of a kind's parameters that cannot mean what the author wanted.

    ``params`` holds every parameter of the kind (durations in ms). Keys in
    ``bad`` already have a problem (their value is a placeholder) and are not
    checked again.
    """
    problems: list[str] = []
    if kind == "scan_impact":
        effect = params["min_effect_pct"]
        if "min_effect_pct" not in bad and effect < 0:
            problems.append(
                f"min_effect_pct: must not be negative, got {effect:g}; it is the smallest change "
                "(in percent, in the chosen direction) that fires, e.g. 20"
            )
        if "max_q" not in bad and not 0 < params["max_q"] < 1:
            problems.append(f"max_q: must be between 0 and 1 (exclusive), got {params['max_q']:g}")
        min_scans = params["min_scans"]
        if "min_scans" not in bad and (min_scans != int(min_scans) or min_scans < 1):
            problems.append(f"min_scans: must be a whole number of at least 1, got {min_scans:g}")
    if kind == "unexplained_anomaly":
        if "k" not in bad and params["k"] <= 0:
            problems.append(f"k: must be greater than 0, got {params['k']:g}")
        min_points = params["min_points"]
        if "min_points" not in bad and (min_points != int(min_points) or min_points < 2):
            problems.append(
                f"min_points: must be a whole number of at least 2, got {min_points:g} "
                "(a median and its spread need two points)"
            )
        recent = params["recent"] or DEFAULT_RECENT_MS
        if not bad & {"recent", "window"} and recent >= window_ms:
            problems.append(
                f"recent: must be shorter than window ({format_duration_ms(window_ms)}), "
                f"got {format_duration_ms(recent)}; otherwise no history is left to compare with"
            )
    return problems


def range_problems(metric: str, aggregation: str, values: Mapping[str, float]) -> list[str]:
    """Thresholds outside the range a bounded metric can take."""
    bounds = METRIC_RANGES.get(metric)
    if bounds is None or aggregation not in UNIT_PRESERVING:
        return []
    low, high, unit = bounds
    return [
        f"{key}: {value:g} is outside the values {metric} can take ({low:g} to {high:g}, "
        f"{unit}), so the rule could never change state"
        for key, value in values.items()
        if not low <= value <= high
    ]


def resolve_problems(
    kind: str, op: Any, threshold: float, resolve: float, params: Mapping[str, Any]
) -> list[str]:
    """The resolve threshold against the level that fires, per kind."""
    if kind == "scan_impact":
        # Fires when the effect reaches min_effect_pct; stays while it reaches resolve.
        return hysteresis_problems(">=", params["min_effect_pct"], resolve, "min_effect_pct")
    if kind == "unexplained_anomaly":
        if resolve < 0:
            return [f"resolve_threshold: must not be negative, got {resolve:g} (a number of MADs)"]
        return hysteresis_problems(">", params["k"], resolve, "k")
    return hysteresis_problems(str(op), threshold, resolve)


def hysteresis_problems(
    op: str, threshold: float, resolve: float, level: str = "threshold"
) -> list[str]:
    """A resolve threshold that is not on the healthy side of the firing one."""
    # Otherwise the alert would resolve while it still meets its firing condition.
    if op in ("==", "!="):
        return [f"resolve_threshold: only allowed with op >, >=, < or <=, not {op!r}"]
    if op in (">", ">=") and resolve > threshold:
        return [f"resolve_threshold: must be <= {level} ({threshold:g}) when op is {op!r}"]
    if op in ("<", "<=") and resolve < threshold:
        return [f"resolve_threshold: must be >= {level} ({threshold:g}) when op is {op!r}"]
    return []
