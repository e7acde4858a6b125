"""StoreWriter on the real in-process bus: every event kind lands in the store."""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from secperf.bus.memory import AsyncEventBus
from secperf.events import (
    AlertChanged,
    BaselineUpdated,
    GateEvaluated,
    MetricsRecorded,
    ScanCompleted,
    ScanStarted,
    ViolationDetected,
    now_ms,
)
from secperf.model import (
    Alert,
    AlertState,
    Finding,
    GateResult,
    GateVerdict,
    MetricKind,
    Sample,
    SecurityMetrics,
    Severity,
)
from secperf.store import Store, StoreWriter
from secperf.store import engine as engine_module
from secperf.web.exposition import build_registry, render


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = Store.open(store_url)
    yield s
    s.close()


async def wait_for(condition: Callable[[], bool], limit_s: float = 10.0) -> None:
    """Poll until ``condition`` holds (bounded, so a bug fails instead of hanging)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)


def samples(n: int, start: int, host: str = "a") -> tuple[Sample, ...]:
    return tuple(Sample("cpu_percent", {"host": host}, start + i, float(i % 100)) for i in range(n))


def test_every_event_kind_is_written(store: Store) -> None:
    t = now_ms() - 60_000
    finding = Finding("fp1", "B602", "bandit", Severity.HIGH, "shell", "src/a.py", line=4)
    # The stored outcome is recounted from the stored finding (new): say so up front.
    metrics = SecurityMetrics(
        "s1", "/repo", t, t + 900, 900.0, 1, 0.0, {"high": 1}, 100.0, new_findings=1
    )
    alert = Alert("al1", "HighCPU", AlertState.FIRING, Severity.HIGH, MetricKind.PERFORMANCE)
    gate = GateResult("g1", "/repo", t, t + 5, GateVerdict.BLOCK)
    bad = Sample("cpu_percent", {"host": "a"}, t, float("nan"))

    async def scenario() -> StoreWriter:
        bus = AsyncEventBus()
        writer = StoreWriter(store, flush_interval_s=30.0)
        await writer.attach(bus)
        await bus.publish(ScanStarted(scan_id="s1", target="/repo", scanners=("bandit",)))
        await bus.publish(ViolationDetected(scan_id="s1", finding=finding, is_new=True))
        await bus.publish(ScanCompleted(metrics=metrics))
        await bus.publish(BaselineUpdated(baseline="main", fingerprints=1, added=1))
        await bus.publish(AlertChanged(alert=alert, previous_state=AlertState.PENDING))
        await bus.publish(GateEvaluated(result=gate))
        await bus.publish(MetricsRecorded(samples=(*samples(500, t), bad)))
        await writer.close()
        await bus.close()
        return writer

    writer = asyncio.run(scenario())
    stats = writer.stats()
    assert (stats.samples_written, stats.samples_rejected, stats.flushes) == (500, 1, 1)
    # BaselineUpdated too: its record is its entry in the event log.
    assert (stats.events_written, stats.events_failed, stats.buffered) == (6, 0, 0)
    scan = store.scan("s1")
    assert scan is not None and scan.status == "ok" and scan.metrics == metrics
    stored = store.findings(scan_id="s1")
    assert [(f.finding, f.is_new) for f in stored] == [(finding, True)]
    assert store.alerts() == [alert]
    assert [h.to_state for h in store.alert_history("al1")] == [AlertState.FIRING]
    assert store.gate_runs(5) == [gate]
    assert store.query("cpu_percent", None, t, t + 1000)[0].timestamps.size == 500


def test_flushes_by_size_and_by_time(store: Store) -> None:
    t = now_ms() - 60_000

    async def scenario() -> None:
        bus = AsyncEventBus()
        by_size = StoreWriter(store, flush_interval_s=3600.0, max_batch=100)
        await by_size.attach(bus)
        for k in range(3):
            await bus.publish(MetricsRecorded(samples=samples(100, t + k * 100)))
        await wait_for(lambda: by_size.samples_written == 300)
        assert by_size.flushes >= 1
        await by_size.close()

        by_time = StoreWriter(store, flush_interval_s=0.05, max_batch=10_000)
        await by_time.attach(bus)
        await bus.publish(MetricsRecorded(samples=samples(10, t, host="b")))
        await wait_for(lambda: by_time.samples_written == 10)
        await by_time.close()
        await bus.close()

    asyncio.run(scenario())
    assert store.query("cpu_percent", {"host": "a"}, t, t + 1000)[0].timestamps.size == 300
    assert store.query("cpu_percent", {"host": "b"}, t, t + 1000)[0].timestamps.size == 10


def rename_table(store: Store, old: str, new: str) -> None:
    with store.engine.begin() as conn:
        conn.exec_driver_sql(f"ALTER TABLE {old} RENAME TO {new}")
    store.engine.dispose()  # no pooled connection keeps a plan of the old name


def test_a_failing_write_is_reported_kept_and_written_when_the_store_recovers(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    t = now_ms() - 60_000

    async def scenario() -> StoreWriter:
        bus = AsyncEventBus()
        writer = StoreWriter(store, flush_interval_s=3600.0, retry_delay_s=0.01)
        await writer.attach(bus)
        rename_table(store, "chunks", "chunks_away")
        await bus.publish(MetricsRecorded(samples=samples(20, t)))
        await wait_for(lambda: writer.stats().buffered == 20)
        await writer.flush()
        stats = writer.stats()
        # Every attempt failed: reported, and the batch is still there.
        assert (stats.write_retries, stats.write_failures, stats.buffered) == (2, 1, 20)
        assert stats.samples_failed == 0
        rename_table(store, "chunks_away", "chunks")
        await bus.publish(MetricsRecorded(samples=samples(5, t + 1000)))
        await bus.publish(ScanStarted(scan_id="s9", target="/repo"))
        await writer.close()
        await bus.close()
        return writer

    with caplog.at_level(logging.WARNING, logger="secperf.store.writer"):
        writer = asyncio.run(scenario())
    assert writer.samples_failed == 0
    assert writer.samples_written == 25
    assert writer.events_written == 1
    assert store.scan("s9") is not None
    assert store.query("cpu_percent", {"host": "a"}, t, t + 2000)[0].timestamps.size == 25
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    assert "writing 20 samples failed after 3 attempts" in errors[0]
    assert "20 samples kept for the next flush" in errors[0]


def test_a_write_locked_out_by_another_process_is_retried_not_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's "writing 89 samples failed ... database is locked" (secperf demo)."""
    monkeypatch.setattr(engine_module, "BUSY_TIMEOUT_MS", 50)  # give up waiting fast
    db = tmp_path / "secperf.db"
    store = Store.open(db)
    t = now_ms() - 60_000
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock

    async def scenario() -> StoreWriter:
        bus = AsyncEventBus()
        writer = StoreWriter(store, flush_interval_s=3600.0, retry_delay_s=0.01)
        await writer.attach(bus)
        await bus.publish(MetricsRecorded(samples=samples(89, t)))
        await bus.publish(ScanStarted(scan_id="locked-out", target="/repo"))
        await wait_for(lambda: writer.stats().kept_events == 1)
        await writer.flush()
        stats = writer.stats()
        assert (stats.buffered, stats.kept_events, stats.samples_failed) == (89, 1, 0)
        assert stats.write_failures >= 2 and stats.write_retries >= 4
        other.execute("COMMIT")  # the other process is done
        await writer.flush()
        assert writer.stats().buffered == 0 and writer.stats().kept_events == 0
        await writer.close()
        await bus.close()
        return writer

    try:
        writer = asyncio.run(scenario())
    finally:
        other.close()
    assert (writer.samples_written, writer.samples_failed, writer.events_failed) == (89, 0, 0)
    assert store.scan("locked-out") is not None
    # /metrics shows that the store failed, and that nothing was lost.
    text = render(build_registry(store, AsyncEventBus(), writer)).decode()
    failures = re.search(r"^secperf_writer_write_failures_total (\S+)$", text, re.M)
    assert failures is not None and float(failures.group(1)) >= 2
    assert 'secperf_writer_lost_total{kind="samples"} 0.0' in text
    assert store.query("cpu_percent", {"host": "a"}, t, t + 1000)[0].timestamps.size == 89
    store.close()


def test_bad_settings_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="flush_interval_s"):
        StoreWriter(store, flush_interval_s=0)
    with pytest.raises(ValueError, match="max_batch"):
        StoreWriter(store, max_batch=0)
