"""Correlation runs over stored data: load, correlate, keep the result.

``run_correlation`` reads from the store every performance series with samples
in a time range and the windows of the scans that ran in it, compares each
series inside the scan windows with matched quiet windows (``correlate_all``:
KS on first differences, Mann-Whitney U on levels, Benjamini-Hochberg across
series), cross-correlates the security series (``security_violations`` summed
over severities, ``security_scan_time``) with the series most affected
(``lead_lag``), and stores the run as one JSON document.

What is left out of the performance side, and why:

- security series (``security_*``, ``vulnerability_count`` and every metric
  ``MetricType`` calls security): they are the scans' outcomes, stamped once per
  scan, not a load that a scan could move;
- ``scan_process_*``: the scan's own processes, which exist only while a scan
  runs, so they "correlate" by construction. ``host_cpu_percent`` (the whole
  machine, sampled by the same sampler) is kept.

Dense series are averaged onto steps of at most 10 s (a tenth of the median
scan duration, at least 1 s) so that a day of 1 s samples stays cheap; series
sampled more sparsely than that are used raw. ``correlations_json`` gives the
``/api/v1/correlations`` document.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from secperf.analysis.correlation import (
    CorrelationOptions,
    SeriesCorrelation,
    SeriesInput,
    correlate_all,
    lead_lag,
)
from secperf.analysis.windows import ScanWindow
from secperf.model import MetricType
from secperf.security.series import KIND_SCAN
from secperf.timefmt import iso_seconds

if TYPE_CHECKING:
    from secperf.store import ScanRecord, Store

DOCUMENT_VERSION = 1
MAX_STEP_MS = 10_000
MIN_STEP_MS = 1_000
MAX_SCANS = 10_000
LEAD_LAG_SERIES = 10  # performance series cross-correlated with each security series
LEAD_LAG_MAX_MS = 30 * 60_000
LEAD_LAG_MIN_STEP_MS = 10_000
LEAD_LAG_GRID = 1_440  # grid points over the range at most (a day at one a minute)
SECURITY_LEAD_SERIES = ("security_violations", "security_scan_time")
SCAN_PROCESS_PREFIX = "scan_process_"

_API_FIELDS = (
    "name",
    "labels",
    "effect_pct",
    "q_value",
    "ks_p",
    "mw_p",
    "volume_score",
    "onset_lag_ms",
    "direction",
    "significant",
    "n_inside",
    "n_quiet",
    "inside_median",
    "quiet_median",
    "inside_quantiles",
    "quiet_quantiles",
)


@dataclass(frozen=True, slots=True)
class LeadLagPair:
    """How a performance series follows a security series (see ``correlation.lead_lag``)."""

    security_name: str
    security_labels: dict[str, str]
    name: str
    labels: dict[str, str]
    best_lag_ms: int
    coefficient: float
    n_points: int
    step_ms: int


@dataclass(frozen=True, slots=True)
class CorrelationRun:
    """One correlation run: its range, the ranked results and what data was missing.

    ``results`` are ranked as ``correlate_all`` ranks them (significant first,
    then by q-value and effect size; insufficient data last). ``problems`` says
    in words what kept the run from evaluating (no scans, no samples ...); ``id``
    is the stored row's id, None when the run was not stored.
    """

    computed_ms: int
    since_ms: int
    until_ms: int
    alpha: float
    results: tuple[SeriesCorrelation, ...] = ()
    lead_lags: tuple[LeadLagPair, ...] = ()
    n_scans: int = 0
    n_series: int = 0
    step_ms: int | None = None
    problems: tuple[str, ...] = ()
    id: int | None = None

    @property
    def tested(self) -> list[SeriesCorrelation]:
        """The results with enough data to be tested, in rank order."""
        return [r for r in self.results if not r.insufficient]

    @property
    def significant(self) -> list[SeriesCorrelation]:
        """The results whose q-value is under ``alpha``."""
        return [r for r in self.results if r.significant]

    @property
    def evaluable(self) -> bool:
        """True when at least one series could be tested."""
        return bool(self.tested)


# --------------------------------------------------------------------------- helpers


def is_performance_metric(name: str) -> bool:
    """Whether ``name`` belongs on the performance side of a correlation run."""
    if name.startswith(SCAN_PROCESS_PREFIX) or name.startswith("security_"):
        return False
    known = MetricType.lookup(name)
    return not (known is not None and known.is_security)


def format_labels(labels: dict[str, str]) -> str:
    """``{job=api,host=a}``, or the empty string for no labels."""
    if not labels:
        return ""
    return "{" + ",".join(f"{k}={labels[k]}" for k in sorted(labels)) + "}"


def format_duration(ms: float) -> str:
    """A short human duration: ``800 ms``, ``5 s``, ``12 min``."""
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 120_000:
        return f"{ms / 1000:.0f} s"
    return f"{ms / 60_000:.0f} min"


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def scan_windows(scans: Iterable[ScanRecord], since_ms: int, until_ms: int) -> list[ScanWindow]:
    """Windows of the finished scans that overlap ``[since_ms, until_ms]``, oldest first.

    Imports of other tools' results (a SARIF upload) ran nowhere here: they are
    no scan windows, and not counted among the scans.
    """
    out = [
        ScanWindow(s.started_ms, s.finished_ms, s.scan_id)
        for s in scans
        if s.finished_ms is not None
        and not s.is_import
        and s.finished_ms > s.started_ms
        and s.started_ms <= until_ms
        and s.finished_ms >= since_ms
    ]
    out.sort(key=lambda w: (w.start_ms, w.end_ms))
    return out


def choose_step_ms(windows: Sequence[ScanWindow]) -> int:
    """A tenth of the median scan duration, within 1..10 s."""
    if not windows:
        return MAX_STEP_MS
    median = float(np.median([w.duration_ms for w in windows]))
    return int(min(MAX_STEP_MS, max(MIN_STEP_MS, median // 10)))


def _thin(
    ts: npt.NDArray[np.int64], vs: npt.NDArray[np.float64], start_ms: int, step_ms: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Step averages stamped at each step's middle, for series denser than ``step_ms``."""
    if ts.size < 3 or float(np.median(np.diff(ts))) >= step_ms:
        return ts, vs
    bucket = (ts - start_ms) // step_ms
    starts = np.flatnonzero(np.concatenate(([True], bucket[1:] != bucket[:-1])))
    counts = np.diff(np.append(starts, ts.size))
    sums = np.add.reduceat(vs, starts)
    centres = start_ms + bucket[starts] * step_ms + step_ms // 2
    return centres.astype(np.int64), (sums / counts).astype(np.float64)


