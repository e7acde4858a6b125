"""Did a benchmark, or the scan itself, get slower? Lower is better throughout.

``compare_benchmark`` picks the strongest evidence available:

1. **Per-round data on both sides** (pytest-benchmark, asv samples): a one-sided
   Mann-Whitney U test between the current rounds and the rounds of the latest
   earlier run on the same machine (``method="mann-whitney-u"``). Rounds of one
   run share the machine's state, so whole runs drift by more than the rounds'
   spread shows (1-3 % on shared CI runners); with 3 % drift the test alone
   flags about one A/A comparison in eight. So when at least ``min_history``
   earlier runs exist, a finding must *also* pass the history test below on the
   current median (an intersection-union test: both must reject, the p-value is
   the larger, the false-positive rate stays at or under ``1 - confidence``).
2. **Otherwise, the history** of earlier runs on the same machine: each run is
   summarised by its median. E-divisive change-point detection (see
   ``changepoint``) finds where the history last changed regime; only the runs
   since then form the baseline, so an old, accepted shift does not blur it.
   The current median is then tested as a new draw from that baseline: a
   one-sided prediction t-test on log times, ``t = (log x - mean) / (sd *
   sqrt(1 + 1/n))`` with ``n - 1`` degrees of freedom
   (``method="history-prediction-t"``). Logs because timing noise is
   multiplicative. Under log-normal noise this test is exact: its A/A
   false-positive rate is ``1 - confidence``. Its power is bounded by the one
   current run: at 3 % run-to-run noise a 10 % step is 3.2 noise widths, and even
   with the history's mean and spread known exactly no test at 1 % false
   positives catches more than 80 % of such steps (the gate, estimating both
   from 20 runs, about 70 %; see benchmarks/bench_regression.py).

Either way the verdict is a regression only when the test is significant at
``1 - confidence`` *and* the median got slower by at least ``min_effect``
(improvement alike, the other way). The evidence also tells whether change-point
detection over baseline + current says the current run starts a new regime
(``new_regime``).

``cannot_evaluate`` (never a silent pass): the current run failed or was
skipped, there is no earlier run, the earlier runs come from another machine
fingerprint, or there are too few rounds and too few runs.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

import numpy as np
from scipy import stats

from secperf.analysis.changepoint import DEFAULT_MAX_POINTS, as_series, e_divisive
from secperf.model import BenchmarkResult


class RegressionStatus(StrEnum):
    """The outcome of one comparison."""

    REGRESSION = "regression"
    IMPROVEMENT = "improvement"
    NO_CHANGE = "no_change"
    CANNOT_EVALUATE = "cannot_evaluate"


@dataclass(frozen=True, slots=True)
class RegressionVerdict:
    """A comparison's outcome and the evidence behind it.

    ``effect_pct`` is ``(current_median / baseline_median - 1) * 100`` (positive =
    slower); ``p_value`` belongs to the one-sided test in the direction of the
    effect. ``n_current`` / ``n_baseline`` count rounds for Mann-Whitney U and
    runs for the history test.
    """

    name: str
    status: RegressionStatus
    method: str  # mann-whitney-u | history-prediction-t | none
    reason: str
    p_value: float | None = None
    effect_pct: float | None = None
    baseline_median: float | None = None
    current_median: float | None = None
    n_current: int = 0
    n_baseline: int = 0
    new_regime: bool | None = None  # change-point detection: current starts a new regime
    baseline_commit: str | None = None
    min_effect: float = 0.05
    confidence: float = 0.99

    @property
    def blocks(self) -> bool:
        """True for a regression: what a gate blocks on."""
        return self.status is RegressionStatus.REGRESSION


def _check_thresholds(min_effect: float, confidence: float) -> None:
    if not 0 <= min_effect < 10:
        raise ValueError(f"min_effect is a fraction (0.05 = 5 %), got {min_effect}")
    if not 0.5 <= confidence < 1:
        raise ValueError(f"confidence must be in [0.5, 1), got {confidence}")


def _decide(
    effect: float, p_slower: float, p_faster: float, min_effect: float, confidence: float
) -> tuple[RegressionStatus, float, str]:
    """Status, the p-value in the effect's direction, and a one-line reason."""
    alpha = 1.0 - confidence
    if effect >= 0:
        p = p_slower
        if p < alpha and effect >= min_effect:
            return (
                RegressionStatus.REGRESSION,
                p,
                (f"{effect:+.1%} slower (p={p:.2g} < {alpha:.2g}, effect >= {min_effect:.0%})"),
            )
    else:
        p = p_faster
        if p < alpha and -effect >= min_effect:
            return (
                RegressionStatus.IMPROVEMENT,
                p,
                (f"{-effect:.1%} faster (p={p:.2g} < {alpha:.2g}, effect >= {min_effect:.0%})"),
            )
    why = []
    if p >= alpha:
        why.append(f"p={p:.2g} >= {alpha:.2g}")
    if abs(effect) < min_effect:
        why.append(f"|effect| {abs(effect):.1%} < {min_effect:.0%}")
    return RegressionStatus.NO_CHANGE, p, f"{effect:+.1%}: no change ({', '.join(why)})"


