"""Rule evaluation over stored series: window aggregations and the three rule kinds.

Aggregations over the samples of one series in ``[now - window, now]``:
``last``, ``avg``, ``min``, ``max``, ``p50`` / ``p95`` / ``p99`` (linear
interpolation, as Prometheus' ``quantile_over_time``), ``count``, and for
counters ``increase`` (sum of the rises, a drop counted as a reset to 0, as
Prometheus does but without extrapolating to the window's edges) and ``rate``
(``increase`` per second over the time between the first and last sample).

``SeriesReader`` reads each metric once per evaluation tick (the widest window
any rule needs) and slices it per rule, merging in the samples the engine
published itself and the store has not written yet (``RecentSamples``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from secperf.alerts.rules import Rule
from secperf.alerts.silences import matches_all
from secperf.analysis.correlation import CorrelationOptions, SeriesInput, correlate_all
from secperf.analysis.windows import ScanWindow
from secperf.model import Sample
from secperf.store import Store

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

MAD_TO_SD = 1.4826
_PERCENTILES = {"p50": 50.0, "p95": 95.0, "p99": 99.0}


def aggregate(aggregation: str, ts: IntArray, values: FloatArray) -> float | None:
    """One aggregation of a series' samples (sorted by time); None without enough data."""
    n = values.size
    if n == 0:
        return None
    if aggregation == "last":
        return float(values[-1])
    if aggregation == "avg":
        return float(values.mean())
    if aggregation == "min":
        return float(values.min())
    if aggregation == "max":
        return float(values.max())
    if aggregation == "count":
        return float(n)
    if aggregation in _PERCENTILES:
        return float(np.percentile(values, _PERCENTILES[aggregation]))
    if aggregation in ("increase", "rate"):
        if n < 2:
            return None
        diffs = np.diff(values)
        # A counter that went down was reset to 0: its new value is the rise.
        rises = np.where(diffs < 0, values[1:], diffs)
        increase = float(rises.sum())
        if aggregation == "increase":
            return increase
        span_s = (int(ts[-1]) - int(ts[0])) / 1000.0
        return increase / span_s if span_s > 0 else None
    raise ValueError(f"unknown aggregation {aggregation!r}")


@dataclass(frozen=True, slots=True)
class SeriesData:
    """One series' samples in a time range."""

    name: str
    labels: dict[str, str]
    ts: IntArray
    values: FloatArray

    def between(self, start_ms: int, end_ms: int) -> SeriesData:
        """The samples in ``[start_ms, end_ms]``."""
        lo = int(np.searchsorted(self.ts, start_ms, side="left"))
        hi = int(np.searchsorted(self.ts, end_ms, side="right"))
        return SeriesData(self.name, self.labels, self.ts[lo:hi], self.values[lo:hi])


