"""``secperf metrics list`` and ``secperf metrics query``: read stored series."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
from rich.table import Table

from secperf.model import MetricType
from secperf.store import SeriesPoints, Store

_BARS = "▁▂▃▄▅▆▇█"


def parse_labels(items: Sequence[str]) -> dict[str, str]:
    """``["job=api", "host=a"]`` -> matchers; raises ValueError naming a bad item."""
    matchers: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--labels {item!r}: expected NAME=VALUE")
        matchers[name.strip()] = value.strip().strip('"')
    return matchers


def sparkline(values: np.ndarray[Any, Any], width: int = 40) -> str:
    """A one-line chart of ``values`` (resampled to ``width`` columns)."""
    if len(values) == 0:
        return ""
    if len(values) > width:
        edges = np.linspace(0, len(values), width + 1).astype(int)
        values = np.array([values[a:b].mean() for a, b in itertools.pairwise(edges)])
    low, high = float(np.min(values)), float(np.max(values))
    span = high - low
    if span <= 0 or not math.isfinite(span):
        return _BARS[0] * len(values)
    scaled = ((values - low) / span * (len(_BARS) - 1)).round().astype(int)
    return "".join(_BARS[i] for i in scaled)


def metric_table(store: Store, host: str | None = None) -> Table:
    """Every stored metric name with its unit, kind and series count."""
    table = Table(title="stored metrics")
    table.add_column("metric")
    table.add_column("unit")
    table.add_column("kind")
    table.add_column("series", justify="right")
    table.add_column("labels", overflow="fold")
    by_name: dict[str, list[dict[str, str]]] = {}
    for info in store.series(matchers={"host": host} if host else None):
        by_name.setdefault(info.name, []).append(info.labels)
    for name in sorted(by_name):
        known = MetricType.lookup(name)
        keys = sorted({k for labels in by_name[name] for k in labels})
        table.add_row(
            name,
            known.unit if known else "",
            known.kind.value if known else "",
            str(len(by_name[name])),
            ", ".join(keys),
        )
    return table


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%H:%M:%S")


def query_table(points: list[SeriesPoints], unit: str) -> Table:
    """One row per series: labels, range, min / avg / max and a sparkline."""
    table = Table(title=f"{points[0].name} ({unit or 'no unit'})" if points else "no data")
    table.add_column("labels", overflow="fold")
    table.add_column("from")
    table.add_column("to")
    table.add_column("points", justify="right")
    table.add_column("min", justify="right")
    table.add_column("avg", justify="right")
    table.add_column("max", justify="right")
    table.add_column("trend")
    for series in points:
        values = series.values
        low = series.min if series.min is not None else values
        high = series.max if series.max is not None else values
        labels = ", ".join(f"{k}={v}" for k, v in sorted(series.labels.items()))
        table.add_row(
            labels or "-",
            _when(int(series.timestamps[0])),
            _when(int(series.timestamps[-1])),
            str(len(values)),
            f"{float(np.min(low)):.4g}",
            f"{float(np.mean(values)):.4g}",
            f"{float(np.max(high)):.4g}",
            sparkline(values),
        )
    return table


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