def _starts_new_regime(baseline: Sequence[float], current: float, confidence: float) -> bool | None:
    """Whether change-point detection puts a change right before ``current``."""
    series = [*baseline[-(DEFAULT_MAX_POINTS - 1) :], current]
    if len(series) < 4:
        return None
    points = e_divisive(series, min_size=1, alpha=1.0 - confidence)
    return any(cp.index == len(series) - 1 for cp in points)


def _history_verdict(
    name: str,
    current: float,
    history: Sequence[float],
    *,
    min_effect: float,
    confidence: float,
    min_history: int,
    commits: Sequence[str | None] | None = None,
) -> RegressionVerdict:
    """The history path, shared by benchmarks and scan time (values > 0, lower is better)."""
    base = RegressionVerdict(
        name=name,
        status=RegressionStatus.CANNOT_EVALUATE,
        method="none",
        reason="",
        current_median=current,
        n_current=1,
        min_effect=min_effect,
        confidence=confidence,
    )
    if len(history) < min_history:
        return replace(
            base,
            reason=f"only {len(history)} earlier runs to compare with (need {min_history})",
            n_baseline=len(history),
        )
    values = as_series(list(history)[-DEFAULT_MAX_POINTS:], f"{name}: history")
    if commits is not None:
        commits = list(commits)[-DEFAULT_MAX_POINTS:]
    if current <= 0 or bool(np.any(values <= 0)):
        raise ValueError(f"{name}: times must be positive to compare them")
    logs = np.log(values)
    regime_start = 0
    changes = e_divisive(logs, min_size=3, alpha=1.0 - confidence)
    if changes:
        regime_start = changes[-1].index
    regime = logs[regime_start:]
    if regime.size < min_history:
        where = f"run {regime_start}"
        if commits is not None and regime_start < len(commits) and commits[regime_start]:
            where += f" (commit {commits[regime_start]})"
        return replace(
            base,
            method="history-prediction-t",
            reason=(
                f"the history changed regime at {where}; only {regime.size} runs since "
                f"(need {min_history})"
            ),
            n_baseline=int(regime.size),
        )
    x = math.log(current)
    n = regime.size
    mean, sd = float(regime.mean()), float(regime.std(ddof=1))
    if sd == 0:
        # A noiseless baseline: any difference is certain.
        p_slower = 0.0 if x > mean else 1.0
        p_faster = 0.0 if x < mean else 1.0
    else:
        t = (x - mean) / (sd * math.sqrt(1 + 1 / n))
        p_slower = float(stats.t.sf(t, n - 1))
        p_faster = float(stats.t.cdf(t, n - 1))
    baseline_median = float(np.median(values[regime_start:]))
    effect = current / baseline_median - 1.0
    status, p, reason = _decide(effect, p_slower, p_faster, min_effect, confidence)
    if regime_start:
        reason += f"; baseline = the {n} runs since the change at run {regime_start}"
    return replace(
        base,
        status=status,
        method="history-prediction-t",
        reason=reason,
        p_value=p,
        effect_pct=effect * 100,
        baseline_median=baseline_median,
        n_baseline=n,
        new_regime=_starts_new_regime(values[regime_start:].tolist(), current, confidence),
        baseline_commit=commits[-1] if commits else None,
    )


