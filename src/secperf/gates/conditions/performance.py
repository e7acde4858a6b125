"""The gate's performance conditions: benchmarks, the scan's own time, and its cost.

- Each benchmark is compared with its earlier runs on the same machine by
  ``analysis.regression.compare_benchmark`` (Mann-Whitney U on per-round data,
  else a test against the history after change-point detection), with
  ``[gate] min_effect`` and ``confidence``. A regression blocks unless a waiver
  allows that much; too few samples or another machine cannot be evaluated.
- Scan time per 1,000 lines is compared with earlier scans of the same target
  (same scanners, a similar cache hit rate: a warm scan is not compared with a
  cold one); ``[gate] scan_time_budget`` is the smallest slowdown that counts.
  While fewer comparable scans exist than the test needs, the check is listed
  as not done yet rather than holding every early run back.
- The scan's cost (CPU seconds, peak RSS, host CPU %) against
  ``[gate.overhead_budget]``, when a budget is set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

from secperf.config import GateConfig
from secperf.gates.evidence import BenchmarkRow, figure
from secperf.gates.waivers import Waivers, describe, is_expired
from secperf.model import BenchmarkResult, ConditionStatus, GateCondition, ScanCost, SecurityMetrics

if TYPE_CHECKING:
    from secperf.analysis.regression import RegressionVerdict

CATEGORY = "performance"
COST_CATEGORY = "cost"
#: Scans whose cache hit rates differ by more than this are not compared.
CACHE_HIT_RATE_TOLERANCE = 0.10
#: Earlier runs the history tests need (as ``compare_benchmark``'s default).
MIN_HISTORY = 5


@dataclass(slots=True)
class PerformanceConditions:
    """Conditions with the detail behind them and what was not checked."""

    conditions: list[GateCondition] = field(default_factory=list)
    rows: list[BenchmarkRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    verdict: RegressionVerdict | None = None


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1f} %"


def _threshold(config: GateConfig) -> str:
    return f"+{config.min_effect * 100:g} % at {config.confidence * 100:g} % confidence"


#: The unit of a benchmark's medians (seconds, as pytest-benchmark and asv record them).
BENCHMARK_UNIT = "s"
#: The unit of the scan-time figures (``ms_per_kloc``): milliseconds per 1,000 lines scanned.
SCAN_TIME_UNIT = "ms per 1,000 lines"


def _verdict_evidence(verdict: RegressionVerdict, unit: str) -> str:
    """The verdict's reason, method and medians, the medians in ``unit``."""
    parts = [verdict.reason]
    if verdict.method != "none":
        parts.append(
            f"method {verdict.method}, {verdict.n_current} current vs {verdict.n_baseline} "
            "baseline samples"
        )
    if verdict.baseline_median is not None and verdict.current_median is not None:
        parts.append(
            f"median {figure(verdict.baseline_median)} -> {figure(verdict.current_median)} {unit}"
        )
    if verdict.baseline_commit:
        parts.append(f"baseline commit {verdict.baseline_commit[:12]}")
    if verdict.new_regime:
        parts.append("change-point detection: this run starts a new regime")
    return "; ".join(parts)


def benchmark_conditions(
    current: Sequence[BenchmarkResult],
    history: Mapping[str, Sequence[BenchmarkResult]],
    config: GateConfig,
    waivers: Waivers,
    *,
    today: date,
) -> PerformanceConditions:
    """One condition per benchmark of the current run."""
    out = PerformanceConditions()
    if not current:
        out.notes.append(
            "benchmarks: not checked (none given with --benchmarks/--asv and none stored)"
        )
        return out
    # Imported here: scipy costs half a second, paid only when something is compared.
    from secperf.analysis.regression import compare_benchmark

    for result in sorted(current, key=lambda r: r.name):
        verdict = compare_benchmark(
            result,
            list(history.get(result.name, ())),
            min_effect=config.min_effect,
            confidence=config.confidence,
        )
        status, note = _benchmark_status(verdict, waivers, today)
        evidence = _verdict_evidence(verdict, BENCHMARK_UNIT)
        if note:
            evidence += f"\n{note}"
        out.rows.append(BenchmarkRow(verdict, status, note))
        out.conditions.append(
            GateCondition(
                name=f"benchmark {result.name}",
                category=CATEGORY,
                status=status,
                measured=_pct(verdict.effect_pct),
                threshold=_threshold(config),
                evidence=evidence,
            )
        )
    return out


