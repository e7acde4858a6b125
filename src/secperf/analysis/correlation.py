"""Do scans move a performance series? Scan windows against matched quiet windows.

For each series, the samples inside scan windows are compared with the samples
inside quiet windows matched to them (same length, no scan, comparable time of
day: see ``secperf.analysis.windows``). What is computed, exactly:

- **KS on first differences**: ``scipy.stats.ks_2samp`` between the first
  differences taken *within* each inside window and within each quiet window
  (never across a window boundary). As in Netdata's KS2 metric correlations,
  this sees a change in how the series moves (noise, spikes), not only its level.
- **Mann-Whitney U on levels**: the two-sided p-value of ``scipy.stats.mannwhitneyu``
  between the inside and quiet values (a shift of the level), computed by
  ``mann_whitney_p`` with scipy's own formula but without its per-call overhead.
- **p_value** = ``min(1, 2 * min(ks_p, mw_p))``: either test may show the effect;
  the factor 2 (Bonferroni) pays for looking at two.
- **q_value**: Benjamini-Hochberg over every series tested in one
  ``correlate_all`` call (for ``correlate_series`` alone, q = p);
  ``significant`` is ``q < alpha``.
- **effect_pct**: ``(median_inside / median_quiet - 1) * 100``; None when the quiet
  median is 0. ``direction`` is up, down or none by the sign of the median change.
- **volume_score**: Netdata's "volume" algorithm: the relative change of the
  average, ``(mean_inside - mean_quiet) / |mean_quiet|``, or ``mean_inside`` when the
  quiet mean is 0 (Netdata divides by the signed baseline and ranks by the
  absolute value; we keep the sign meaningful for negative baselines).
  Unlike Netdata we do not spread the scores into ranks across series.
- **onset_lag_ms**: for each scan window, the first sample (from the scan's
  start) at which the centred rolling median of ``onset_points`` samples leaves
  the quiet band ``quiet median +- onset_k * MAD`` (MAD scaled to a standard
  deviation) in the direction of the effect, minus the scan's start; the
  median over the scan windows where that happens. None when it never does.

Samples are treated as independent. Real series are autocorrelated, which makes
both tests optimistic for long windows at a fine resolution; a minimum effect
(as alert rules apply) keeps that from raising noise.

``lead_lag`` cross-correlates a security series (violations, scan time) with a
performance series on a common grid.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
from scipy import special, stats

from secperf.analysis.windows import (
    QuietWindow,
    ScanWindow,
    ScanWindowLike,
    as_scan_windows,
    match_quiet_windows,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
MAD_TO_SD = 1.4826  # MAD of a normal distribution times this is its standard deviation


@dataclass(frozen=True, slots=True)
class SeriesInput:
    """One series to correlate: its identity and its samples (UTC ms, values)."""

    name: str
    labels: dict[str, str]
    timestamps_ms: npt.ArrayLike
    values: npt.ArrayLike


@dataclass(frozen=True, slots=True)
class SeriesCorrelation:
    """How one series behaves during scans compared with quiet times.

    Statistics are None when ``insufficient`` is set (``reason`` says why).
    Quantiles are at ``QUANTILES`` (5, 25, 50, 75, 95 %) for a box chart.
    """

    name: str
    labels: dict[str, str]
    n_inside: int
    n_quiet: int
    n_scans: int  # scan windows with at least one sample inside
    n_quiet_windows: int
    ks_statistic: float | None = None
    ks_p: float | None = None
    mw_p: float | None = None
    p_value: float | None = None
    q_value: float | None = None
    effect_pct: float | None = None
    volume_score: float | None = None
    onset_lag_ms: float | None = None
    direction: str = "none"  # up | down | none
    significant: bool = False
    inside_median: float | None = None
    quiet_median: float | None = None
    inside_quantiles: tuple[float, ...] = ()
    quiet_quantiles: tuple[float, ...] = ()
    insufficient: bool = False
    reason: str = ""


@dataclass(frozen=True, slots=True)
class LeadLag:
    """The lag at which a performance series best follows a security series.

    A positive ``best_lag_ms`` means the performance series moves *after* the
    security series (security leads); ``coefficient`` is the Pearson correlation
    at that lag (its sign says whether they move together or opposite).
    """

    best_lag_ms: int | None
    coefficient: float | None
    n_points: int
    step_ms: int
    lags_ms: tuple[int, ...] = ()
    coefficients: tuple[float, ...] = ()
    insufficient: bool = False
    reason: str = ""


# --------------------------------------------------------------------------- helpers


def _as_samples(
    timestamps_ms: npt.ArrayLike, values: npt.ArrayLike, name: str
) -> tuple[IntArray, FloatArray]:
    """Validated (timestamps, values), sorted by time; ValueError naming the series."""
    try:
        ts = np.asarray(timestamps_ms, dtype=np.int64)
        vs = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(
            f"series {name!r}: timestamps and values must be numeric ({exc})"
        ) from None
    if ts.ndim != 1 or vs.ndim != 1:
        raise ValueError(f"series {name!r}: timestamps and values must be 1-d arrays")
    if ts.size != vs.size:
        raise ValueError(
            f"series {name!r}: {ts.size} timestamps but {vs.size} values; they must pair up"
        )
    bad = np.flatnonzero(~np.isfinite(vs))
    if bad.size:
        raise ValueError(
            f"series {name!r}: value at index {int(bad[0])} (t={int(ts[bad[0]])}) is not finite"
        )
    if ts.size > 1 and bool(np.any(ts[1:] < ts[:-1])):
        order = np.argsort(ts, kind="stable")
        ts, vs = ts[order], vs[order]
    return ts, vs


def _slices(ts: IntArray, starts: IntArray, ends: IntArray) -> tuple[IntArray, IntArray]:
    return (
        np.searchsorted(ts, starts, side="left").astype(np.int64),
        np.searchsorted(ts, ends, side="left").astype(np.int64),
    )


def _gather(values: FloatArray, lo: IntArray, hi: IntArray) -> tuple[FloatArray, FloatArray]:
    """The values of all windows, and their first differences within each window."""
    parts = [values[a:b] for a, b in zip(lo.tolist(), hi.tolist(), strict=True) if b > a]
    if not parts:
        empty = np.zeros(0, dtype=np.float64)
        return empty, empty
    diffs = [np.diff(p) for p in parts if p.size > 1]
    return (
        np.concatenate(parts),
        np.concatenate(diffs) if diffs else np.zeros(0, dtype=np.float64),
    )


def _relative(new: float, base: float) -> float | None:
    if base == 0:
        return None
    return (new / base - 1.0) * 100.0


def _onset_lag(
    ts: IntArray,
    values: FloatArray,
    lo: IntArray,
    hi: IntArray,
    starts: IntArray,
    threshold: float,
    upward: bool,
    points: int,
) -> float | None:
    """Median over scan windows of the delay until the rolling median crosses ``threshold``."""
    half = points // 2
    lags: list[float] = []
    for a, b, start in zip(lo.tolist(), hi.tolist(), starts.tolist(), strict=True):
        # Centred median: with an odd window the median crosses when most of the
        # window is past the onset, i.e. at the onset itself, not ``half`` later.
        # The ``half`` samples before the scan let the first inside sample be centred.
        first = max(a - half, 0)
        if b - first < points:
            continue
        rolling = np.median(
            np.lib.stride_tricks.sliding_window_view(values[first:b], points), axis=1
        )
        centre = np.arange(first + half, b - half)
        crossed = (rolling > threshold if upward else rolling < threshold) & (centre >= a)
        hits = np.flatnonzero(crossed)
        if hits.size:
            lags.append(float(ts[int(centre[hits[0]])] - start))
    return float(np.median(lags)) if lags else None


def mann_whitney_p(x: FloatArray, y: FloatArray) -> float:
    """Two-sided Mann-Whitney U p-value, as ``scipy.stats.mannwhitneyu`` gives it.

    For samples of more than 8 values (or with ties) scipy uses the normal
    approximation with tie correction and continuity correction; that is
    computed here directly, because scipy's argument handling costs about ten
    times the arithmetic on series of a few thousand points. Smaller samples go
    to scipy (its exact distribution).
    """
    n1, n2 = x.size, y.size
    if n1 == 0 or n2 == 0:
        raise ValueError("mann_whitney_p needs two non-empty samples")
    both = np.concatenate((x, y))
    uniq, inverse, counts = np.unique(both, return_inverse=True, return_counts=True)
    if min(n1, n2) <= 8 and uniq.size == both.size:
        return float(stats.mannwhitneyu(x, y, alternative="two-sided").pvalue)
    n = n1 + n2
    # Average rank of each distinct value: ranks before it plus the middle of its run.
    avg_rank = np.cumsum(counts) - (counts - 1) / 2.0
    r1 = float(avg_rank[inverse[:n1]].sum())
    u1 = r1 - n1 * (n1 + 1) / 2.0
    u = max(u1, n1 * n2 - u1)
    ties = float(np.sum(counts.astype(np.float64) ** 3 - counts))
    var = n1 * n2 / 12.0 * ((n + 1) - ties / (n * (n - 1)))
    if var <= 0:
        return 1.0  # every value equal
    z = (u - n1 * n2 / 2.0 - 0.5) / math.sqrt(var)
    return float(min(1.0, 2.0 * special.ndtr(-z)))


def benjamini_hochberg(p_values: npt.ArrayLike) -> FloatArray:
    """Benjamini-Hochberg q-values (step-up, monotone, capped at 1), in input order."""
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"p_values must be 1-d, got shape {p.shape}")
    if p.size == 0:
        return p.copy()
    if bool(np.any((p < 0) | (p > 1) | ~np.isfinite(p))):
        raise ValueError("p_values must all lie in [0, 1]")
    n = p.size
    order = np.argsort(p, kind="stable")
    scaled = p[order] * n / np.arange(1, n + 1)
    # q_(i) = min over j >= i of p_(j) * n / j
    q_sorted = np.minimum.accumulate(scaled[::-1])[::-1]
    q = np.empty(n, dtype=np.float64)
    q[order] = np.minimum(q_sorted, 1.0)
    return q


# --------------------------------------------------------------------------- correlation


def _correlate(
    name: str,
    labels: dict[str, str],
    ts: IntArray,
    vs: FloatArray,
    scans: list[ScanWindow],
    quiet: list[QuietWindow],
    *,
    alpha: float,
    min_points: int,
    onset_points: int,
    onset_k: float,
) -> SeriesCorrelation:
    scan_starts = np.array([s.start_ms for s in scans], dtype=np.int64)
    scan_ends = np.array([s.end_ms for s in scans], dtype=np.int64)
    q_starts = np.array([q.start_ms for q in quiet], dtype=np.int64)
    q_ends = np.array([q.end_ms for q in quiet], dtype=np.int64)
    in_lo, in_hi = _slices(ts, scan_starts, scan_ends)
    q_lo, q_hi = _slices(ts, q_starts, q_ends)
    inside, inside_diff = _gather(vs, in_lo, in_hi)
    quiet_vals, quiet_diff = _gather(vs, q_lo, q_hi)
    base = SeriesCorrelation(
        name=name,
        labels=dict(labels),
        n_inside=int(inside.size),
        n_quiet=int(quiet_vals.size),
        n_scans=int(np.count_nonzero(in_hi > in_lo)),
        n_quiet_windows=int(np.count_nonzero(q_hi > q_lo)),
    )
    problems = []
    if not scans:
        problems.append("no scan windows")
    elif not quiet:
        problems.append("no quiet window could be matched (data too short or scans too dense)")
    if inside.size < min_points:
        problems.append(f"{inside.size} samples inside scan windows (need {min_points})")
    if quiet_vals.size < min_points:
        problems.append(f"{quiet_vals.size} samples in quiet windows (need {min_points})")
    if problems:
        return replace(base, insufficient=True, reason="; ".join(problems))

    if inside_diff.size >= 2 and quiet_diff.size >= 2:
        ks = stats.ks_2samp(inside_diff, quiet_diff)
        ks_stat, ks_p = float(ks.statistic), float(ks.pvalue)
    else:
        ks_stat, ks_p = 0.0, 1.0
    if np.ptp(inside) == 0 and np.ptp(quiet_vals) == 0 and inside[0] == quiet_vals[0]:
        mw_p = 1.0  # identical constants: scipy would return nan
    else:
        mw_p = mann_whitney_p(inside, quiet_vals)
    p_value = min(1.0, 2.0 * min(ks_p, mw_p))

    inside_q = np.quantile(inside, QUANTILES)
    quiet_q = np.quantile(quiet_vals, QUANTILES)
    inside_median, quiet_median = float(inside_q[2]), float(quiet_q[2])
    diff = inside_median - quiet_median
    direction = "up" if diff > 0 else "down" if diff < 0 else "none"
    mean_in, mean_quiet = float(inside.mean()), float(quiet_vals.mean())
    volume = (mean_in - mean_quiet) / abs(mean_quiet) if mean_quiet != 0 else mean_in

    onset = None
    if direction != "none":
        mad = float(np.median(np.abs(quiet_vals - quiet_median))) * MAD_TO_SD
        band = onset_k * mad
        threshold = quiet_median + band if direction == "up" else quiet_median - band
        onset = _onset_lag(
            ts, vs, in_lo, in_hi, scan_starts, threshold, direction == "up", onset_points
        )
    return replace(
        base,
        ks_statistic=ks_stat,
        ks_p=ks_p,
        mw_p=mw_p,
        p_value=p_value,
        q_value=p_value,
        effect_pct=_relative(inside_median, quiet_median),
        volume_score=volume,
        onset_lag_ms=onset,
        direction=direction,
        significant=p_value < alpha,
        inside_median=inside_median,
        quiet_median=quiet_median,
        inside_quantiles=tuple(float(v) for v in inside_q),
        quiet_quantiles=tuple(float(v) for v in quiet_q),
    )


@dataclass(frozen=True, slots=True)
class CorrelationOptions:
    """Knobs shared by ``correlate_series`` and ``correlate_all``."""

    alpha: float = 0.01
    lag_ms: int = 0  # shift scan windows by this much (effects that trail the scan)
    guard_ms: int = 60_000  # blocked margin around each scan
    quiet_per_scan: int = 3
    max_days: int = 7
    min_points: int = 10
    onset_points: int = 5  # odd: the rolling median is centred
    onset_k: float = 3.0

    def check(self) -> None:
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        if self.min_points < 2:
            raise ValueError(f"min_points must be at least 2, got {self.min_points}")
        if self.onset_points < 1 or self.onset_points % 2 == 0:
            raise ValueError(f"onset_points must be a positive odd number, got {self.onset_points}")


def _quiet_for(
    scans: list[ScanWindow], ts: IntArray, opts: CorrelationOptions
) -> list[QuietWindow]:
    if ts.size == 0 or not scans:
        return []
    return match_quiet_windows(
        scans,
        data_start_ms=int(ts[0]),
        data_end_ms=int(ts[-1]),
        guard_ms=opts.guard_ms,
        per_scan=opts.quiet_per_scan,
        max_days=opts.max_days,
    )


def correlate_series(
    name: str,
    labels: dict[str, str],
    timestamps_ms: npt.ArrayLike,
    values: npt.ArrayLike,
    scan_windows: Sequence[ScanWindowLike],
    *,
    lag_ms: int = 0,
    options: CorrelationOptions | None = None,
) -> SeriesCorrelation:
    """Compare one series inside scan windows with matched quiet windows.

    ``scan_windows`` holds ``ScanWindow`` objects or ``(start_ms, end_ms, scan_id)``
    tuples. Too little data gives a result marked ``insufficient`` with a reason;
    malformed input (mismatched lengths, non-finite values, a window ending
    before it starts) raises ValueError naming the series or the window.
    """
    opts = options or CorrelationOptions()
    opts.check()
    ts, vs = _as_samples(timestamps_ms, values, name)
    scans = as_scan_windows(scan_windows, lag_ms=lag_ms or opts.lag_ms)
    quiet = _quiet_for(scans, ts, opts)
    return _correlate(
        name,
        labels,
        ts,
        vs,
        scans,
        quiet,
        alpha=opts.alpha,
        min_points=opts.min_points,
        onset_points=opts.onset_points,
        onset_k=opts.onset_k,
    )


def _rank_key(r: SeriesCorrelation) -> tuple[int, float, float]:
    if r.insufficient or r.q_value is None:
        return (2, 1.0, 0.0)
    return (0 if r.significant else 1, r.q_value, -abs(r.effect_pct or 0.0))


def correlate_all(
    series: Sequence[SeriesInput],
    scan_windows: Sequence[ScanWindowLike],
    *,
    alpha: float = 0.01,
    options: CorrelationOptions | None = None,
) -> list[SeriesCorrelation]:
    """Correlate every series with the scans; Benjamini-Hochberg across them; ranked.

    Ranking: significant first, then by q-value, then by the size of the effect;
    series with insufficient data last. Quiet windows are matched once per
    distinct data span, so series sampled over the same period share them.
    ``alpha`` overrides ``options.alpha``.
    """
    opts = replace(options, alpha=alpha) if options else CorrelationOptions(alpha=alpha)
    opts.check()
    scans = as_scan_windows(scan_windows, lag_ms=opts.lag_ms)
    quiet_cache: dict[tuple[int, int], list[QuietWindow]] = {}
    results: list[SeriesCorrelation] = []
    for s in series:
        ts, vs = _as_samples(s.timestamps_ms, s.values, s.name)
        span = (int(ts[0]), int(ts[-1])) if ts.size else (0, -1)
        if span not in quiet_cache:
            quiet_cache[span] = _quiet_for(scans, ts, opts)
        results.append(
            _correlate(
                s.name,
                s.labels,
                ts,
                vs,
                scans,
                quiet_cache[span],
                alpha=opts.alpha,
                min_points=opts.min_points,
                onset_points=opts.onset_points,
                onset_k=opts.onset_k,
            )
        )
    tested = [(i, r.p_value) for i, r in enumerate(results) if r.p_value is not None]
    if tested:
        q = benjamini_hochberg([p for _, p in tested])
        for (i, _), qi in zip(tested, q.tolist(), strict=True):
            results[i] = replace(results[i], q_value=qi, significant=qi < opts.alpha)
    results.sort(key=_rank_key)
    return results


# --------------------------------------------------------------------------- lead / lag


def _resample(ts: IntArray, vs: FloatArray, start: int, step: int, bins: int) -> FloatArray:
    """Bin means on the grid; empty bins carry the previous value (first ones the next)."""
    idx = (ts - start) // step
    keep = (idx >= 0) & (idx < bins)
    idx, vs = idx[keep], vs[keep]
    sums = np.bincount(idx, weights=vs, minlength=bins)
    counts = np.bincount(idx, minlength=bins)
    out = np.full(bins, np.nan)
    filled = counts > 0
    out[filled] = sums[filled] / counts[filled]
    # Forward fill: a security series (violations of the last scan) holds its value.
    positions = np.where(filled, np.arange(bins), -1)
    np.maximum.accumulate(positions, out=positions)
    first = int(np.argmax(filled))
    positions[positions < 0] = first
    return out[positions]


def lead_lag(
    security_ts_ms: npt.ArrayLike,
    security_values: npt.ArrayLike,
    perf_ts_ms: npt.ArrayLike,
    perf_values: npt.ArrayLike,
    *,
    step_ms: int,
    max_lag_ms: int,
    min_points: int = 20,
) -> LeadLag:
    """Normalised cross-correlation of a security and a performance series over lags.

    Both series are resampled onto a common grid of ``step_ms`` over the time
    they overlap (bin means; empty bins hold the previous value). For each lag
    ``k`` in ``-L..+L`` steps (``L = max_lag_ms // step_ms``), the Pearson
    correlation of ``security[t]`` with ``perf[t + k]`` over the overlapping part
    is computed; the lag with the largest absolute correlation wins.
    """
    if step_ms <= 0:
        raise ValueError(f"step_ms must be positive, got {step_ms}")
    if max_lag_ms < 0:
        raise ValueError(f"max_lag_ms must not be negative, got {max_lag_ms}")
    sts, svs = _as_samples(security_ts_ms, security_values, "security series")
    pts, pvs = _as_samples(perf_ts_ms, perf_values, "performance series")
    if sts.size == 0 or pts.size == 0:
        return LeadLag(None, None, 0, step_ms, insufficient=True, reason="a series is empty")
    start = max(int(sts[0]), int(pts[0]))
    end = min(int(sts[-1]), int(pts[-1]))
    bins = (end - start) // step_ms + 1 if end >= start else 0
    max_lag = max_lag_ms // step_ms
    if bins - max_lag < min_points:
        return LeadLag(
            None,
            None,
            max(bins, 0),
            step_ms,
            insufficient=True,
            reason=(
                f"{max(bins, 0)} common grid points of {step_ms} ms; need {min_points} beyond "
                f"the largest lag of {max_lag} steps"
            ),
        )
    x = _resample(sts, svs, start, step_ms, bins)
    y = _resample(pts, pvs, start, step_ms, bins)
    lags = list(range(-max_lag, max_lag + 1))
    coefs: list[float] = []
    for k in lags:
        a = x[: bins - k] if k >= 0 else x[-k:]
        b = y[k:] if k >= 0 else y[: bins + k]
        sa, sb = a.std(), b.std()
        if sa == 0 or sb == 0:
            coefs.append(0.0)  # a constant stretch correlates with nothing
            continue
        coefs.append(float(np.mean((a - a.mean()) * (b - b.mean())) / (sa * sb)))
    best = int(np.argmax(np.abs(coefs)))
    if coefs[best] == 0.0:
        return LeadLag(
            None,
            0.0,
            bins,
            step_ms,
            tuple(k * step_ms for k in lags),
            tuple(coefs),
            insufficient=True,
            reason="a series is constant over the common time range",
        )
    return LeadLag(
        best_lag_ms=lags[best] * step_ms,
        coefficient=coefs[best],
        n_points=bins,
        step_ms=step_ms,
        lags_ms=tuple(k * step_ms for k in lags),
        coefficients=tuple(coefs),
    )


def effect_is_material(result: SeriesCorrelation, min_effect_pct: float) -> bool:
    """True when ``result`` is significant and its median change reaches ``min_effect_pct``."""
    if not result.significant or result.effect_pct is None:
        return False
    return math.fabs(result.effect_pct) >= min_effect_pct