def _check_run_spread(
    name: str,
    current_median: float,
    medians: Sequence[float],
    status: RegressionStatus,
    p: float,
    reason: str,
    *,
    min_effect: float,
    confidence: float,
    min_history: int,
) -> tuple[RegressionStatus, float, str]:
    """Keep a Mann-Whitney finding only if the run also stands out from the history.

    Rounds of one run share the machine's state, so two runs differ by more
    than their rounds suggest; the history test measures that run-to-run
    spread. Requiring both tests (an intersection-union test) keeps the
    false-positive rate at or under ``1 - confidence``; the p-value is the larger
    of the two. When the history changed regime too recently to test against,
    the latest run stays the baseline and the Mann-Whitney verdict stands.
    """
    spread = _history_verdict(
        name,
        current_median,
        medians,
        min_effect=min_effect,
        confidence=confidence,
        min_history=min_history,
    )
    if spread.status is RegressionStatus.CANNOT_EVALUATE:
        return status, p, f"{reason}; run-to-run spread not tested ({spread.reason})"
    spread_p = 1.0 if spread.p_value is None else spread.p_value
    runs = f"the last {spread.n_baseline} runs on this machine"
    if spread.status is status:
        combined = max(p, spread_p)
        return (
            status,
            combined,
            f"{reason}; beyond the run-to-run spread of {runs} (p={spread_p:.2g})",
        )
    return (
        RegressionStatus.NO_CHANGE,
        max(p, spread_p),
        f"no change: significant between rounds ({reason}), but within the run-to-run spread "
        f"of {runs} ({spread.reason})",
    )


def _median_of(result: BenchmarkResult) -> float | None:
    """A run's median time: the tool's median, else the rounds' median, else the mean."""
    if "median" in result.stats:
        return float(result.stats["median"])
    if result.data:
        return float(statistics.median(result.data))
    if "mean" in result.stats:
        return float(result.stats["mean"])
    return None