def _benchmark_status(
    verdict: RegressionVerdict, waivers: Waivers, today: date
) -> tuple[ConditionStatus, str]:
    from secperf.analysis.regression import RegressionStatus

    if verdict.status is RegressionStatus.CANNOT_EVALUATE:
        return ConditionStatus.CANNOT_EVALUATE, ""
    if verdict.status is not RegressionStatus.REGRESSION:
        return ConditionStatus.PASS, ""
    waiver = waivers.for_benchmark(verdict.name, today)
    if waiver is None:
        return ConditionStatus.BLOCK, ""
    allowed = f"{waiver.max_regression * 100:g} %"
    if is_expired(waiver.expires, today):
        return ConditionStatus.BLOCK, f"BLOCKS: {describe(waiver, today)}; it allowed {allowed}"
    effect = (verdict.effect_pct or 0.0) / 100.0
    if effect > waiver.max_regression:
        return (
            ConditionStatus.BLOCK,
            f"BLOCKS: {_pct(verdict.effect_pct)} exceeds the waiver's {allowed} "
            f"({describe(waiver, today)})",
        )
    return ConditionStatus.WAIVED, f"WAIVED up to {allowed}: {describe(waiver, today)}"


def benchmark_input_condition(problems: Sequence[str]) -> GateCondition:
    """Benchmark entries that could not be read: never a silent pass."""
    shown = list(problems[:10])
    if len(problems) > 10:
        shown.append(f"... and {len(problems) - 10} more")
    return GateCondition(
        name="benchmark input",
        category=CATEGORY,
        status=ConditionStatus.CANNOT_EVALUATE,
        measured=len(problems),
        threshold=0,
        evidence="benchmark entries that could not be read:\n" + "\n".join(shown),
    )


def comparable_scans(
    current: SecurityMetrics, earlier: Sequence[SecurityMetrics]
) -> list[SecurityMetrics]:
    """Earlier scans of the same target with the same scanners and a similar cache hit rate."""
    scanners = set(current.scanner_durations_ms)
    return [
        m
        for m in earlier
        if m.scan_id != current.scan_id
        and m.target == current.target
        and m.started_ms < current.started_ms
        and m.lines_scanned > 0
        and m.scan_duration_ms > 0
        and set(m.scanner_durations_ms) == scanners
        and abs(m.cache_hit_rate - current.cache_hit_rate) <= CACHE_HIT_RATE_TOLERANCE
    ]


