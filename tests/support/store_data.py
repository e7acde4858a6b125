"""A store filled with a bit of everything, and the API's read endpoints.

Shared by the connection tests (tests/store) and the load test (tests/web).
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy.pool import QueuePool

from secperf.events import AlertChanged
from secperf.model import (
    Alert,
    AlertState,
    BenchmarkResult,
    Finding,
    GateResult,
    GateVerdict,
    MetricKind,
    Sample,
    SecurityMetrics,
    Severity,
)
from secperf.store import Store
from support.factories import make_finding, make_scan_metrics

HOUR = 3_600_000


#: Path parameters of the read endpoints, as ``fill_store`` creates them (the fingerprint is
#: its firing alert's, so per-alert reads such as history and context do real work).
PATH_VALUES = {"scan_id": "scan-2", "fingerprint": "a" * 16}


#: Query parameters a read endpoint needs to do real work.
QUERY_VALUES = {"/api/v1/metrics/query": {"name": "cpu_percent", "points": "100"}}


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def one_connection_pool(store: Store, timeout_s: float = 1.0) -> None:
    """Give ``store`` a pool of exactly one connection that times out after ``timeout_s``.

    The new pool keeps the engine's connect listeners (SQLite pragmas, the
    PostgreSQL search path), as ``Pool.recreate`` does.
    """
    old = store.engine.pool
    assert isinstance(old, QueuePool)
    store.engine.pool = QueuePool(
        old._creator,
        pool_size=1,
        max_overflow=0,
        timeout=timeout_s,
        pre_ping=old._pre_ping,
        _dispatch=old.dispatch,
        dialect=old._dialect,
    )
    old.dispose()


def _finding(n: int, severity: Severity) -> Finding:
    return make_finding(
        f"B{600 + n}",
        f"src/m{n}.py",
        severity,
        fingerprint=f"{n:032x}" if n else "f" * 32,
        message=f"issue {n}",
        line=n + 1,
        snippet="subprocess.call(cmd, shell=True)",
    )


def _metrics(scan_id: str, finished: int, found: list[Finding]) -> SecurityMetrics:
    return make_scan_metrics(scan_id, finished, found)


def _alert(fp: str, state: AlertState, updated: int) -> Alert:
    return Alert(
        fingerprint=fp,
        rule="cpu_high",
        state=state,
        severity=Severity.HIGH,
        kind=MetricKind.PERFORMANCE,
        labels={"host": "h1"},
        value=93.0,
        active_since_ms=updated - 60_000,
        fired_at_ms=updated if state is AlertState.FIRING else None,
        updated_ms=updated,
    )


def fill_store(store: Store, *, hosts: int = 2, minutes: int = 60, scans: int = 3) -> int:
    """Performance series of a few hosts, scans with findings, alerts, silences, gate runs.

    Returns the number of samples written.
    """
    now = now_ms()
    start = now - minutes * 60_000
    samples: list[Sample] = []
    for h in range(hosts):
        host = f"h{h + 1}"
        for i in range(minutes * 6):  # one sample per 10 s
            ts = start + i * 10_000
            samples.append(Sample("cpu_percent", {"host": host}, ts, float(i % 100)))
            samples.append(Sample("memory_percent", {"host": host}, ts, 40.0 + i % 20))
            samples.append(Sample("load_1m", {"host": host}, ts, (i % 30) / 10))
            for core in range(2):
                samples.append(
                    Sample("cpu_percent", {"host": host, "cpu": str(core)}, ts, float(i % 90))
                )
    for i in range(0, len(samples), 20_000):
        store.write_samples(samples[i : i + 20_000])
    for n in range(1, scans + 1):
        found = [
            _finding(k, Severity.HIGH if k % 3 == 0 else Severity.MEDIUM) for k in range(n * 5)
        ]
        started = now - (scans - n + 1) * 600_000
        store.record_scan_started(f"scan-{n}", "repo", started, ["bandit"])
        store.add_findings(f"scan-{n}", found, {found[-1].fingerprint})
        store.record_scan_completed(_metrics(f"scan-{n}", started + 2_000, found), "ok")
    firing = _alert("a" * 16, AlertState.FIRING, now - 1000)
    store.record_alert_transition(
        AlertChanged(alert=firing, previous_state=AlertState.PENDING, ts_ms=now - 1000)
    )
    store.upsert_alert(_alert("b" * 16, AlertState.PENDING, now - 500))
    store.add_silence([{"name": "host", "value": "h2", "op": "="}], now, now + HOUR, "ops", "x")
    store.add_gate_run(GateResult("run-1", "repo", now - 5000, now - 4000, GateVerdict.PASS))
    store.add_benchmark_results(
        [BenchmarkResult("test_parse", "pytest-benchmark", now - 9000, "m1", stats={"median": 1})]
    )
    store.save_baseline("default", {"f" * 32}, now)
    return len(samples)


def read_endpoints(spec: dict[str, Any]) -> list[str]:
    """Every GET path of the API but the stream (from its OpenAPI spec), parameters filled in."""
    paths: list[str] = []
    for template, operations in spec["paths"].items():
        if "get" not in operations or not template.startswith("/api/"):
            continue
        if template.endswith("/stream"):
            continue
        path = template
        for name, value in PATH_VALUES.items():
            path = path.replace("{" + name + "}", value)
        assert "{" not in path, f"no value for a parameter of {template}"
        paths.append(path)
    return sorted(paths)
