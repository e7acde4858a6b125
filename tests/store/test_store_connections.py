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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event

from secperf.alerts.engine import AlertEngine
from secperf.alerts.rule_loading import rule_from_dict
from secperf.bus import AsyncEventBus
from secperf.model import (
    Sample,
)
from secperf.store import Store
from secperf.web import create_app
from secperf.web.providers import analysis_providers
from support.store_data import (
    HOUR,
    QUERY_VALUES,
    fill_store,
    now_ms,
    one_connection_pool,
    read_endpoints,
)


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
    now = now_ms()
    points = store.query("cpu_percent", {"host": "h1"}, now - HOUR, now, max_points=10)
    assert len(points) == 3 and all(p.values.size for p in points)
    assert store.query("no_such_metric", None, 0, now) == []


def test_store_methods_never_nest_checkouts(store: Store) -> None:
    now = now_ms()
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
