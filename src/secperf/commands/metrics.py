"""``secperf metrics list`` and ``secperf metrics query``: read stored series.

Returns plain rows (names, units, figures, a text trend line); the CLI lays
them out.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from secperf.model import MetricType
from secperf.store import SeriesPoints, Store

_BARS = "▁▂▃▄▅▆▇█"
#: Differences below this share of the values' size are rounding, not change.
_FLAT = 1e-9


def parse_labels(items: Sequence[str]) -> dict[str, str]:
    """``["job=api", "host=a"]`` -> matchers; raises ValueError naming a bad item."""
    matchers: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--labels {item!r}: expected NAME=VALUE")
        matchers[name.strip()] = value.strip().strip('"')
    return matchers


@dataclass(frozen=True, slots=True)
class QuerySelector:
    """What ``metrics query`` reads: a metric name, the labels the store filters on, and a test
    for the other matchers (``!=``, ``=~``, ``!~``), applied to the series the store returns."""

    name: str
    equality: dict[str, str]
    keep: Callable[[str, dict[str, str]], bool]


def parse_query_selector(text: str, labels: Sequence[str] = ()) -> QuerySelector:
    """``cpu_percent`` or ``cpu_percent{host="a"}`` plus ``--labels``; ValueError says what is
    wrong with which (an unclosed brace, a bad matcher, a name that is no metric name)."""
    from secperf.config.sections.impact import parse_selector

    try:
        selector = parse_selector(text)
    except ValueError as exc:
        reason = str(exc) or "empty"
        raise ValueError(
            f"metric {text!r}: {reason} (expected a name such as cpu_percent or a selector"
            ' such as response_time_ms{job="api"})'
        ) from None
    equality = {**selector.equality_labels(), **parse_labels(labels)}
    return QuerySelector(selector.name, equality, selector.matches)


def sparkline(values: np.ndarray[Any, Any], width: int = 40) -> str:
    """A one-line chart of ``values`` (resampled to ``width`` columns)."""
    if len(values) == 0:
        return ""
    if len(values) > width:
        edges = np.linspace(0, len(values), width + 1).astype(int)
        values = np.array([values[a:b].mean() for a, b in itertools.pairwise(edges)])
    low, high = float(np.min(values)), float(np.max(values))
    span = high - low
    # Averages of a constant series differ in their last bits (5.000000000000001
    # beside 5.0): that is no trend, and drawn to scale it would look like a jump.
    if span <= _FLAT * max(abs(low), abs(high)) or not math.isfinite(span):
        return _BARS[0] * len(values)
    scaled = ((values - low) / span * (len(_BARS) - 1)).round().astype(int)
    return "".join(_BARS[i] for i in scaled)


@dataclass(frozen=True, slots=True)
class StoredMetric:
    """One stored metric name: its unit and kind (when known), series and label keys."""

    name: str
    unit: str
    kind: str
    series: int
    label_keys: list[str]


def stored_metrics(store: Store, host: str | None = None) -> list[StoredMetric]:
    """Every stored metric name (of ``host``, if given) with its unit, kind and series count."""
    by_name: dict[str, list[dict[str, str]]] = {}
    for info in store.series(matchers={"host": host} if host else None):
        by_name.setdefault(info.name, []).append(info.labels)
    found: list[StoredMetric] = []
    for name in sorted(by_name):
        known = MetricType.lookup(name)
        found.append(
            StoredMetric(
                name=name,
                unit=known.unit if known else "",
                kind=known.kind.value if known else "",
                series=len(by_name[name]),
                label_keys=sorted({k for labels in by_name[name] for k in labels}),
            )
        )
    return found


@dataclass(frozen=True, slots=True)
class SeriesSummary:
    """One queried series at a glance: its range, figures and a text trend line."""

    name: str
    labels: dict[str, str]
    first_ms: int
    last_ms: int
    points: int
    low: float
    mean: float
    high: float
    trend: str


def series_summaries(points: list[SeriesPoints]) -> list[SeriesSummary]:
    """One summary per series (min and max from the downsampled extremes when there are)."""
    out: list[SeriesSummary] = []
    for series in points:
        values = series.values
        low = series.min if series.min is not None else values
        high = series.max if series.max is not None else values
        out.append(
            SeriesSummary(
                name=series.name,
                labels=series.labels,
                first_ms=int(series.timestamps[0]),
                last_ms=int(series.timestamps[-1]),
                points=len(values),
                low=float(np.min(low)),
                mean=float(np.mean(values)),
                high=float(np.max(high)),
                trend=sparkline(values),
            )
        )
    return out


def points_json(points: list[SeriesPoints]) -> dict[str, Any]:
    """The same shape as the API's ``/api/v1/metrics/query``."""
    out = []
    for series in points:
        values = series.values.tolist()
        out.append(
            {
                "name": series.name,
                "labels": series.labels,
                "timestamps_ms": series.timestamps.tolist(),
                "avg": values,
                "min": series.min.tolist() if series.min is not None else values,
                "max": series.max.tolist() if series.max is not None else values,
            }
        )
    return {"series": out}
