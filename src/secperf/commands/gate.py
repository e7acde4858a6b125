"""``secperf gate``: gather the scan, the benchmarks and their history, then judge.

The orchestration the CLI calls:

1. read the waiver file and the benchmark files given on the command line
   (bad input is a ``GateUsageError``: exit 2, never a pass);
2. scan the tree (a warm cache makes this cheap) while ``ScanImpactSampler``
   measures what the scan costs the machine, or read a stored scan by id;
3. in the embedded runtime: store the scan's cost and the new benchmark
   results (so the history grows), read the benchmark history, earlier scans
   of the same target and the triage decisions;
4. evaluate (``gates.gate.evaluate``) and publish ``GateEvaluated``, which the
   store subscribes to, so every run is kept as a gate run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from secperf.commands.scanning import run_scan
from secperf.config import LoadedConfig
from secperf.events import GateEvaluated, now_ms
from secperf.gates.conditions.security import requested_scanners
from secperf.gates.evidence import GateInputs, GateOutcome, ScanEvidence
from secperf.gates.gate import evaluate
from secperf.gates.reports import REPORTS
from secperf.gates.waivers import WAIVERS_FILE, WaiverError, Waivers, load_waivers
from secperf.model import (
    BenchmarkResult,
    ScanCost,
    SecurityMetrics,
    Severity,
)
from secperf.perf.benchmarks import BenchmarkImportError, load_asv_results, load_pytest_benchmark
from secperf.perf.impact import ScanImpactError, ScanImpactSampler
from secperf.runtime import Runtime
from secperf.security.baseline import BaselineError, compare
from secperf.security.factory import ScanOptions, load_project_baseline
from secperf.security.validator import ScanReport
from secperf.store import Store

#: How many earlier runs of one benchmark, and earlier scans, the tests look at.
HISTORY_LIMIT = 200


class GateUsageError(ValueError):
    """Input the gate cannot use (a bad file, an unknown scan id): exit 2."""


@dataclass(frozen=True, slots=True)
class GateOptions:
    """What the command line chose."""

    root: Path
    benchmark_files: Sequence[Path] = ()
    asv_dir: Path | None = None
    scan_id: str | None = None
    fail_on: Severity | None = None
    osv_db: Path | None = None
    use_cache: bool = True
    paths: Sequence[str] | None = None


# --------------------------------------------------------------------------- inputs


def waiver_path(loaded: LoadedConfig, root: Path) -> Path:
    """``[gate] waivers``, or the scanned tree's own waiver file when the config has none."""
    configured = loaded.config.gate.waivers
    if not configured.exists() and (root / WAIVERS_FILE).is_file():
        return root / WAIVERS_FILE
    return configured


def read_waivers(loaded: LoadedConfig, root: Path) -> Waivers:
    try:
        return load_waivers(waiver_path(loaded, root))
    except WaiverError as exc:
        raise GateUsageError(str(exc)) from None


def read_benchmarks(options: GateOptions) -> tuple[list[BenchmarkResult], list[str]]:
    """Results from the files given; a bad entry is a problem, a bad file an error."""
    results: list[BenchmarkResult] = []
    problems: list[BenchmarkImportError] = []
    try:
        for path in options.benchmark_files:
            results.extend(load_pytest_benchmark(path, strict=False, problems=problems))
        if options.asv_dir is not None:
            if not options.asv_dir.exists():
                raise GateUsageError(f"--asv: {options.asv_dir}: no such file or directory")
            results.extend(load_asv_results(options.asv_dir, strict=False, problems=problems))
    except BenchmarkImportError as exc:
        raise GateUsageError(str(exc)) from None
    return results, [str(p) for p in problems]


