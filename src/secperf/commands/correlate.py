"""``secperf correlate``: run a correlation over the store.

The use case computes a fresh run (``analysis.correlate_store.run_correlation``)
and stores it; the CLI prints it ranked by evidence with one sentence on the
top result, or as JSON. When there are no scans or too little data the run is
not evaluable and its problems say exactly what is missing (exit 3).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from secperf.analysis.correlate_store import (
    CorrelationRun,
    correlations_json,
    explain,
    lead_lag_json,
    run_correlation,
)
from secperf.config import LoadedConfig, parse_duration_ms
from secperf.events import now_ms as current_ms
from secperf.store import Store


class CorrelateUsageError(ValueError):
    """An option the correlation refuses; the message names it (exit 2)."""


def run_json(run: CorrelationRun) -> dict[str, Any]:
    """The API document plus the run's range, counts, problems and lead/lag pairs."""
    doc = correlations_json(run)
    doc.update(
        {
            "id": run.id,
            "since_ms": run.since_ms,
            "until_ms": run.until_ms,
            "alpha": run.alpha,
            "n_scans": run.n_scans,
            "n_series": run.n_series,
            "problems": list(run.problems),
            "lead_lag": lead_lag_json(run),
            "explanation": explain(run.tested[0], run.alpha) if run.tested else None,
        }
    )
    return doc


def correlate(
    loaded: LoadedConfig,
    *,
    since: str,
    metrics: Sequence[str] | None,
    alpha: float,
    now_ms: int | None = None,
) -> CorrelationRun:
    """Run and store a correlation over the last ``since``; CorrelateUsageError on bad input."""
    try:
        window = parse_duration_ms(since)
    except ValueError as exc:
        raise CorrelateUsageError(f"--since: {exc}") from None
    if window <= 0:
        raise CorrelateUsageError(f"--since: {since!r} must be a positive duration")
    if not 0 < alpha < 1:
        raise CorrelateUsageError(f"--alpha: must be between 0 and 1, got {alpha}")
    until = now_ms if now_ms is not None else current_ms()
    with Store.open(loaded.config.store.url) as store:
        return run_correlation(
            store, until - window, until, alpha=alpha, metrics=metrics, now_ms=until
        )