def compare_benchmark(
    current: BenchmarkResult,
    history: Sequence[BenchmarkResult],
    *,
    min_effect: float = 0.05,
    confidence: float = 0.99,
    min_rounds: int = 10,
    min_history: int = 5,
) -> RegressionVerdict:
    """Compare ``current`` with earlier runs of the same benchmark (see the module doc).

    ``history`` holds earlier results of the benchmark named like ``current``, in
    any order; failed or skipped runs are ignored, runs on another machine are
    not compared with. A history entry for another benchmark is a caller error
    (ValueError naming it).
    """
    _check_thresholds(min_effect, confidence)
    for i, h in enumerate(history):
        if h.name != current.name:
            raise ValueError(
                f"history[{i}] is benchmark {h.name!r}, not {current.name!r}; "
                "pass the history of one benchmark"
            )
    base = RegressionVerdict(
        name=current.name,
        status=RegressionStatus.CANNOT_EVALUATE,
        method="none",
        reason="",
        min_effect=min_effect,
        confidence=confidence,
    )
    if current.status != "ok":
        return replace(base, reason=f"the current run is {current.status}")
    cur_median = _median_of(current)
    if cur_median is None:
        return replace(
            base, reason="the current run has neither per-round data nor a median or mean"
        )
    base = replace(base, current_median=cur_median)
    usable = sorted(
        (h for h in history if h.status == "ok" and _median_of(h) is not None),
        key=lambda h: h.timestamp_ms,
    )
    if not usable:
        return replace(base, reason="no earlier successful run to compare with")
    same = [h for h in usable if h.machine == current.machine]
    if not same:
        others = sorted({h.machine for h in usable})
        return replace(
            base,
            reason=(
                f"the earlier runs come from machine {', '.join(others)}, the current one from "
                f"{current.machine}; timings from different machines are not comparable"
            ),
        )

    latest = same[-1]
    if len(current.data) >= min_rounds and len(latest.data) >= min_rounds:
        cur = np.asarray(current.data, dtype=np.float64)
        old = np.asarray(latest.data, dtype=np.float64)
        if np.ptp(cur) == 0 and np.ptp(old) == 0:
            p_slower = 0.0 if cur[0] > old[0] else 1.0
            p_faster = 0.0 if cur[0] < old[0] else 1.0
        else:
            p_slower = float(stats.mannwhitneyu(cur, old, alternative="greater").pvalue)
            p_faster = float(stats.mannwhitneyu(cur, old, alternative="less").pvalue)
        cur_med, old_med = float(np.median(cur)), float(np.median(old))
        if old_med <= 0:
            return replace(base, reason=f"the baseline's median time is {old_med}, not positive")
        effect = cur_med / old_med - 1.0
        status, p, reason = _decide(effect, p_slower, p_faster, min_effect, confidence)
        medians = [m for h in same if (m := _median_of(h)) is not None]
        new_regime = None
        if len(medians) >= min_history and all(m > 0 for m in medians) and cur_median > 0:
            new_regime = _starts_new_regime(medians, cur_median, confidence)
            if status is not RegressionStatus.NO_CHANGE:
                status, p, reason = _check_run_spread(
                    current.name,
                    cur_median,
                    medians,
                    status,
                    p,
                    reason,
                    min_effect=min_effect,
                    confidence=confidence,
                    min_history=min_history,
                )
        return replace(
            base,
            status=status,
            method="mann-whitney-u",
            reason=reason,
            p_value=p,
            effect_pct=effect * 100,
            baseline_median=old_med,
            current_median=cur_med,
            n_current=int(cur.size),
            n_baseline=int(old.size),
            new_regime=new_regime,
            baseline_commit=latest.commit,
        )

    medians = [m for h in same if (m := _median_of(h)) is not None]
    if len(medians) < min_history:
        return replace(
            base,
            reason=(
                f"too few samples: per-round data has {len(current.data)} rounds now and "
                f"{len(latest.data)} in the baseline (need {min_rounds} each); the history has "
                f"{len(medians)} runs on this machine (need {min_history})"
            ),
            n_current=len(current.data),
            n_baseline=len(medians),
        )
    return _history_verdict(
        current.name,
        cur_median,
        medians,
        min_effect=min_effect,
        confidence=confidence,
        min_history=min_history,
        commits=[h.commit for h in same],
    )


def ms_per_kloc(duration_ms: float, lines_scanned: int) -> float:
    """Scan time per 1,000 lines scanned; ValueError when no line was scanned."""
    if lines_scanned <= 0:
        raise ValueError(
            f"lines_scanned must be positive to normalise scan time, got {lines_scanned}"
        )
    if not math.isfinite(duration_ms) or duration_ms < 0:
        raise ValueError(f"duration_ms must be a finite, non-negative number, got {duration_ms}")
    return duration_ms * 1000.0 / lines_scanned


def scan_time_regression(
    current_ms_per_kloc: float,
    history_ms_per_kloc: Sequence[float],
    *,
    min_effect: float = 0.05,
    confidence: float = 0.99,
    min_history: int = 5,
    name: str = "scan_time_ms_per_kloc",
) -> RegressionVerdict:
    """Whether the scan got slower per 1,000 lines, against earlier scans (oldest first).

    The history path of ``compare_benchmark``: change-point detection picks the
    current regime, then a one-sided prediction t-test on log time.
    """
    _check_thresholds(min_effect, confidence)
    if not math.isfinite(current_ms_per_kloc) or current_ms_per_kloc <= 0:
        raise ValueError(f"{name}: current value must be positive, got {current_ms_per_kloc}")
    return _history_verdict(
        name,
        float(current_ms_per_kloc),
        list(history_ms_per_kloc),
        min_effect=min_effect,
        confidence=confidence,
        min_history=min_history,
    )
