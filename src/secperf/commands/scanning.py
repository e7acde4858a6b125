"""``secperf scan``: run the validator inside the embedded runtime and report.

The scan publishes its events on the runtime's bus; the store subscribes, so
the scan, its findings and its metrics are persisted like any other event.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from secperf.config import LoadedConfig
from secperf.events import Event, now_ms
from secperf.model import Finding, SecurityMetrics, Severity
from secperf.runtime import Runtime
from secperf.security.baseline import BASELINE_FILE, Baseline, load_baseline, project_salt
from secperf.security.cache import ScanCache
from secperf.security.factory import CACHE_FILE, build_discovery, build_scanners, scan_paths
from secperf.security.triage import TriageDecision, TriageState, effective_state
from secperf.security.validator import Progress, ScanReport, SecurityValidator
from secperf.store import Store, TriageEntry


@dataclass(frozen=True, slots=True)
class ScanOptions:
    """What the command line may override of ``[scan]``."""

    root: Path
    scanners: Sequence[str] | None = None
    jobs: int | None = None
    use_cache: bool = True
    osv_db: Path | None = None
    paths: Sequence[str] | None = None


def decisions_from_store(entries: dict[str, TriageEntry]) -> dict[str, TriageDecision]:
    """The store's triage rows as the security layer's decisions."""
    decisions: dict[str, TriageDecision] = {}
    for fingerprint, entry in entries.items():
        try:
            state = TriageState(entry.state)
        except ValueError:
            continue
        decisions[fingerprint] = TriageDecision(
            fingerprint, state, entry.author, entry.note or "", entry.updated_ms, entry.expires_ms
        )
    return decisions


def baseline_path(root: Path) -> Path:
    return root / BASELINE_FILE


def load_project_baseline(root: Path) -> Baseline | None:
    """The repository's baseline; raises BaselineError naming the file when malformed."""
    return load_baseline(baseline_path(root))


def make_validator(
    loaded: LoadedConfig,
    options: ScanOptions,
    baseline: Baseline | None,
    triage: dict[str, TriageDecision],
    publish: Callable[[Event], None] | None,
    progress: Progress | None,
) -> SecurityValidator:
    """A validator configured from ``[scan]`` with the command line's overrides."""
    scan_cfg = loaded.config.scan
    salt = project_salt(options.root, baseline)
    scanners = build_scanners(scan_cfg, salt, only=options.scanners, osv_db=options.osv_db)
    cache = None
    if options.use_cache and scan_cfg.cache:
        cache = ScanCache(options.root / CACHE_FILE)
    return SecurityValidator(
        scanners,
        discovery=build_discovery(scan_cfg),
        cache=cache,
        jobs=options.jobs if options.jobs is not None else scan_cfg.jobs,
        baseline=baseline,
        triage=triage,
        publish=publish,
        progress=progress,
    )


async def run_scan(
    loaded: LoadedConfig,
    options: ScanOptions,
    *,
    progress: Progress | None = None,
    store_url: str | None = None,
) -> tuple[ScanReport, dict[str, TriageDecision]]:
    """Scan once; events go through the bus into the store. Returns the report and triage."""
    baseline = load_project_baseline(options.root)
    async with Runtime(loaded.config, store_url=store_url) as runtime:
        assert runtime.store is not None and runtime.bus is not None
        triage = decisions_from_store(runtime.store.triage_all())
        bus = runtime.bus
        validator = make_validator(
            loaded, options, baseline, triage, bus.publish_threadsafe, progress
        )
        paths = (
            list(options.paths) if options.paths else scan_paths(loaded.config.scan, options.root)
        )
        try:
            report = await asyncio.to_thread(validator.scan, options.root, paths)
        finally:
            validator.close()
            if validator.cache is not None:
                validator.cache.close()
    return report, triage


def blocking_findings(
    report: ScanReport, fail_on: Severity, triage: dict[str, TriageDecision]
) -> list[Finding]:
    """New findings at or above ``fail_on`` that triage has not set aside."""
    now = now_ms()
    return [
        f
        for f in report.comparison.new
        if f.severity >= fail_on
        and effective_state(triage.get(f.fingerprint), now)
        not in (TriageState.FALSE_POSITIVE, TriageState.ACCEPTED_RISK)
    ]


_METRICS = TypeAdapter(SecurityMetrics)
_FINDINGS = TypeAdapter(list[Finding])


def report_json(report: ScanReport, triage: dict[str, TriageDecision]) -> dict[str, Any]:
    """The scan as JSON: metrics, findings (with new/triage state), skips."""
    now = now_ms()
    new = {f.fingerprint for f in report.comparison.new}
    findings = _FINDINGS.dump_python(report.findings, mode="json")
    for item in findings:
        item["is_new"] = item["fingerprint"] in new
        item["state"] = effective_state(triage.get(item["fingerprint"]), now).value
    return {
        "scan_id": report.scan_id,
        "target": report.target,
        "status": report.status,
        "metrics": _METRICS.dump_python(report.metrics, mode="json"),
        "findings": findings,
        "fixed": report.comparison.fixed,
        "skipped": [
            {"path": path, "scanner": scanner, "reason": reason}
            for path, scanner, reason in report.skipped
        ],
        "unavailable": report.unavailable,
        "suppressed": report.suppressed,
    }


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False) + "\n"


def open_store(loaded: LoadedConfig) -> Store:
    """The configured store, for commands that only read or triage."""
    return Store.open(loaded.config.store.url)