def current_commit(root: Path) -> str | None:
    """The commit under test: CI's variable, else ``git rev-parse HEAD``, else None."""
    for var in ("GITHUB_SHA", "CI_COMMIT_SHA", "BUILD_SOURCEVERSION", "GIT_COMMIT"):
        value = os.environ.get(var)
        if value:
            return value
    git = shutil.which("git")
    if git is None:
        return None
    try:
        done = subprocess.run(
            [git, "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and commit else None


def evidence_from_report(
    report: ScanReport,
    scanners: Sequence[str],
    has_baseline: bool,
    requested: frozenset[str] = frozenset(),
) -> ScanEvidence:
    """A fresh scan as the gate sees it."""
    errors = tuple(
        f"{path} ({scanner}): {reason}"
        for path, scanner, reason in report.skipped
        if reason.startswith("error")
    )
    return ScanEvidence(
        scan_id=report.scan_id,
        target=report.target,
        metrics=report.metrics,
        findings=tuple(report.findings),
        new_fingerprints=frozenset(f.fingerprint for f in report.comparison.new),
        has_baseline=has_baseline,
        scanners=tuple(scanners),
        unavailable=dict(report.unavailable),
        errors=errors,
        status=report.status,
        failed=dict(report.failed_scanners),
        requested=requested,
    )


def evidence_from_store(
    store: Store, scan_id: str, root: Path, requested: frozenset[str] = frozenset()
) -> ScanEvidence:
    """A stored scan, compared with the repository's baseline as it is now."""
    record = store.scan(scan_id)
    if record is None:
        raise GateUsageError(f"--scan-id: no stored scan {scan_id!r}; see `secperf findings list`")
    if record.metrics is None:
        raise GateUsageError(
            f"--scan-id: scan {scan_id!r} has no results (status {record.status}); "
            "it did not finish"
        )
    baseline = load_project_baseline(root)
    findings = [stored.finding for stored in store.findings(scan_id=scan_id, limit=None)]
    comparison = compare(findings, baseline)
    unavailable: dict[str, str] = {}
    for part in (record.error or "").split("; "):
        name, sep, reason = part.partition(": ")
        if sep and name:
            unavailable[name] = reason
    crashed = sum(n for reason, n in record.metrics.skip_reasons.items() if reason == "error")
    errors = (f"{crashed} files: a scanner crashed (details are not stored)",) if crashed else ()
    return ScanEvidence(
        scan_id=scan_id,
        target=record.target,
        metrics=record.metrics,
        findings=tuple(findings),
        new_fingerprints=frozenset(f.fingerprint for f in comparison.new),
        has_baseline=baseline is not None,
        scanners=tuple(sorted({*record.scanners, *unavailable})),
        unavailable=unavailable,
        errors=errors,
        status=record.status,
        requested=requested,
    )


def _identity(result: BenchmarkResult) -> tuple[str, str, str, int]:
    return (result.name, result.commit or "", result.machine, result.timestamp_ms)


def latest_stored_run(store: Store) -> list[BenchmarkResult]:
    """The newest stored run: the latest results sharing the newest result's machine and commit."""
    latest = [
        found[-1]
        for name in store.benchmark_names()
        if (found := store.benchmark_results(name, limit=1))
    ]
    if not latest:
        return []
    newest = max(latest, key=lambda r: r.timestamp_ms)
    if newest.commit:
        return [r for r in latest if r.commit == newest.commit and r.machine == newest.machine]
    return [r for r in latest if r.timestamp_ms == newest.timestamp_ms]


def benchmark_history(
    store: Store, current: Sequence[BenchmarkResult]
) -> dict[str, list[BenchmarkResult]]:
    """Earlier stored runs of each current benchmark (the current run itself excluded)."""
    history: dict[str, list[BenchmarkResult]] = {}
    for result in current:
        mine = _identity(result)
        history[result.name] = [
            r
            for r in store.benchmark_results(result.name, limit=HISTORY_LIMIT)
            if _identity(r) != mine and r.timestamp_ms < result.timestamp_ms
        ]
    return history


def scan_history(store: Store, metrics: SecurityMetrics) -> list[SecurityMetrics]:
    """Earlier finished scans of the same target, oldest first."""
    records = store.scans(limit=HISTORY_LIMIT, target=metrics.target)
    return sorted(
        (
            r.metrics
            for r in records
            if r.metrics is not None
            and r.scan_id != metrics.scan_id
            and r.status in ("ok", "partial")
        ),
        key=lambda m: m.started_ms,
    )


# --------------------------------------------------------------------------- run


async def run_gate(
    loaded: LoadedConfig, options: GateOptions, *, store_url: str | None = None
) -> GateOutcome:
    """Scan (or read a stored scan), compare, evaluate and store the gate run."""
    started = now_ms()
    root = options.root
    waivers = read_waivers(loaded, root)
    benchmarks, problems = read_benchmarks(options)
    try:
        baseline = load_project_baseline(root)
    except BaselineError as exc:
        raise GateUsageError(str(exc)) from None

    evidence: ScanEvidence | None = None
    scan_problem: str | None = None
    cost: ScanCost | None = None
    # deps without OSV data stays in the scan: it is reported as not run, with
    # why, and only a scanner asked for explicitly makes the gate exit 3.
    requested = requested_scanners(loaded.config.scan, options.osv_db)
    if options.scan_id is None:
        scanners = list(loaded.config.scan.scanners)
        sampler = ScanImpactSampler("gate-scan").start()
        report: ScanReport | None = None
        try:
            report, _ = await run_scan(
                loaded,
                ScanOptions(
                    root=root,
                    scanners=scanners,
                    use_cache=options.use_cache,
                    osv_db=options.osv_db,
                    paths=options.paths,
                ),
                store_url=store_url,
            )
        except (BaselineError, ValueError) as exc:
            scan_problem = f"the scan failed: {exc}"
        except OSError as exc:
            scan_problem = f"the scan failed: {exc.strerror or exc}"
        finally:
            try:
                cost = sampler.stop()
            except ScanImpactError:
                cost = None  # the gate still judges the scan; the cost check says it is missing
        if report is not None:
            evidence = evidence_from_report(report, scanners, baseline is not None, requested)
            if cost is not None:
                cost = replace(cost, scan_id=report.scan_id)
        else:
            cost = None

    async with Runtime(loaded.config, store_url=store_url) as runtime:
        store, bus = runtime.store, runtime.bus
        assert store is not None and bus is not None
        if options.scan_id is not None:
            evidence = evidence_from_store(store, options.scan_id, root, requested)
            record = store.scan(options.scan_id)
            cost = record.cost if record is not None else None
        elif cost is not None:
            store.record_scan_cost(cost)
        triage = store.triage_all()
        if benchmarks:
            store.add_benchmark_results(benchmarks)
        elif not options.benchmark_files and options.asv_dir is None:
            benchmarks = latest_stored_run(store)
        history = benchmark_history(store, benchmarks)
        earlier = scan_history(store, evidence.metrics) if evidence is not None else []
        inputs = GateInputs(
            target=evidence.target if evidence is not None else str(root),
            scan=evidence,
            scan_problem=scan_problem,
            triage=triage,
            benchmarks=benchmarks,
            benchmark_history=history,
            benchmark_problems=problems,
            scan_history=earlier,
            cost=cost,
            commit=current_commit(root),
            fail_on=options.fail_on,
        )
        outcome = evaluate(inputs, loaded.config.gate, waivers, started_ms=started)
        await bus.publish(GateEvaluated(result=outcome.result))
    return outcome


# --------------------------------------------------------------------------- reports


def write_reports(outcome: GateOutcome, report_dir: Path, root: Path) -> list[Path]:
    """Write every gate report (gate.md, gate.junit.xml, gate.sarif, gate.json); their paths."""
    report_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for report in REPORTS:
        path = report_dir / report.file_name
        path.write_text(report.render(outcome, root), encoding="utf-8")
        written.append(path)
    return written
