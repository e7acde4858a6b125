"""No code path holds a pooled connection while it asks the pool for another.

A thread that holds one connection and waits for a second deadlocks a busy
server: when every thread holds one, none gets its second until the pool's
checkout timeout. Two checks, on SQLite and PostgreSQL:

* a store whose pool has exactly one connection (``pool_size=1``,
  ``max_overflow=0``, a 1 s checkout timeout): a nested checkout times out;
* ``NestingGuard``: pool events record every thread that checks out a
  connection while it already holds one, run over the store's reads and
  writes and over every read endpoint of the API.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event
from sqlalchemy.pool import QueuePool

from secperf.alerts.engine import AlertEngine
from secperf.alerts.rules import rule_from_dict
from secperf.bus import AsyncEventBus
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
from secperf.web import create_app
from secperf.web.providers import analysis_providers
from support.factories import make_finding

HOUR = 3_600_000
#: Path parameters of the read endpoints, as ``fill_store`` creates them.
PATH_VALUES = {"scan_id": "scan-2", "fingerprint": "f" * 32}
#: Query parameters a read endpoint needs to do real work.
QUERY_VALUES = {"/api/v1/metrics/query": {"name": "cpu_percent", "points": "100"}}


def _now() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class NestingGuard:
    """Records every checkout made by a thread that already holds a connection."""

    held: dict[int, int] = field(default_factory=dict)  # thread id -> connections held
    owner: dict[int, int] = field(default_factory=dict)  # id(connection record) -> thread
    nested: list[str] = field(default_factory=list)
    checkouts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_checkout(self, _dbapi: Any, record: Any, _proxy: Any) -> None:
        thread = threading.get_ident()
        with self.lock:
            self.checkouts += 1
            count = self.held.get(thread, 0)
            if count:
                self.nested.append(f"thread {threading.current_thread().name} held {count}")
            self.held[thread] = count + 1
            self.owner[id(record)] = thread

    def on_checkin(self, _dbapi: Any, record: Any) -> None:
        with self.lock:
            thread = self.owner.pop(id(record), None)
            if thread is not None:
                self.held[thread] -= 1


@contextmanager
def nesting_guard(engine: Engine) -> Iterator[NestingGuard]:
    """Watch ``engine``'s pool for nested checkouts while the block runs."""
    guard = NestingGuard()
    event.listen(engine, "checkout", guard.on_checkout)
    event.listen(engine, "checkin", guard.on_checkin)
    try:
        yield guard
    finally:
        event.remove(engine, "checkout", guard.on_checkout)
        event.remove(engine, "checkin", guard.on_checkin)


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
    counts: dict[str, int] = {}
    for f in found:
        counts[f.severity.value] = counts.get(f.severity.value, 0) + 1
    return SecurityMetrics(
        scan_id=scan_id,
        target="repo",
        started_ms=finished - 2_000,
        finished_ms=finished,
        scan_duration_ms=2_000.0,
        violations_found=len(found),
        false_positive_rate=0.0,
        vulnerability_severity_counts=counts,
        scan_coverage_percent=95.0,
        eligible_files=20,
        files_scanned=19,
        new_findings=1,
    )


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
    now = _now()
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


@pytest.fixture()
def store(store_url: str) -> Iterator[Store]:
    with Store.open(store_url) as opened:
        fill_store(opened)
        yield opened


def test_reads_need_one_connection_at_a_time(store: Store) -> None:
    one_connection_pool(store)
    # latest() used to hold a connection and ask for another inside series().
    latest = store.latest("cpu_percent")
    assert sorted((s.labels["host"], s.labels.get("cpu", "-")) for s in latest) == [
        ("h1", "-"),
        ("h1", "0"),
        ("h1", "1"),
        ("h2", "-"),
        ("h2", "0"),
        ("h2", "1"),
    ]
    assert [s.labels for s in store.latest("memory_percent", {"host": "h2"})] == [{"host": "h2"}]
    assert store.latest("no_such_metric") == []
    now = _now()
    points = store.query("cpu_percent", {"host": "h1"}, now - HOUR, now, max_points=10)
    assert len(points) == 3 and all(p.values.size for p in points)
    assert store.query("no_such_metric", None, 0, now) == []


def test_store_methods_never_nest_checkouts(store: Store) -> None:
    now = _now()
    with nesting_guard(store.engine) as guard:
        store.series()
        store.list_metric_names()
        store.latest("cpu_percent")
        store.latest("cpu_percent", {"host": "h1"})
        store.query("cpu_percent", None, now - HOUR, now, step_ms=60_000)
        store.sample_count()
        store.write_samples([Sample("cpu_percent", {"host": "h9"}, now, 1.0)])
        store.scans()
        store.scan("scan-1")
        store.findings(scan_id="scan-3")
        store.latest_scan_findings("repo")
        store.triage_all()
        store.baseline_names()
        store.baseline("default")
        store.alerts()
        store.alert_history("a" * 16)
        store.silences(now)
        store.gate_runs()
        store.benchmark_results()
        store.benchmark_names()
        store.latest_correlation_run()
        store.compact()
        store.apply_retention(now, 7 * 24 * HOUR)
    assert guard.checkouts > 20
    assert guard.nested == []


def test_every_read_endpoint_works_on_a_one_connection_pool(store: Store) -> None:
    # The providers and an alert engine as ``secperf serve`` wires them: their
    # store reads are on the request path too.
    rule = rule_from_dict(
        {"name": "cpu_high", "metric": "cpu_percent", "aggregation": "avg", "threshold": 90.0}
    )
    engine = AlertEngine(store, AsyncEventBus(), [rule])
    app = create_app(store, AsyncEventBus(), alert_engine=engine, **analysis_providers(store))
    paths = read_endpoints(app.openapi())
    assert "/api/v1/overview" in paths and len(paths) >= 15
    one_connection_pool(store)
    with TestClient(app) as client, nesting_guard(store.engine) as guard:
        for path in paths:
            response = client.get(path, params=QUERY_VALUES.get(path))
            assert response.status_code < 500, (path, response.status_code, response.text)
        assert client.get("/metrics").status_code == 200
    assert guard.nested == []
    assert guard.checkouts >= len(paths)
