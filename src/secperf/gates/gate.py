"""The quality gate: conditions in, one verdict out (PASS, BLOCK or CANNOT_EVALUATE).

``evaluate`` takes what the orchestration gathered (a scan compared with the
baseline, benchmark results with their history, earlier scans, the scan's
cost), asks the security and performance condition modules for their
conditions, and combines them:

- any condition that blocks makes the gate BLOCK (a known problem is reported
  even when another condition could not be evaluated);
- otherwise any condition that cannot be evaluated makes it CANNOT_EVALUATE;
- otherwise (every condition passed or was waived) it passes;
- with no condition at all it cannot evaluate: a gate that checked nothing
  never passes silently.

Checks that are not configured, or whose history is still being built (the
scan-time trend), are not conditions: they are listed in ``notes`` so that the
reports say what was not checked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from secperf.config import GateConfig
from secperf.events import new_event_id, now_ms
from secperf.gates.waivers import Waivers, today_utc
from secperf.model import (
    BenchmarkResult,
    ConditionStatus,
    Finding,
    GateCondition,
    GateResult,
    GateVerdict,
    ScanCost,
    SecurityMetrics,
    Severity,
)
from secperf.security.triage import TriageDecision

if TYPE_CHECKING:
    # The statistics (scipy) load only when a comparison runs: a gate without
    # benchmarks or scan history must not pay half a second of imports.
    from secperf.analysis.regression import RegressionVerdict


@dataclass(frozen=True, slots=True)
class ScanEvidence:
    """One scan as the gate sees it: findings, which are new, and how the scan went.

    ``errors`` lists scanner crashes (``path (scanner): reason``); ``unavailable``
    the requested scanners that could not run at all, with why.
    """

    scan_id: str
    target: str
    metrics: SecurityMetrics
    findings: tuple[Finding, ...]
    new_fingerprints: frozenset[str]
    has_baseline: bool
    scanners: tuple[str, ...]
    unavailable: Mapping[str, str] = field(default_factory=dict)
    errors: tuple[str, ...] = ()
    status: str = "ok"


@dataclass(frozen=True, slots=True)
class GateInputs:
    """Everything the gate decides on, gathered by the orchestration."""

    target: str
    scan: ScanEvidence | None = None
    scan_problem: str | None = None  # why there is no scan (a scanner error, a bad scan id)
    triage: Mapping[str, TriageDecision] = field(default_factory=dict)
    benchmarks: Sequence[BenchmarkResult] = ()
    benchmark_history: Mapping[str, Sequence[BenchmarkResult]] = field(default_factory=dict)
    benchmark_problems: Sequence[str] = ()
    scan_history: Sequence[SecurityMetrics] = ()  # earlier comparable scans, oldest first
    cost: ScanCost | None = None
    commit: str | None = None
    fail_on: Severity | None = None  # the command line's override of [gate] fail_on


@dataclass(frozen=True, slots=True)
class FindingRow:
    """A finding the gate looked at, and what it made of it.

    ``state`` is one of: open (counts), waived, waiver_expired (counts again),
    accepted_risk, false_positive (triage set it aside).
    """

    finding: Finding
    is_new: bool
    state: str
    note: str = ""

    @property
    def counts(self) -> bool:
        """Whether this finding counts against the gate's conditions."""
        return self.state in ("open", "waiver_expired")


@dataclass(frozen=True, slots=True)
class BenchmarkRow:
    """One benchmark's comparison and the status the gate gave it."""

    verdict: RegressionVerdict
    status: ConditionStatus
    note: str = ""


@dataclass(frozen=True, slots=True)
class GateOutcome:
    """The verdict with the detail the reports show."""

    result: GateResult
    findings: tuple[FindingRow, ...] = ()
    benchmarks: tuple[BenchmarkRow, ...] = ()
    scan_time: RegressionVerdict | None = None
    cost: ScanCost | None = None
    notes: tuple[str, ...] = ()
    scan: ScanEvidence | None = None

    @property
    def new_findings(self) -> list[FindingRow]:
        return [row for row in self.findings if row.is_new]