@dataclass(slots=True)
class _Loaded:
    inputs: list[SeriesInput] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def _load_performance(
    store: Store, since_ms: int, until_ms: int, step_ms: int, metrics: Sequence[str] | None
) -> _Loaded:
    loaded = _Loaded()
    if metrics:
        names = list(dict.fromkeys(metrics))
    else:
        names = [n for n in store.list_metric_names() if is_performance_metric(n)]
    for name in names:
        found = store.query(name, None, since_ms, until_ms)
        if not found:
            loaded.missing.append(name)
            continue
        for points in found:
            ts, vs = _thin(points.timestamps, points.values, since_ms, step_ms)
            loaded.inputs.append(SeriesInput(name, dict(points.labels), ts, vs))
    return loaded


def _security_series(
    store: Store, since_ms: int, until_ms: int
) -> list[tuple[str, dict[str, str], npt.NDArray[np.int64], npt.NDArray[np.float64]]]:
    """``security_scan_time`` per series, and ``security_violations`` summed over severity."""
    out: list[tuple[str, dict[str, str], npt.NDArray[np.int64], npt.NDArray[np.float64]]] = []
    for name in SECURITY_LEAD_SERIES:
        groups: dict[tuple[tuple[str, str], ...], dict[int, float]] = defaultdict(
            lambda: defaultdict(float)
        )
        for points in store.query(name, None, since_ms, until_ms):
            key = tuple(sorted((k, v) for k, v in points.labels.items() if k != "severity"))
            per_ts = groups[key]
            for t, v in zip(points.timestamps.tolist(), points.values.tolist(), strict=True):
                per_ts[int(t)] += float(v)
        for key, per_ts in groups.items():
            stamps = sorted(per_ts)
            out.append(
                (
                    name,
                    dict(key),
                    np.asarray(stamps, dtype=np.int64),
                    np.asarray([per_ts[t] for t in stamps], dtype=np.float64),
                )
            )
    return out


