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

from collections.abc import Sequence

from secperf.config import GateConfig
from secperf.events import new_event_id, now_ms
from secperf.gates.conditions import performance as perf
from secperf.gates.conditions import security as sec
from secperf.gates.evidence import GateInputs, GateOutcome
from secperf.gates.waivers import Waivers, today_utc
from secperf.model import ConditionStatus, GateCondition, GateResult, GateVerdict


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