def combine(conditions: Sequence[GateCondition]) -> GateVerdict:
    """BLOCK beats CANNOT_EVALUATE beats PASS; no condition at all cannot pass."""
    statuses = {c.status for c in conditions}
    if ConditionStatus.BLOCK in statuses:
        return GateVerdict.BLOCK
    if not conditions or ConditionStatus.CANNOT_EVALUATE in statuses:
        return GateVerdict.CANNOT_EVALUATE
    return GateVerdict.PASS


def summarise(verdict: GateVerdict, conditions: Sequence[GateCondition]) -> str:
    """One sentence: the verdict and the conditions behind it."""
    if not conditions:
        return (
            "cannot evaluate: nothing to evaluate - no scan result, no benchmark results and "
            "no history; run a scan (`secperf gate` scans by default) and pass benchmark "
            "results with --benchmarks or --asv"
        )
    counts = {s: sum(1 for c in conditions if c.status is s) for s in ConditionStatus}
    parts = [f"{counts[s]} {s.value.replace('_', ' ')}" for s in ConditionStatus if counts[s]]
    if verdict is GateVerdict.BLOCK:
        names = [c.name for c in conditions if c.status is ConditionStatus.BLOCK]
        head = "blocked by " + ", ".join(names)
    elif verdict is GateVerdict.CANNOT_EVALUATE:
        names = [c.name for c in conditions if c.status is ConditionStatus.CANNOT_EVALUATE]
        head = "cannot evaluate " + ", ".join(names)
    else:
        head = "passed"
    return f"{head} ({len(conditions)} conditions: {', '.join(parts)})"


def evaluate(
    inputs: GateInputs,
    config: GateConfig,
    waivers: Waivers,
    *,
    started_ms: int | None = None,
    at_ms: int | None = None,
) -> GateOutcome:
    """Evaluate every condition and give the verdict (pure: no I/O)."""
    from secperf.gates import conditions_performance as perf
    from secperf.gates import conditions_security as sec

    now = now_ms() if at_ms is None else at_ms
    today = today_utc(now)
    notes: list[str] = []
    conditions: list[GateCondition] = []

    security = sec.evaluate_security(inputs, config, waivers, now=now, today=today)
    conditions.extend(security.conditions)
    notes.extend(security.notes)

    bench = perf.benchmark_conditions(
        inputs.benchmarks, inputs.benchmark_history, config, waivers, today=today
    )
    conditions.extend(bench.conditions)
    notes.extend(bench.notes)
    if inputs.benchmark_problems:
        conditions.append(perf.benchmark_input_condition(inputs.benchmark_problems))

    scan_time = None
    if inputs.scan is not None:
        timing = perf.scan_time_condition(inputs.scan.metrics, inputs.scan_history, config)
        scan_time = timing.verdict
        conditions.extend(timing.conditions)
        notes.extend(timing.notes)
    overhead = perf.overhead_condition(inputs.cost, config)
    conditions.extend(overhead.conditions)
    notes.extend(overhead.notes)

    verdict = combine(conditions)
    summary = summarise(verdict, conditions)
    result = GateResult(
        run_id=new_event_id(),
        target=inputs.target,
        started_ms=started_ms if started_ms is not None else now,
        finished_ms=max(now, started_ms or now),
        verdict=verdict,
        conditions=tuple(conditions),
        commit=inputs.commit,
        summary=summary if not notes else summary + ". " + "; ".join(notes),
    )
    return GateOutcome(
        result=result,
        findings=tuple(security.rows),
        benchmarks=tuple(bench.rows),
        scan_time=scan_time,
        cost=inputs.cost,
        notes=tuple(notes),
        scan=inputs.scan,
    )
