"""``secperf scan``: run the validator inside the embedded runtime and report.

The scan publishes its events on the runtime's bus; the store subscribes, so
the scan, its findings and its metrics are persisted like any other event.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from secperf.bus.interface import EventBus
from secperf.commands.pacing import ScanPacing
from secperf.config import Config, LoadedConfig
from secperf.config.sections.impact import Priority
from secperf.events import BaselineUpdated, MetricsRecorded, local_host, now_ms
from secperf.model import Finding, Sample, ScanCost, SecurityMetrics, Severity
from secperf.perf.impact import ScanImpactError, ScanImpactSampler
from secperf.runtime import Runtime, sigterm_cancels_task
from secperf.security.baseline import (
    Baseline,
    baseline_from_findings,
    project_salt,
    project_secret_kdf,
    save_baseline,
)
from secperf.security.cache import STATE_DIR_NAME, mark_state_dir
from secperf.security.factory import (
    ScanOptions,
    baseline_path,
    load_project_baseline,
    make_validator,
    scan_paths,
)
from secperf.security.pacing.prediction import record_prediction, try_predict
from secperf.security.triage import SET_ASIDE, TriageDecision, effective_state
from secperf.security.validator import Progress, ScanReport
from secperf.store import Store

log = logging.getLogger(__name__)


class ScanCostRecorder:
    """Measures each scan with a ``ScanImpactSampler`` and hands the results on.

    ``probe`` is the validator's cost probe (so ``SecurityMetrics.cpu_seconds``
    and ``peak_rss_bytes`` come from the sampler); ``pump`` publishes the
    sampled series on the bus while the scan runs, for live charts; ``finish``
    publishes the rest and stores each scan's ``ScanCost`` with its scan.
    Series: ``scan_process_cpu_percent``, ``scan_process_rss_bytes`` and
    ``host_cpu_percent``, labelled ``scan_id`` and ``host``.
    """

    def __init__(self, interval_s: float, host: str | None = None) -> None:
        self.interval_s = interval_s
        self.host = host or local_host()
        self._samplers: list[ScanImpactSampler] = []
        self._published: dict[int, int] = {}  # id(sampler) -> samples published
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config: Config) -> ScanCostRecorder | None:
        """A recorder at ``monitor.impact.interval``; None when monitoring or impact is off."""
        monitor = config.monitor
        if not (monitor.enabled and monitor.impact.enabled):
            return None
        return cls(monitor.impact.interval / 1000)

    def probe(self, scan_id: str) -> Callable[[], tuple[float, int]]:
        """Start sampling scan ``scan_id`` (this process and its workers)."""
        sampler = ScanImpactSampler(scan_id, interval_s=self.interval_s).start()
        with self._lock:
            self._samplers.append(sampler)

        def stop() -> tuple[float, int]:
            cost = sampler.stop()
            return cost.cpu_seconds, cost.peak_rss_bytes

        return stop

    async def publish_new(self, bus: EventBus) -> None:
        """Publish the samples taken since the last call, one batch per scan."""
        with self._lock:
            samplers = list(self._samplers)
        for sampler in samplers:
            samples = sampler.samples
            done = self._published.get(id(sampler), 0)
            if len(samples) <= done:
                continue
            self._published[id(sampler)] = len(samples)
            batch = tuple(
                Sample(s.name, {**s.labels, "host": self.host}, s.timestamp_ms, s.value)
                for s in samples[done:]
            )
            await bus.publish(MetricsRecorded(samples=batch, host=self.host))

    async def pump(self, bus: EventBus, every_s: float = 1.0) -> None:
        """Publish new samples every ``every_s`` until cancelled."""
        while True:
            await asyncio.sleep(every_s)
            await self.publish_new(bus)

    async def finish(self, store: Store, bus: EventBus, *, record: bool = True) -> list[ScanCost]:
        """Stop every sampler, publish what is left and (``record``) store each cost."""
        with self._lock:
            samplers = list(self._samplers)
        costs: list[ScanCost] = []
        for sampler in samplers:
            try:
                costs.append(sampler.stop())
            except ScanImpactError as exc:  # the scan's result stands without its cost
                log.warning("%s", exc)
        await self.publish_new(bus)
        if record:
            for cost in costs:
                await asyncio.to_thread(store.record_scan_cost, cost)
        with self._lock:
            self._samplers.clear()
            self._published.clear()
        return costs


async def run_scan(
    loaded: LoadedConfig,
    options: ScanOptions,
    *,
    progress: Progress | None = None,
    store_url: str | None = None,
    priority: Priority | None = None,
) -> tuple[ScanReport, dict[str, TriageDecision]]:
    """Scan once; events go through the bus into the store. Returns the report and triage.

    Unless ``[monitor.impact]`` is switched off, the scan's cost is sampled
    while it runs (see ``ScanCostRecorder``) and stored with the scan. The scan
    runs at full speed unless ``priority`` (or ``[scan.impact] priority``) is
    low, which brings the impact budget (``security.pacing``).
    """
    baseline = load_project_baseline(options.root)
    recorder = ScanCostRecorder.from_config(loaded.config)
    with sigterm_cancels_task():
        return await _scan_in_runtime(
            loaded, options, baseline, recorder, progress, store_url, priority
        )


async def _scan_in_runtime(
    loaded: LoadedConfig,
    options: ScanOptions,
    baseline: Baseline | None,
    recorder: ScanCostRecorder | None,
    progress: Progress | None,
    store_url: str | None,
    priority: Priority | None = None,
) -> tuple[ScanReport, dict[str, TriageDecision]]:
    async with Runtime(loaded.config, store_url=store_url) as runtime:
        assert runtime.store is not None and runtime.bus is not None
        # The default store lives in the scanned repository's .secperf/ too.
        state_dir = options.root / STATE_DIR_NAME
        if state_dir.is_dir():
            with contextlib.suppress(OSError):
                mark_state_dir(state_dir)
        triage = runtime.store.triage_all()
        bus = runtime.bus
        validator = make_validator(
            loaded.config.scan,
            options,
            baseline,
            triage,
            bus.publish_threadsafe,
            progress,
            publish_many=bus.publish_many_threadsafe,
        )
        paths = (
            list(options.paths) if options.paths else scan_paths(loaded.config.scan, options.root)
        )
        # Predicted before the scan, stored beside its actual cost after it.
        prediction = await asyncio.to_thread(
            try_predict, runtime.store, validator, options.root, paths, host=local_host()
        )
        # One-shot scans (CI) run at full speed unless told otherwise.
        pacing = ScanPacing.for_command(
            loaded.config.scan.impact, "normal", store=runtime.store, bus=bus, override=priority
        )
        pacing.configure(validator)
        pump: asyncio.Task[None] | None = None
        if recorder is not None:
            validator.cost_probe = recorder.probe
            pump = asyncio.create_task(recorder.pump(bus), name="scan-impact-publisher")
        completed = False
        try:
            report = await pacing.scan(
                validator,
                options.root,
                paths,
                predicted_ms=prediction.duration_ms if prediction is not None else None,
                prediction_basis=prediction.basis if prediction is not None else None,
            )
            completed = True
            if prediction is not None:
                await asyncio.to_thread(
                    record_prediction,
                    runtime.store,
                    report.scan_id,
                    prediction,
                    target=report.target,
                    started_ms=report.metrics.started_ms,
                )
        finally:
            await pacing.detach()
            if pump is not None:
                pump.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pump
            validator.close()
            if validator.cache is not None:
                validator.cache.close()
            if recorder is not None:
                # A scan that raised has no scan record to attach a cost to; an
                # interrupted one has.
                await recorder.finish(runtime.store, bus, record=completed or validator.interrupted)
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
        and effective_state(triage.get(f.fingerprint), now) not in SET_ASIDE
    ]


@functools.cache
def _metrics_adapter() -> TypeAdapter[SecurityMetrics]:
    # Built on first use: only the JSON report needs it (~10 ms of schema building).
    return TypeAdapter(SecurityMetrics)


@functools.cache
def _findings_adapter() -> TypeAdapter[list[Finding]]:
    return TypeAdapter(list[Finding])


def report_json(report: ScanReport, triage: dict[str, TriageDecision]) -> dict[str, Any]:
    """The scan as JSON: metrics, findings (with new/triage state), skips."""
    now = now_ms()
    new = {f.fingerprint for f in report.comparison.new}
    findings = _findings_adapter().dump_python(report.findings, mode="json")
    for item in findings:
        item["is_new"] = item["fingerprint"] in new
        item["state"] = effective_state(triage.get(item["fingerprint"]), now).value
    return {
        "scan_id": report.scan_id,
        "target": report.target,
        "status": report.status,
        "metrics": _metrics_adapter().dump_python(report.metrics, mode="json"),
        "findings": findings,
        "fixed": report.comparison.fixed,
        "skipped": [
            {"path": path, "scanner": scanner, "reason": reason}
            for path, scanner, reason in report.skipped
        ],
        "excluded": [{"path": path, "reason": reason} for path, reason in report.excluded],
        "unavailable": report.unavailable,
        "failed_scanners": report.failed_scanners,
        "notes": report.notes,
        "suppressed": report.suppressed,
        "pacing": report.pacing,
    }


def unevaluated_scanners(report: ScanReport, requested: Sequence[str] | None) -> dict[str, str]:
    """Scanners asked for by name that could not do their job, with why and how to fix it.

    A scanner that did not run (semgrep not installed, no OSV data) or that
    checked none of its files: the scan cannot say those files are clean, so
    the command exits 3 (cannot evaluate). Scanners enabled by default only are
    reported in the summary and keep the exit code.
    """
    if not requested:
        return {}
    problems: dict[str, str] = {}
    for scanner in requested:
        reason = report.unavailable.get(scanner) or report.failed_scanners.get(scanner)
        if reason is not None:
            problems[scanner] = reason
    return problems


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False) + "\n"


def open_store(loaded: LoadedConfig) -> Store:
    """The configured store, for commands that only read or triage."""
    return Store.open(loaded.config.store.url)


@dataclass(frozen=True, slots=True)
class BaselineChange:
    """What ``baseline update`` did."""

    path: Path
    fingerprints: int
    added: int
    removed: int


async def update_baseline(
    loaded: LoadedConfig, options: ScanOptions, author: str | None, *, store_url: str | None = None
) -> BaselineChange:
    """Scan, then accept every current finding into the repository's baseline."""
    old = load_project_baseline(options.root)
    salt = project_salt(options.root, old).hex()
    report, _ = await run_scan(loaded, options, store_url=store_url)
    created = now_ms()
    # The scan derived secret fingerprints with these parameters: record them.
    new = baseline_from_findings(report.findings, salt, created, project_secret_kdf(old))
    path = baseline_path(options.root)
    save_baseline(path, new)
    before = set(old.fingerprints) if old else set()
    after = set(new.fingerprints)
    change = BaselineChange(path, len(after), len(after - before), len(before - after))
    async with Runtime(loaded.config, store_url=store_url) as runtime:
        assert runtime.store is not None and runtime.bus is not None
        runtime.store.save_baseline(str(options.root), after, created)
        await runtime.bus.publish(
            BaselineUpdated(
                baseline=str(path),
                fingerprints=change.fingerprints,
                added=change.added,
                removed=change.removed,
                author=author,
            )
        )
    return change


def resolve_fingerprint(store: Store, prefix: str) -> Finding:
    """The stored finding whose fingerprint starts with ``prefix`` (unique, >= 6 chars)."""
    if len(prefix) < 6:
        raise ValueError(f"fingerprint {prefix!r}: give at least 6 characters")
    matches: dict[str, Finding] = {}
    for stored in store.findings(limit=None):
        if stored.finding.fingerprint.startswith(prefix):
            matches[stored.finding.fingerprint] = stored.finding
    if not matches:
        raise ValueError(f"no finding with a fingerprint starting {prefix!r}; run `secperf scan`")
    if len(matches) > 1:
        raise ValueError(f"fingerprint {prefix!r} is ambiguous: {len(matches)} findings match")
    return next(iter(matches.values()))