def _key(labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


class RecentSamples:
    """Samples the engine published, kept until the store has surely written them."""

    def __init__(self, horizon_ms: int = 600_000) -> None:
        self.horizon_ms = horizon_ms
        self._series: dict[str, dict[tuple[tuple[str, str], ...], list[tuple[int, float]]]] = {}

    def add(self, samples: Iterable[Sample]) -> None:
        for s in samples:
            self._series.setdefault(s.name, {}).setdefault(_key(s.labels), []).append(
                (s.timestamp_ms, float(s.value))
            )

    def prune(self, now_ms: int) -> None:
        """Forget samples older than the horizon."""
        cutoff = now_ms - self.horizon_ms
        for name in list(self._series):
            by_labels = self._series[name]
            for key in list(by_labels):
                kept = [p for p in by_labels[key] if p[0] >= cutoff]
                if kept:
                    by_labels[key] = kept
                else:
                    del by_labels[key]
            if not by_labels:
                del self._series[name]

    def names(self) -> set[str]:
        return set(self._series)

    def series(self, name: str) -> dict[tuple[tuple[str, str], ...], list[tuple[int, float]]]:
        return self._series.get(name, {})


def _merge(
    ts: IntArray, values: FloatArray, extra: list[tuple[int, float]]
) -> tuple[IntArray, FloatArray]:
    """Union of two sample sets; on equal timestamps the ``extra`` value wins."""
    ets = np.array([p[0] for p in extra], dtype=np.int64)
    evs = np.array([p[1] for p in extra], dtype=np.float64)
    all_ts = np.concatenate((ts, ets))
    all_vs = np.concatenate((values, evs))
    order = np.argsort(all_ts, kind="stable")
    all_ts, all_vs = all_ts[order], all_vs[order]
    # Keep the last of each run of equal timestamps (the extra ones come later).
    keep = np.ones(all_ts.size, dtype=bool)
    keep[:-1] = all_ts[1:] != all_ts[:-1]
    return all_ts[keep], all_vs[keep]


class SeriesReader:
    """Reads metrics from the store once per tick, plus the engine's recent samples."""

    def __init__(self, store: Store, recent: RecentSamples | None = None) -> None:
        self.store = store
        self.recent = recent
        self._cache: dict[str, tuple[int, int, list[SeriesData]]] = {}
        self.queries = 0

    def reset(self) -> None:
        """Forget what was read (call at the start of each tick)."""
        self._cache.clear()

    def read(self, name: str, start_ms: int, end_ms: int) -> list[SeriesData]:
        """Every series of ``name`` with samples in ``[start_ms, end_ms]``."""
        cached = self._cache.get(name)
        if cached is None or cached[0] > start_ms or cached[1] < end_ms:
            cached = (start_ms, end_ms, self._load(name, start_ms, end_ms))
            self._cache[name] = cached
        out: list[SeriesData] = []
        for series in cached[2]:
            part = series.between(start_ms, end_ms)
            if part.ts.size:
                out.append(part)
        return out

    def prefetch(self, name: str, start_ms: int, end_ms: int) -> None:
        """Read ``name`` over a range wide enough for every rule of this tick."""
        self._cache[name] = (start_ms, end_ms, self._load(name, start_ms, end_ms))

    def _load(self, name: str, start_ms: int, end_ms: int) -> list[SeriesData]:
        self.queries += 1
        found: dict[tuple[tuple[str, str], ...], SeriesData] = {}
        for points in self.store.query(name, None, start_ms, end_ms):
            found[_key(points.labels)] = SeriesData(
                name, points.labels, points.timestamps, points.values
            )
        if self.recent is not None:
            for key, pts in self.recent.series(name).items():
                inside = [p for p in pts if start_ms <= p[0] <= end_ms]
                if not inside:
                    continue
                base = found.get(key)
                if base is None:
                    empty_ts = np.empty(0, np.int64)
                    empty_vs = np.empty(0, np.float64)
                    ts, vs = _merge(empty_ts, empty_vs, inside)
                    found[key] = SeriesData(name, dict(key), ts, vs)
                else:
                    ts, vs = _merge(base.ts, base.values, inside)
                    found[key] = SeriesData(name, base.labels, ts, vs)
        return list(found.values())

    def matching(self, rule: Rule, start_ms: int, end_ms: int) -> list[SeriesData]:
        """The series of the rule's metric that its matchers accept."""
        return [
            s
            for s in self.read(rule.metric, start_ms, end_ms)
            if matches_all(rule.matchers, s.labels)
        ]


@dataclass(frozen=True, slots=True)
class Observation:
    """What one rule saw on one series this tick.

    ``fires``: the firing condition holds; ``holds``: a firing alert stays
    firing (the resolve side of hysteresis). ``extra`` goes to annotations.
    """

    labels: dict[str, str]
    value: float
    fires: bool
    holds: bool
    extra: dict[str, str] = field(default_factory=dict)


def evaluate_threshold(rule: Rule, reader: SeriesReader, now_ms: int) -> list[Observation]:
    """``aggregation(metric[window]) op threshold`` for every matching series."""
    out: list[Observation] = []
    for series in reader.matching(rule, now_ms - rule.window_ms, now_ms):
        value = aggregate(rule.aggregation, series.ts, series.values)
        if value is None:
            continue
        out.append(Observation(series.labels, value, rule.fires(value), rule.holds(value)))
    return out


def _directional(effect: float, direction: str) -> float:
    if direction == "up":
        return effect
    if direction == "down":
        return -effect
    return abs(effect)


#: The margin kept free of quiet windows around each scan: a sixth of the usual
#: time between scans, from 2 s up to the correlation's own 60 s.
GUARD_MIN_MS = 2_000
GUARD_MAX_MS = 60_000


def quiet_guard_ms(windows: Sequence[ScanWindow]) -> int:
    """The guard around scans for matching quiet windows, from how far apart scans are.

    60 s suits scans minutes or hours apart; scans every 30 s (a busy CI
    runner, the demo) would leave no quiet time at all, and a service recovers
    within seconds of a scan's end, so a sixth of the median gap is kept.
    """
    starts = sorted(w.start_ms for w in windows)
    if len(starts) < 2:
        return GUARD_MAX_MS
    gap = float(np.median(np.diff(np.array(starts, dtype=np.int64))))
    return int(min(GUARD_MAX_MS, max(GUARD_MIN_MS, gap / 6)))


@dataclass(frozen=True, slots=True)
class Waiting:
    """A series a rule cannot judge yet: how much data it has of what it needs."""

    series: str  # metric{labels}
    have: int
    need: int
    unit: str = "samples"

    def text(self) -> str:
        """``not enough data yet (12 of 20 samples, series x{job=api})``."""
        return f"not enough data yet ({self.have} of {self.need} {self.unit}, series {self.series})"


def series_name(name: str, labels: Mapping[str, str]) -> str:
    """``name{a=1,b=2}`` (labels sorted), or ``name`` without labels."""
    if not labels:
        return name
    return name + "{" + ",".join(f"{k}={labels[k]}" for k in sorted(labels)) + "}"


def evaluate_scan_impact(
    rule: Rule,
    reader: SeriesReader,
    now_ms: int,
    scans: Sequence[ScanWindow],
    waiting: list[Waiting] | None = None,
) -> list[Observation]:
    """Series that scans move by at least ``min_effect_pct`` with q < ``max_q``.

    A series without enough data to judge (fewer finished scans than
    ``min_scans``, too few samples inside scans or in quiet windows) gives no
    observation; it is added to ``waiting`` with what it has and needs.
    """
    params = rule.params
    lookback = int(params["lookback"]) or rule.window_ms
    start = now_ms - lookback
    # Only finished scans: a running one's effect is not known yet.
    windows = [s for s in scans if not s.running and s.end_ms > s.start_ms and s.start_ms >= start]
    notes: list[Waiting] = waiting if waiting is not None else []
    min_scans = max(int(params.get("min_scans", 1)), 1)
    if len(windows) < min_scans:
        # Too few scans to correlate: the live series are named, not a day of them read.
        recent = reader.matching(rule, now_ms - min(lookback, rule.window_ms), now_ms)
        notes += [
            Waiting(series_name(s.name, s.labels), len(windows), min_scans, "scans") for s in recent
        ]
        return []
    series = reader.matching(rule, start, now_ms)
    if not series:
        return []
    inputs = [SeriesInput(s.name, s.labels, s.ts, s.values) for s in series]
    options = CorrelationOptions(alpha=float(params["max_q"]), guard_ms=quiet_guard_ms(windows))
    results = correlate_all(inputs, windows, options=options)
    min_effect = float(params["min_effect_pct"])
    direction = str(params["direction"])
    out: list[Observation] = []
    for r in results:
        if r.insufficient:
            have = min(r.n_inside, r.n_quiet)
            notes.append(Waiting(series_name(r.name, r.labels), have, options.min_points))
            continue
        if r.n_scans < min_scans:
            notes.append(Waiting(series_name(r.name, r.labels), r.n_scans, min_scans, "scans"))
            continue
        if r.effect_pct is None or r.q_value is None:
            continue
        effect = _directional(r.effect_pct, direction)
        significant = r.q_value < float(params["max_q"])
        fires = significant and effect >= min_effect
        keep_at = rule.resolve_threshold if rule.resolve_threshold is not None else min_effect
        extra = {
            "effect_pct": f"{r.effect_pct:.1f}",
            "q_value": f"{r.q_value:.3g}",
            "scans": str(r.n_scans),
            "inside_median": f"{r.inside_median:.4g}" if r.inside_median is not None else "",
            "quiet_median": f"{r.quiet_median:.4g}" if r.quiet_median is not None else "",
        }
        out.append(
            Observation(r.labels, r.effect_pct, fires, significant and effect >= keep_at, extra)
        )
    return out


def explained_by_scan(
    scans: Sequence[ScanWindow], start_ms: int, end_ms: int, margin_ms: int, now_ms: int
) -> ScanWindow | None:
    """A scan that ran within ``margin_ms`` of ``[start_ms, end_ms]``, if any.

    A running scan counts up to ``now_ms``, whatever moment its window was taken at.
    """
    for scan in scans:
        scan_end = now_ms if scan.running else scan.end_ms
        if scan.start_ms - margin_ms <= end_ms and scan_end + margin_ms >= start_ms:
            return scan
    return None


def evaluate_unexplained_anomaly(
    rule: Rule,
    reader: SeriesReader,
    now_ms: int,
    scans: Sequence[ScanWindow],
    waiting: list[Waiting] | None = None,
) -> list[Observation]:
    """Series far outside ``median +- k * MAD`` of their history with no known cause.

    The recent part (``recent``) is compared with the rest of the window; the
    value is the deviation in scaled MADs (signed). A scan overlapping the
    recent part (widened by ``scan_margin``), or any sample of an
    ``explained_by`` metric there, explains the anomaly. A series with less
    history than ``min_points`` is added to ``waiting``.
    """
    params = rule.params
    recent = int(params["recent"]) or 60_000
    margin = int(params["scan_margin"])
    k = float(params["k"])
    keep_k = rule.resolve_threshold if rule.resolve_threshold is not None else k
    min_points = int(params["min_points"])
    window_start = now_ms - rule.window_ms
    recent_start = now_ms - recent
    scan = explained_by_scan(scans, recent_start, now_ms, margin, now_ms)
    causes: list[str] = []
    for other in params.get("explained_by", ()):
        if reader.read(other, recent_start - margin, now_ms):
            causes.append(other)
    out: list[Observation] = []
    for series in reader.matching(rule, window_start, now_ms):
        split = int(np.searchsorted(series.ts, recent_start, side="left"))
        history = series.values[:split]
        current = series.values[split:]
        if history.size < min_points or current.size == 0:
            if waiting is not None and history.size < min_points:
                waiting.append(
                    Waiting(series_name(series.name, series.labels), history.size, min_points)
                )
            continue
        median = float(np.median(history))
        mad = float(np.median(np.abs(history - median)))
        # A flat history has MAD 0: a floor keeps any change from being infinite.
        scale = max(MAD_TO_SD * mad, 1e-3 * max(abs(median), 1.0))
        level = float(np.median(current))
        deviation = (level - median) / scale
        explained = scan is not None or bool(causes)
        extra: dict[str, Any] = {
            "baseline_median": f"{median:.4g}",
            "baseline_mad": f"{mad:.4g}",
            "current": f"{level:.4g}",
        }
        if scan is not None:
            extra["explained_by"] = f"scan {scan.scan_id}"
        elif causes:
            extra["explained_by"] = ", ".join(causes)
        out.append(
            Observation(
                series.labels,
                deviation,
                abs(deviation) > k and not explained,
                abs(deviation) > keep_k and not explained,
                {key: str(v) for key, v in extra.items()},
            )
        )
    return out
