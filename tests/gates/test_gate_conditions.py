"""The gate's conditions and verdict, evaluated on real data structures.

Benchmark results come from the real pytest-benchmark fixture (read by the
real importer) and are scaled to make runs slower; scan metrics are built as
the validator builds them.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from secperf.config import DepsConfig, GateConfig, MaxNewConfig, OverheadBudgetConfig, ScanConfig
from secperf.gates.conditions.security import requested_scanners
from secperf.gates.evidence import GateInputs, GateOutcome, ScanEvidence
from secperf.gates.gate import combine, evaluate
from secperf.gates.reports import markdown
from secperf.gates.reports.sarif import gate_sarif
from secperf.gates.waivers import BenchmarkWaiver, FindingWaiver, Waivers
from secperf.model import (
    BenchmarkResult,
    ConditionStatus,
    Finding,
    GateCondition,
    GateVerdict,
    ScanCost,
    SecurityMetrics,
    Severity,
)
from secperf.perf.benchmarks import load_pytest_benchmark
from secperf.security.triage import TriageDecision, TriageState
from support.factories import make_finding
from support.paths import FIXTURES as FIXTURES_DIR

FIXTURE = FIXTURES_DIR / "benchmarks" / "pytest_benchmark_tiny.json"
NOW = 1_790_000_000_000  # 2026-09-21 UTC
DAY = 86_400_000
CONFIG = GateConfig()


def metrics(scan_id: str = "s1", **changes: object) -> SecurityMetrics:
    base = SecurityMetrics(
        scan_id=scan_id,
        target="/repo",
        started_ms=NOW,
        finished_ms=NOW + 1000,
        scan_duration_ms=1000.0,
        violations_found=0,
        false_positive_rate=0.0,
        vulnerability_severity_counts={},
        scan_coverage_percent=100.0,
        files_scanned=10,
        eligible_files=10,
        lines_scanned=5000,
        scanner_durations_ms={"bandit": 500.0, "secrets": 400.0},
        cache_hit_rate=1.0,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def finding(
    rule: str, severity: Severity, path: str = "app/x.py", category: str = "sast", **kw: Any
) -> Finding:
    return make_finding(
        rule,
        path,
        severity,
        fingerprint=f"{rule}-{path}".ljust(32, "0"),
        message=f"{rule} here",
        line=4,
        category=category,
        **kw,
    )


def scan(*found: Finding, new: tuple[Finding, ...] | None = None, **kw: object) -> ScanEvidence:
    fresh = found if new is None else new
    return ScanEvidence(
        scan_id="s1",
        target="/repo",
        metrics=metrics(),
        findings=tuple(found),
        new_fingerprints=frozenset(f.fingerprint for f in fresh),
        has_baseline=True,
        scanners=("bandit", "secrets"),
        **kw,  # type: ignore[arg-type]
    )


def conditions(
    inputs: GateInputs, config: GateConfig = CONFIG, waivers: Waivers = Waivers()
) -> tuple[GateOutcome, dict[str, GateCondition]]:
    outcome = evaluate(inputs, config, waivers, at_ms=NOW)
    return outcome, {c.name: c for c in outcome.result.conditions}


def test_combine_block_beats_cannot_evaluate_beats_pass() -> None:
    def c(status: ConditionStatus) -> GateCondition:
        return GateCondition("c", "security", status, 0, 0)

    assert combine([c(ConditionStatus.PASS), c(ConditionStatus.WAIVED)]) is GateVerdict.PASS
    assert combine([c(ConditionStatus.PASS), c(ConditionStatus.CANNOT_EVALUATE)]) is (
        GateVerdict.CANNOT_EVALUATE
    )
    assert combine([c(ConditionStatus.CANNOT_EVALUATE), c(ConditionStatus.BLOCK)]) is (
        GateVerdict.BLOCK
    )
    assert combine([]) is GateVerdict.CANNOT_EVALUATE


def test_nothing_to_evaluate_explains_itself() -> None:
    outcome = evaluate(
        GateInputs(target="/repo", scan_problem="the scan failed: boom"),
        CONFIG,
        Waivers(),
        at_ms=NOW,
    )
    assert outcome.result.verdict is GateVerdict.CANNOT_EVALUATE
    (only,) = outcome.result.conditions
    assert "the scan failed: boom" in only.evidence


def test_only_new_findings_at_or_above_the_threshold_block() -> None:
    old_high = finding("B602", Severity.HIGH, "app/old.py")
    new_medium = finding("B108", Severity.MEDIUM)
    outcome, by_name = conditions(
        GateInputs("/repo", scan(old_high, new_medium, new=(new_medium,)))
    )
    assert outcome.result.verdict is GateVerdict.PASS
    assert by_name["new findings >= high"].measured == 0

    new_high = finding("B602", Severity.HIGH)
    outcome, by_name = conditions(GateInputs("/repo", scan(old_high, new_high, new=(new_high,))))
    assert outcome.result.verdict is GateVerdict.BLOCK
    assert by_name["new findings >= high"].measured == 1
    assert "B602 at app/x.py:4" in by_name["new findings >= high"].evidence
    # The command line's --fail-on overrides the config.
    outcome, _ = conditions(GateInputs("/repo", scan(new_high), fail_on=Severity.CRITICAL))
    assert outcome.result.verdict is GateVerdict.PASS


def test_no_baseline_counts_everything_and_says_so() -> None:
    evidence = replace(scan(finding("B602", Severity.HIGH)), has_baseline=False)
    _, by_name = conditions(GateInputs("/repo", evidence))
    assert "no baseline" in by_name["new findings >= high"].evidence


def test_triage_sets_findings_aside_until_it_expires() -> None:
    high = finding("B602", Severity.HIGH)
    accepted = TriageDecision(
        high.fingerprint, TriageState.ACCEPTED_RISK, "eve", "ok", 0, NOW + DAY
    )
    outcome, by_name = conditions(
        GateInputs("/repo", scan(high), triage={high.fingerprint: accepted})
    )
    assert outcome.result.verdict is GateVerdict.PASS
    assert by_name["expired risk acceptances"].status is ConditionStatus.PASS

    lapsed = replace(accepted, expires_ms=NOW - DAY)
    outcome, by_name = conditions(
        GateInputs("/repo", scan(high), triage={high.fingerprint: lapsed})
    )
    expired = by_name["expired risk acceptances"]
    assert expired.status is ConditionStatus.BLOCK
    assert "risk accepted by eve expired on 2026-09-20" in expired.evidence


def test_counts_per_severity_secrets_and_fixable_dependencies() -> None:
    config = GateConfig(max_new=MaxNewConfig(medium=1), fail_on=Severity.CRITICAL)
    mediums = [finding(f"B{i}", Severity.MEDIUM, f"app/{i}.py") for i in range(2)]
    secret = finding("aws-access-key", Severity.LOW, category="secret")
    outcome, by_name = conditions(GateInputs("/repo", scan(*mediums, secret)), config)
    assert by_name["new medium findings"].status is ConditionStatus.BLOCK
    assert by_name["new medium findings"].measured == 2
    assert by_name["new secrets"].status is ConditionStatus.BLOCK
    assert "fixable vulnerable dependencies" not in by_name  # deps not enabled: a note
    assert any("the scan did not include the deps scanner" in n for n in outcome.notes)

    fixable = finding(
        "PYSEC-1",
        Severity.LOW,
        "requirements.txt",
        "dependency",
        properties={"fixed_versions": ["2.0"]},
    )
    unfixable = finding(
        "PYSEC-2", Severity.LOW, "requirements.txt", "dependency", properties={"fixed_versions": []}
    )
    evidence = replace(scan(fixable, unfixable), scanners=("bandit", "deps"))
    _, by_name = conditions(GateInputs("/repo", evidence))
    assert by_name["fixable vulnerable dependencies"].measured == 1
    # Asked for (OSV data given) but unable to run: cannot evaluate, with why.
    evidence = replace(
        evidence, unavailable={"deps": "no OSV database"}, requested=frozenset({"deps"})
    )
    outcome, by_name = conditions(GateInputs("/repo", evidence))
    deps = by_name["fixable vulnerable dependencies"]
    assert deps.status is ConditionStatus.CANNOT_EVALUATE
    assert deps.evidence == "the deps scanner did not run: no OSV database"
    assert "not run: deps: no OSV database" in by_name["scanners ran"].evidence
    assert outcome.result.verdict is GateVerdict.CANNOT_EVALUATE


def test_a_default_scanner_that_cannot_run_is_reported_not_judged() -> None:
    """deps enabled by default, without OSV data: named with why, and the gate still passes."""
    why = "no OSV database: pass --osv-db PATH"
    evidence = replace(scan(), scanners=("bandit", "secrets", "deps"), unavailable={"deps": why})
    outcome, by_name = conditions(GateInputs("/repo", evidence))
    assert outcome.result.verdict is GateVerdict.PASS
    assert "fixable vulnerable dependencies" not in by_name
    assert by_name["scanners ran"].evidence == (
        f"bandit, secrets ran on 10 files without error; not run: deps: {why}"
    )
    assert f"vulnerable dependencies: not checked (deps did not run: {why})" in outcome.notes
    # The same scan when the OSV data was given: the condition cannot be evaluated.
    asked = replace(evidence, requested=frozenset({"deps"}))
    outcome, by_name = conditions(GateInputs("/repo", asked))
    assert outcome.result.verdict is GateVerdict.CANNOT_EVALUATE
    assert by_name["fixable vulnerable dependencies"].evidence == (
        f"the deps scanner did not run: {why}"
    )


def test_a_scanner_that_checked_nothing_is_named() -> None:
    """deps ran but every lookup failed: not "ran without error", and asked for it cannot pass."""
    why = "OSV lookup failed: OSV API http://127.0.0.1:9/v1/querybatch unreachable"
    evidence = replace(
        scan(),
        scanners=("bandit", "secrets", "deps"),
        failed={"deps": why},
        requested=frozenset({"deps"}),
    )
    outcome, by_name = conditions(GateInputs("/repo", evidence))
    assert by_name["scanners ran"].evidence == (
        f"bandit, secrets ran on 10 files without error; checked nothing: deps: {why}"
    )
    deps = by_name["fixable vulnerable dependencies"]
    assert deps.status is ConditionStatus.CANNOT_EVALUATE
    assert deps.evidence == f"the deps scanner checked none of its files: {why}"
    assert outcome.result.verdict is GateVerdict.CANNOT_EVALUATE


def test_requested_scanners_follow_the_osv_data_given(tmp_path: Path) -> None:
    """OSV data asks for deps (as --scanners deps asks secperf scan); the default list does not."""
    osv = tmp_path / "osv"
    osv.mkdir()
    assert requested_scanners(ScanConfig()) == frozenset()
    assert requested_scanners(ScanConfig(), osv) == {"deps"}
    assert requested_scanners(ScanConfig(deps=DepsConfig(network=True))) == {"deps"}
    assert requested_scanners(ScanConfig(deps=DepsConfig(osv_db=osv))) == {"deps"}
    # deps left out of [scan] scanners: OSV data does not add it.
    assert requested_scanners(ScanConfig(scanners=["bandit"]), osv) == frozenset()


def test_scanner_errors_and_coverage() -> None:
    evidence = scan(errors=("app/x.py (bandit): error: RecursionError: deep",))
    outcome, by_name = conditions(GateInputs("/repo", evidence))
    assert outcome.result.verdict is GateVerdict.CANNOT_EVALUATE
    assert "RecursionError" in by_name["scanners ran"].evidence

    low = replace(scan(), metrics=metrics(scan_coverage_percent=80.0, files_scanned=8))
    _, by_name = conditions(GateInputs("/repo", low), GateConfig(min_coverage=90))
    coverage = by_name["scan coverage"]
    assert coverage.status is ConditionStatus.BLOCK
    assert (coverage.measured, coverage.threshold) == (80.0, 90.0)


def test_coverage_evidence_counts_skipped_files_not_scanners_that_did_not_run() -> None:
    # As the validator records a scan without OSV data and without semgrep,
    # where one file could not be decoded.
    skips = {"not UTF-8 text": 1, "deps: unavailable": 1, "semgrep: unavailable": 1}
    evidence = replace(
        scan(unavailable={"deps": "no OSV database", "semgrep": "semgrep is not installed"}),
        scanners=("bandit", "secrets", "deps", "semgrep"),
        metrics=metrics(
            scan_coverage_percent=90.0, files_scanned=9, files_skipped=1, skip_reasons=skips
        ),
    )
    _, by_name = conditions(GateInputs("/repo", evidence), GateConfig(min_coverage=80))
    coverage = by_name["scan coverage"]
    assert coverage.status is ConditionStatus.PASS
    assert coverage.evidence == (
        "9 of 10 eligible files scanned (90.0 %); skipped: not UTF-8 text: 1"
    )
    # The scanners that did not run are named where they belong.
    assert by_name["scanners ran"].evidence.endswith(
        "not run: deps: no OSV database; semgrep: semgrep is not installed"
    )
    # Nothing skipped: no "skipped" at all, whatever did not run.
    clean = replace(
        evidence, metrics=metrics(skip_reasons={"deps: unavailable": 1, "semgrep: unavailable": 1})
    )
    _, by_name = conditions(GateInputs("/repo", clean), GateConfig(min_coverage=80))
    assert by_name["scan coverage"].evidence == "10 of 10 eligible files scanned (100.0 %)"


def test_finding_waivers_active_and_expired() -> None:
    high = finding("B602", Severity.HIGH)
    active = FindingWaiver(
        0, "alice", "constant input", date(2026, 12, 1), rule="B602", path="app/*"
    )
    outcome, by_name = conditions(GateInputs("/repo", scan(high)), waivers=Waivers((active,)))
    condition = by_name["new findings >= high"]
    assert outcome.result.verdict is GateVerdict.PASS
    assert condition.status is ConditionStatus.WAIVED
    assert "WAIVED, waived until 2026-12-01 (owner: alice" in condition.evidence

    expired = replace(active, expires=date(2026, 9, 1))
    outcome, by_name = conditions(GateInputs("/repo", scan(high)), waivers=Waivers((expired,)))
    assert outcome.result.verdict is GateVerdict.BLOCK
    assert "waiver expired on 2026-09-01 (owner: alice)" in by_name["new findings >= high"].evidence


# ------------------------------------------------------------------ performance


def runs() -> list[BenchmarkResult]:
    return load_pytest_benchmark(FIXTURE)


def scaled(result: BenchmarkResult, factor: float, days: int = 1, **kw: object) -> BenchmarkResult:
    stats = {
        k: (v * factor if k not in ("rounds", "iterations", "ops") else v)
        for k, v in result.stats.items()
    }
    return replace(
        result,
        timestamp_ms=result.timestamp_ms + days * DAY,
        stats=stats,
        data=tuple(x * factor for x in result.data),
        **kw,  # type: ignore[arg-type]
    )


def bench_inputs(current: list[BenchmarkResult], history: list[BenchmarkResult]) -> GateInputs:
    by_name = {r.name: [h for h in history if h.name == r.name] for r in current}
    return GateInputs("/repo", scan(), benchmarks=current, benchmark_history=by_name)


def test_twenty_percent_slower_blocks_one_percent_passes() -> None:
    base = runs()
    outcome, by_name = conditions(bench_inputs([scaled(r, 1.20) for r in base], base))
    assert outcome.result.verdict is GateVerdict.BLOCK
    for row in outcome.benchmarks:
        assert row.verdict.method == "mann-whitney-u"
        assert row.status is ConditionStatus.BLOCK
    assert by_name["benchmark test_tinybench.py::test_sum"].measured == "+20.0 %"

    outcome, _ = conditions(bench_inputs([scaled(r, 1.01) for r in base], base))
    assert outcome.result.verdict is GateVerdict.PASS


def test_benchmark_waiver_allows_up_to_its_limit() -> None:
    base = runs()
    waiver = BenchmarkWaiver(0, "*test_sum", 0.25, "dan", "known", date(2026, 12, 1))
    _outcome, by_name = conditions(
        bench_inputs([scaled(r, 1.20) for r in base], base), waivers=Waivers(benchmarks=(waiver,))
    )
    assert by_name["benchmark test_tinybench.py::test_sum"].status is ConditionStatus.WAIVED
    assert by_name["benchmark test_tinybench.py::test_sorted[10]"].status is ConditionStatus.BLOCK
    tight = replace(waiver, max_regression=0.10)
    _, by_name = conditions(
        bench_inputs([scaled(r, 1.20) for r in base], base), waivers=Waivers(benchmarks=(tight,))
    )
    sum_condition = by_name["benchmark test_tinybench.py::test_sum"]
    assert sum_condition.status is ConditionStatus.BLOCK
    assert "exceeds the waiver's 10 %" in sum_condition.evidence


def test_other_machine_or_too_few_samples_cannot_evaluate() -> None:
    base = runs()
    elsewhere = [scaled(r, 1.0, machine="another0machine0") for r in base]
    outcome, by_name = conditions(bench_inputs(elsewhere, base))
    assert outcome.result.verdict is GateVerdict.CANNOT_EVALUATE
    assert "not comparable" in by_name["benchmark test_tinybench.py::test_sum"].evidence

    bare = [replace(r, data=()) for r in base]
    outcome, by_name = conditions(bench_inputs([scaled(r, 1.5) for r in bare], bare))
    assert outcome.result.verdict is GateVerdict.CANNOT_EVALUATE
    assert "too few samples" in by_name["benchmark test_tinybench.py::test_sum"].evidence

    outcome, _ = conditions(bench_inputs(base, []))
    assert outcome.result.verdict is GateVerdict.CANNOT_EVALUATE


def test_benchmark_input_problems_cannot_evaluate() -> None:
    inputs = GateInputs(
        "/repo", scan(), benchmark_problems=["f.json: benchmarks[1].stats: missing"]
    )
    outcome, by_name = conditions(inputs)
    assert outcome.result.verdict is GateVerdict.CANNOT_EVALUATE
    assert "benchmarks[1].stats" in by_name["benchmark input"].evidence


def history_of_scans(n: int, ms: float = 1000.0, **kw: object) -> list[SecurityMetrics]:
    return [
        metrics(
            f"h{i}",
            started_ms=NOW - (n - i) * DAY,
            scan_duration_ms=ms * (1 + 0.01 * (i % 3)),
            **kw,
        )
        for i in range(n)
    ]


def test_scan_time_regression_per_kloc_against_comparable_scans() -> None:
    earlier = history_of_scans(8)
    slow = replace(scan(), metrics=metrics(scan_duration_ms=1600.0))
    outcome, by_name = conditions(GateInputs("/repo", slow, scan_history=earlier))
    condition = by_name["scan time per 1,000 lines"]
    assert condition.status is ConditionStatus.BLOCK
    assert outcome.scan_time is not None and outcome.scan_time.effect_pct == pytest.approx(
        59, abs=2
    )
    # Milliseconds per 1,000 lines, the medians too (they once said seconds).
    assert condition.evidence.startswith("320 ms per 1,000 lines (5000 lines")
    assert "; median 202 -> 320 ms per 1,000 lines;" in condition.evidence
    text = markdown.render(outcome)
    assert "median 202 -&gt; 320 ms per 1,000 lines" in text
    assert "| scan_time_ms_per_kloc | 202 ms/kLOC | 320 ms/kLOC |" in text
    sarif = gate_sarif(outcome, Path("/repo"))
    [regression] = [
        r
        for r in sarif["runs"][0]["results"]
        if r["ruleId"] == "secperf/performance/scan-time-regression"
    ]
    assert "median 202 -> 320 ms per 1,000 lines" in regression["message"]["text"]

    # Twice as many lines in the same time is not slower per 1,000 lines.
    bigger = replace(scan(), metrics=metrics(scan_duration_ms=2000.0, lines_scanned=10_000))
    _, by_name = conditions(GateInputs("/repo", bigger, scan_history=earlier))
    assert by_name["scan time per 1,000 lines"].status is ConditionStatus.PASS

    # Cold scans are not compared with a warm one: history too short -> a note, no condition.
    cold = history_of_scans(8, cache_hit_rate=0.0)
    outcome, by_name = conditions(GateInputs("/repo", slow, scan_history=cold))
    assert "scan time per 1,000 lines" not in by_name
    assert any(n.startswith("scan time: not checked yet") for n in outcome.notes)


def test_scan_overhead_budget() -> None:
    cost = ScanCost(
        "s1",
        NOW,
        NOW + 1000,
        cpu_seconds=3.0,
        peak_rss_bytes=300 * 2**20,
        read_bytes=0,
        write_bytes=0,
        host_cpu_percent_avg=40.0,
        samples=10,
    )
    outcome, by_name = conditions(GateInputs("/repo", scan(), cost=cost))
    assert "scan overhead" not in by_name
    assert any("scan overhead: not enforced" in n for n in outcome.notes)

    budget = GateConfig(overhead_budget=OverheadBudgetConfig(cpu_seconds=2.0, peak_rss="1GiB"))
    _, by_name = conditions(GateInputs("/repo", scan(), cost=cost), budget)
    overhead = by_name["scan overhead"]
    assert overhead.status is ConditionStatus.BLOCK
    assert (
        "CPU 3.00 s > 2 s" in overhead.evidence
        and "peak RSS" not in overhead.evidence.split("over budget:")[1]
    )
    _, by_name = conditions(GateInputs("/repo", scan(), cost=None), budget)
    assert by_name["scan overhead"].status is ConditionStatus.CANNOT_EVALUATE