def _lead_lags(
    store: Store,
    since_ms: int,
    until_ms: int,
    inputs: dict[tuple[str, str], SeriesInput],
    results: Sequence[SeriesCorrelation],
) -> list[LeadLagPair]:
    chosen = [r for r in results if not r.insufficient][:LEAD_LAG_SERIES]
    if not chosen:
        return []
    span = until_ms - since_ms
    step = max(LEAD_LAG_MIN_STEP_MS, math.ceil(span / LEAD_LAG_GRID / 1000) * 1000)
    max_lag = min(LEAD_LAG_MAX_MS, span // 4) // step * step
    pairs: list[LeadLagPair] = []
    for sec_name, sec_labels, sec_ts, sec_vs in _security_series(store, since_ms, until_ms):
        if sec_ts.size < 2:
            continue  # one scan's value is a constant: nothing to follow
        for r in chosen:
            perf = inputs[(r.name, format_labels(r.labels))]
            found = lead_lag(
                sec_ts, sec_vs, perf.timestamps_ms, perf.values, step_ms=step, max_lag_ms=max_lag
            )
            if found.insufficient or found.best_lag_ms is None or found.coefficient is None:
                continue
            pairs.append(
                LeadLagPair(
                    sec_name,
                    sec_labels,
                    r.name,
                    dict(r.labels),
                    found.best_lag_ms,
                    found.coefficient,
                    found.n_points,
                    found.step_ms,
                )
            )
    pairs.sort(key=lambda p: -abs(p.coefficient))
    return pairs


# --------------------------------------------------------------------------- documents


def _correlation_dict(r: SeriesCorrelation) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in asdict(r).items():
        if isinstance(value, float):
            out[key] = _finite(value)
        elif isinstance(value, tuple | list):
            out[key] = [_finite(v) for v in value]
        else:
            out[key] = value
    return out


def _correlation_from_dict(data: dict[str, Any]) -> SeriesCorrelation:
    known = {f.name for f in fields(SeriesCorrelation)}
    values = {k: v for k, v in data.items() if k in known}
    for key in ("inside_quantiles", "quiet_quantiles"):
        values[key] = tuple(float(v) for v in values.get(key) or () if v is not None)
    values["labels"] = dict(values.get("labels") or {})
    return SeriesCorrelation(**values)


def run_document(run: CorrelationRun) -> dict[str, Any]:
    """The JSON document a run is stored as (everything, insufficient results too)."""
    return {
        "version": DOCUMENT_VERSION,
        "alpha": run.alpha,
        "step_ms": run.step_ms,
        "n_scans": run.n_scans,
        "n_series": run.n_series,
        "problems": list(run.problems),
        "results": [_correlation_dict(r) for r in run.results],
        "lead_lag": [
            {
                **asdict(p),
                "coefficient": _finite(p.coefficient),
            }
            for p in run.lead_lags
        ],
    }


def run_from_document(
    doc: Any, *, run_id: int | None, computed_ms: int, since_ms: int, until_ms: int
) -> CorrelationRun:
    """A ``CorrelationRun`` back from ``run_document``'s output; ValueError if malformed."""
    if not isinstance(doc, dict) or not isinstance(doc.get("results"), list):
        raise ValueError(f"correlation run {run_id}: stored document is not a run document")
    try:
        results = tuple(_correlation_from_dict(d) for d in doc["results"])
        lead_lags = tuple(
            LeadLagPair(**p) for p in doc.get("lead_lag", []) if p.get("coefficient") is not None
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"correlation run {run_id}: stored document is malformed ({exc})"
        ) from None
    return CorrelationRun(
        computed_ms=computed_ms,
        since_ms=since_ms,
        until_ms=until_ms,
        alpha=float(doc.get("alpha", 0.01)),
        results=results,
        lead_lags=lead_lags,
        n_scans=int(doc.get("n_scans", 0)),
        n_series=int(doc.get("n_series", len(results))),
        step_ms=doc.get("step_ms"),
        problems=tuple(str(p) for p in doc.get("problems", [])),
        id=run_id,
    )


def latest_run(store: Store) -> CorrelationRun | None:
    """The newest stored run, or None."""
    record = store.latest_correlation_run()
    if record is None:
        return None
    return run_from_document(
        record.results,
        run_id=record.id,
        computed_ms=record.computed_ms,
        since_ms=record.since_ms,
        until_ms=record.until_ms,
    )


def correlation_json(r: SeriesCorrelation) -> dict[str, Any]:
    """One result as ``/api/v1/correlations`` lists it."""
    full = _correlation_dict(r)
    return {key: full[key] for key in _API_FIELDS}


def correlations_json(run: CorrelationRun | None) -> dict[str, Any]:
    """The ``/api/v1/correlations`` document: ``{"computed_ms", "results"}``.

    Only the results that could be tested are listed (ranked); a series with
    too little data has no statistics to show. No run gives
    ``{"computed_ms": null, "results": []}``.
    """
    if run is None:
        return {"computed_ms": None, "results": []}
    return {"computed_ms": run.computed_ms, "results": [correlation_json(r) for r in run.tested]}


def lead_lag_json(run: CorrelationRun) -> list[dict[str, Any]]:
    """The run's lead/lag pairs, strongest first."""
    return [{**asdict(p), "coefficient": _finite(p.coefficient)} for p in run.lead_lags]


def explain(result: SeriesCorrelation, alpha: float) -> str:
    """One sentence on one result, for people."""
    series = f"{result.name}{format_labels(result.labels)}"
    if result.insufficient:
        return f"{series}: not enough data ({result.reason})"
    q = f"q={result.q_value:.2g}" if result.q_value is not None else "q=?"
    if result.effect_pct is not None and result.direction != "none":
        size = f"{abs(result.effect_pct):.0f} % {'higher' if result.direction == 'up' else 'lower'}"
    elif result.direction != "none":
        size = (
            f"{'higher' if result.direction == 'up' else 'lower'} (median {result.quiet_median:g}"
        )
        size += f" quiet, {result.inside_median:g} during scans)"
    else:
        size = "unchanged in median"
    if not result.significant:
        return (
            f"no series changes significantly during scans at q < {alpha:g}; the strongest, "
            f"{series}, is {size} during scans ({q})"
        )
    text = f"{series} is {size} during scans ({q})"
    if result.onset_lag_ms is not None:
        text += f", starting ~{format_duration(result.onset_lag_ms)} after a scan begins"
    return text


# --------------------------------------------------------------------------- the run


def run_correlation(
    store: Store,
    since_ms: int,
    until_ms: int,
    *,
    alpha: float = 0.01,
    metrics: Sequence[str] | None = None,
    now_ms: int | None = None,
    options: CorrelationOptions | None = None,
    save: bool = True,
) -> CorrelationRun:
    """Correlate the stored performance series with the stored scans over a range.

    ``metrics`` limits the run to those metric names (security series included
    when asked for by name). The run is stored (``save``) whenever there were
    scans and series to correlate, even if none had enough data; when scans or
    samples are missing altogether nothing is stored and ``problems`` says what
    is missing. Bad arguments raise ValueError naming them.
    """
    if until_ms <= since_ms:
        raise ValueError(f"until_ms {until_ms} must be after since_ms {since_ms}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    computed = int(now_ms if now_ms is not None else datetime.now(tz=UTC).timestamp() * 1000)
    span = f"between {iso_seconds(since_ms)} and {iso_seconds(until_ms)}"
    windows = scan_windows(store.scans(limit=MAX_SCANS, kind=KIND_SCAN), since_ms, until_ms)
    step = choose_step_ms(windows)
    loaded = _load_performance(store, since_ms, until_ms, step, metrics)
    problems: list[str] = []
    if not windows:
        problems.append(
            f"no scan finished {span}: run `secperf scan` (or `secperf up`) while metrics are"
            " being collected"
        )
    for name in loaded.missing:
        problems.append(f"no samples of {name} {span}")
    if not loaded.inputs and not metrics:
        problems.append(
            f"no performance samples {span}: collect some with `secperf monitor`, or"
            " ingest them through the API"
        )
    base = CorrelationRun(
        computed_ms=computed,
        since_ms=since_ms,
        until_ms=until_ms,
        alpha=alpha,
        n_scans=len(windows),
        n_series=len(loaded.inputs),
        step_ms=step,
    )
    if not windows or not loaded.inputs:
        return replace(base, problems=tuple(problems))

    results = correlate_all(loaded.inputs, windows, alpha=alpha, options=options)
    if not any(not r.insufficient for r in results):
        reasons = sorted({r.reason for r in results})
        problems.append(
            f"no series has enough data around the {len(windows)} scan(s) {span}: "
            + "; ".join(reasons[:3])
        )
    by_key = {(s.name, format_labels(s.labels)): s for s in loaded.inputs}
    pairs = _lead_lags(store, since_ms, until_ms, by_key, results)
    run = replace(base, results=tuple(results), lead_lags=tuple(pairs), problems=tuple(problems))
    if save:
        run_id = store.add_correlation_run(computed, since_ms, until_ms, run_document(run))
        run = replace(run, id=run_id)
    return run
