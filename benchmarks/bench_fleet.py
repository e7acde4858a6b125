"""The fleet view's API: every target of a team at once, over real HTTP.

A real SQLite store holds 200 targets, each scanned a few times (five
findings a scan, one triaged), with a gate verdict, a scan cost, a firing
alert per ten targets and 20 hosts of host-wide samples, all written through
the store's API. The app runs under the real uvicorn (as ``secperf serve``).

* ``GET /api/v1/fleet/targets`` (all 200 on one page), target <= 1 s; anchor:
  ``GET /api/v1/overview`` on the same store (one target's status);
* ``GET /api/v1/fleet/hosts`` (20 hosts), beside the same anchor.

Each figure is the median of several requests after a warm-up, the JSON
decoded by the client.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from benchmarks.common import Figure, serve_in_thread
from secperf.bus import AsyncEventBus
from secperf.events import AlertChanged
from secperf.model import (
    Alert,
    AlertState,
    Finding,
    GateResult,
    GateVerdict,
    MetricKind,
    Sample,
    ScanCost,
    SecurityMetrics,
    Severity,
)
from secperf.store import Store
from secperf.web import create_app

AREA = "fleet"
TARGETS = 200
HOSTS = 20
FINDINGS_PER_SCAN = 5
TARGET_S = 1.0


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@contextmanager
def _serve(store: Store) -> Iterator[str]:
    app = create_app(store, AsyncEventBus())
    with serve_in_thread(app) as url:
        yield url


def _findings(target: str, scan: int) -> list[Finding]:
    severities = list(Severity)
    return [
        Finding(
            fingerprint=f"{target}-{i:04d}".ljust(32, "0")[:32],
            rule_id=f"B{600 + i}",
            scanner="bandit",
            severity=severities[(i + scan) % len(severities)],
            message=f"issue {i}",
            path=f"{target}/mod{i}.py",
            line=i + 1,
        )
        for i in range(FINDINGS_PER_SCAN)
    ]


def _fill(store: Store, scans_per_target: int) -> None:
    """200 targets, each with its scans, findings, a triage, a gate run and a cost."""
    now = _now_ms()
    for t in range(TARGETS):
        target = f"project-{t:03d}"
        host = f"host-{t % HOSTS:02d}"
        for s in range(scans_per_target):
            scan_id = f"{target}-scan-{s}"
            finished = now - (scans_per_target - s) * 3_600_000 - t * 1000
            found = _findings(target, s)
            counts: dict[str, int] = {}
            for f in found:
                counts[f.severity.value] = counts.get(f.severity.value, 0) + 1
            store.record_scan_started(scan_id, target, finished - 20_000, ["bandit"])
            store.add_findings(scan_id, found, [found[0].fingerprint])
            store.record_scan_completed(
                SecurityMetrics(
                    scan_id=scan_id,
                    target=target,
                    started_ms=finished - 20_000,
                    finished_ms=finished,
                    scan_duration_ms=20_000.0,
                    violations_found=len(found),
                    false_positive_rate=0.0,
                    vulnerability_severity_counts=counts,
                    scan_coverage_percent=97.0,
                    eligible_files=100,
                    files_scanned=97,
                    new_findings=1,
                ),
                "ok",
                host=host,
            )
            store.record_scan_cost(
                ScanCost(scan_id, finished - 20_000, finished, 12.5, 80_000_000, 0, 0)
            )
        store.set_triage(
            f"{target}-0001".ljust(32, "0")[:32], "false_positive", "bench", "test code", None
        )
        verdict = GateVerdict.BLOCK if t % 3 == 0 else GateVerdict.PASS
        store.add_gate_run(GateResult(f"{target}-gate", target, now - 9000, now - 8000, verdict))
        if t % 10 == 0:
            alert = Alert(
                fingerprint=f"{t:016x}",
                rule="security_violations_high",
                state=AlertState.FIRING,
                severity=Severity.HIGH,
                kind=MetricKind.SECURITY,
                labels={"target": target, "host": host},
                fired_at_ms=now - 60_000,
                updated_ms=now - 60_000,
            )
            store.record_alert_transition(
                AlertChanged(alert=alert, previous_state=AlertState.PENDING, ts_ms=now - 60_000)
            )
    samples = [
        Sample(name, {"host": f"host-{h:02d}", **extra}, now - 60_000 + i * 1000, 42.0)
        for h in range(HOSTS)
        for i in range(60)
        for name, extra in (
            ("cpu_percent", {}),
            ("cpu_percent", {"cpu": "0"}),
            ("memory_percent", {}),
            ("load_1m", {}),
        )
    ]
    store.write_samples(samples)


def _median_ms(client: httpx.Client, path: str, runs: int) -> tuple[float, int]:
    """Median wall time of ``runs`` GETs of ``path`` (after one warm-up), and the body size."""
    client.get(path).raise_for_status()
    times: list[float] = []
    size = 0
    for _ in range(runs):
        began = time.perf_counter()
        response = client.get(path)
        response.json()
        times.append((time.perf_counter() - began) * 1000)
        size = len(response.content)
    return statistics.median(times), size


def run(quick: bool) -> list[Figure]:
    """The fleet lists of 200 targets and 20 hosts beside the overview."""
    scans = 1 if quick else 3
    runs = 5 if quick else 20
    with tempfile.TemporaryDirectory(prefix="secperf-bench-fleet-") as name:
        store = Store.open(Path(name) / "fleet.db")
        try:
            _fill(store, scans)
            with _serve(store) as url, httpx.Client(base_url=url, timeout=60) as client:
                targets_ms, targets_bytes = _median_ms(
                    client, f"/api/v1/fleet/targets?limit={TARGETS}", runs
                )
                hosts_ms, _ = _median_ms(client, "/api/v1/fleet/hosts", runs)
                overview_ms, _ = _median_ms(client, "/api/v1/overview", runs)
        finally:
            store.close()
    setting = (
        f"{TARGETS} targets x {scans} scans x {FINDINGS_PER_SCAN} findings, {HOSTS} hosts; "
        f"median of {runs}"
    )
    return [
        Figure(
            AREA,
            f"fleet targets: {TARGETS} on one page over HTTP",
            targets_ms,
            "ms",
            f"<= {TARGET_S * 1000:.0f} ms",
            targets_ms <= TARGET_S * 1000,
            "the overview (one target)",
            overview_ms,
            f"{setting}; {targets_bytes / 1024:.0f} kB of JSON",
        ),
        Figure(
            AREA,
            f"fleet hosts: {HOSTS} over HTTP",
            hosts_ms,
            "ms",
            "",
            None,
            "the overview (one target)",
            overview_ms,
            setting,
        ),
    ]