def scan_time_condition(
    current: SecurityMetrics, earlier: Sequence[SecurityMetrics], config: GateConfig
) -> PerformanceConditions:
    """Scan time per 1,000 lines against earlier comparable scans of the same target."""
    out = PerformanceConditions()
    if current.lines_scanned <= 0 or current.scan_duration_ms <= 0:
        out.notes.append("scan time: not checked (the scan read no lines)")
        return out
    value = ms_per_kloc(current.scan_duration_ms, current.lines_scanned)
    history = sorted(comparable_scans(current, earlier), key=lambda m: m.started_ms)
    values = [ms_per_kloc(m.scan_duration_ms, m.lines_scanned) for m in history]
    if len(values) < MIN_HISTORY:
        out.notes.append(
            f"scan time: not checked yet ({figure(value)} {SCAN_TIME_UNIT}; {len(values)} earlier "
            f"comparable scans of this target, {MIN_HISTORY} needed)"
        )
        return out
    from secperf.analysis.regression import RegressionStatus, scan_time_regression

    verdict = scan_time_regression(
        value,
        values,
        min_effect=config.scan_time_budget,
        confidence=config.confidence,
        min_history=MIN_HISTORY,
    )
    out.verdict = verdict
    if verdict.status is RegressionStatus.REGRESSION:
        status = ConditionStatus.BLOCK
    elif verdict.status is RegressionStatus.CANNOT_EVALUATE:
        status = ConditionStatus.CANNOT_EVALUATE
    else:
        status = ConditionStatus.PASS
    evidence = (
        f"{figure(value)} {SCAN_TIME_UNIT} ({current.lines_scanned} lines, "
        f"cache hit rate {current.cache_hit_rate:.0%}) vs {len(values)} earlier comparable "
        f"scans; {_verdict_evidence(verdict, SCAN_TIME_UNIT)}"
    )
    out.conditions.append(
        GateCondition(
            name="scan time per 1,000 lines",
            category=COST_CATEGORY,
            status=status,
            measured=_pct(verdict.effect_pct),
            threshold=(
                f"+{config.scan_time_budget * 100:g} % at {config.confidence * 100:g} % confidence"
            ),
            evidence=evidence,
        )
    )
    return out


def ms_per_kloc(duration_ms: float, lines_scanned: int) -> float:
    """Scan time per 1,000 lines (as ``analysis.regression.ms_per_kloc``, without scipy)."""
    return duration_ms * 1000.0 / lines_scanned


def _mib(size: float) -> str:
    return f"{size / 1024 / 1024:.1f} MiB"


def overhead_condition(cost: ScanCost | None, config: GateConfig) -> PerformanceConditions:
    """The scan's cost on the machine against ``[gate.overhead_budget]``."""
    out = PerformanceConditions()
    budget = config.overhead_budget
    checks: list[tuple[str, float | None, float | None, str]] = []
    if cost is not None:
        host = cost.host_cpu_percent_avg
        checks = [
            ("CPU", cost.cpu_seconds, budget.cpu_seconds, f"{cost.cpu_seconds:.2f} s"),
            ("peak RSS", float(cost.peak_rss_bytes), budget.peak_rss, _mib(cost.peak_rss_bytes)),
            (
                "host CPU",
                host,
                budget.host_cpu_percent,
                "n/a" if host is None else f"{host:.1f} %",
            ),
        ]
    enforced = [c for c in checks if c[2] is not None]
    measured = ", ".join(f"{name} {text}" for name, _, _, text in checks)
    if not any(
        v is not None for v in (budget.cpu_seconds, budget.peak_rss, budget.host_cpu_percent)
    ):
        if cost is not None:
            out.notes.append(
                f"scan overhead: not enforced (measured {measured}; set [gate.overhead_budget])"
            )
        return out
    if cost is None:
        out.conditions.append(
            GateCondition(
                "scan overhead",
                COST_CATEGORY,
                ConditionStatus.CANNOT_EVALUATE,
                None,
                None,
                "the scan's cost was not measured (a stored scan without a recorded cost)",
            )
        )
        return out
    over: list[str] = []
    limits: list[str] = []
    for name, value, limit, text in enforced:
        assert limit is not None
        shown = (
            _mib(limit)
            if name == "peak RSS"
            else (f"{limit:g} s" if name == "CPU" else f"{limit:g} %")
        )
        limits.append(f"{name} <= {shown}")
        if value is None:
            over.append(f"{name}: not measured")
        elif value > limit:
            over.append(f"{name} {text} > {shown}")
    status = ConditionStatus.BLOCK if over else ConditionStatus.PASS
    if any(o.endswith("not measured") for o in over) and len(over) == sum(
        1 for o in over if o.endswith("not measured")
    ):
        status = ConditionStatus.CANNOT_EVALUATE
    evidence = f"measured {measured} over {cost.samples} samples"
    if over:
        evidence += "; over budget: " + ", ".join(over)
    out.conditions.append(
        GateCondition("scan overhead", COST_CATEGORY, status, measured, ", ".join(limits), evidence)
    )
    return out
