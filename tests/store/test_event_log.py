"""The event log: appended with the records, followed onto another process's bus.

Two ``Store`` objects on one database stand for two processes (each with its
own connections, as a second process has); the follower runs on a real
in-process bus over real SQLite files and the real PostgreSQL.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select, update

from secperf.alerts import operator
from secperf.bus.memory import AsyncEventBus
from secperf.events import (
    AlertAcknowledged,
    AlertChanged,
    BaselineUpdated,
    BenchmarksRecorded,
    Event,
    FindingTriaged,
    MetricsRecorded,
    ScanCompleted,
    ScanStarted,
    SilenceAdded,
    SilenceExpired,
    ViolationDetected,
    decode_event,
    now_ms,
)
from secperf.model import Alert, AlertState, BenchmarkResult, MetricKind, Sample, Severity
from secperf.store import Store, StoreWriter
from secperf.store.event_log import (
    ENCODING_ZLIB,
    PRUNE_BATCH,
    EventLogRetention,
    LogEntry,
    payload_json,
)
from secperf.store.follower import EventLogFollower, FollowerStats
from secperf.store.record_base import PRUNE_INTERVAL_MS
from secperf.store.schema import alert_transitions, event_log, findings, scans, triage_current
from secperf.store.writer import MAX_LOGGED_SAMPLES
from secperf.web.exposition import build_registry, render
from support.factories import make_finding, make_scan_metrics
from support.waiting import wait_for


def entries(store: Store) -> list[LogEntry]:
    return store.read_event_log(0, 100_000)


def events_of(store: Store) -> list[Event]:
    return [decode_event(payload_json(e)) for e in entries(store)]


def count(store: Store, table: Any) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


class Server:
    """What ``serve`` runs: a bus, its store writer and the follower, plus a listener."""

    def __init__(self, store: Store, name: str = "test-server", **options: Any) -> None:
        self.store = store
        self.bus = AsyncEventBus()
        self.writer = StoreWriter(store, flush_interval_s=0.05)
        self.follower = EventLogFollower(store, self.bus, name=name, writer=self.writer, **options)
        self.heard: list[Event] = []

    async def __aenter__(self) -> Server:
        await self.bus.start()

        async def listen(event: Event) -> None:
            self.heard.append(event)

        await self.bus.subscribe(">", listen, name="listener")
        await self.writer.attach(self.bus)
        await self.follower.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.follower.stop()
        await self.bus.close(drain=True)
        await self.writer.close()

    def heard_ids(self) -> list[str]:
        return [e.id for e in self.heard]


ALERT = Alert(
    "al1",
    "HighCPU",
    AlertState.FIRING,
    Severity.HIGH,
    MetricKind.PERFORMANCE,
    labels={"alertname": "HighCPU", "host": "a"},
)


# --------------------------------------------------------------------------- appending


def test_people_s_actions_are_logged_with_their_records(stores: tuple[Store, Store]) -> None:
    _, store = stores
    store.set_triage("fp1", "false_positive", "ana", "test fixture", now_ms=5_000)
    store.upsert_alert(ALERT)
    acked = operator.acknowledge(store, ALERT, "bo", "on it", now_ms())
    silence = operator.add_silence(
        store,
        [{"name": "alertname", "value": "HighCPU", "op": "="}],
        None,
        now_ms() + 60_000,
        "cy",
        "maintenance",
        now_ms(),
    )
    assert operator.expire_silence(store, silence.id, now_ms())
    assert not operator.expire_silence(store, silence.id, now_ms())  # nothing changed: no event
    logged = events_of(store)
    assert [type(e) for e in logged] == [
        FindingTriaged,
        AlertAcknowledged,
        SilenceAdded,
        SilenceExpired,
    ]
    triaged, ack, added, expired = logged
    assert isinstance(triaged, FindingTriaged)
    assert (triaged.fingerprint, triaged.state, triaged.author, triaged.reason) == (
        "fp1",
        "false_positive",
        "ana",
        "test fixture",
    )
    assert triaged.ts_ms == 5_000
    assert isinstance(ack, AlertAcknowledged) and ack.alert == acked and ack.author == "bo"
    assert isinstance(added, SilenceAdded) and added.silence_id == silence.id
    assert added.matchers == ({"name": "alertname", "value": "HighCPU", "op": "="},)
    assert isinstance(expired, SilenceExpired) and expired.silence_id == silence.id
    # Written straight to the store, these were on no bus: no origin.
    assert {e.origin for e in entries(store)} == {None}


def test_an_outbox_is_appended_in_the_transaction_of_its_records(
    stores: tuple[Store, Store],
) -> None:
    _, store = stores
    event = BaselineUpdated(baseline="main", fingerprints=1)
    with (
        pytest.raises(RuntimeError, match="disk on fire"),
        store.outbox([event], origin="o1"),
        store._write_tx() as conn,
    ):
        conn.execute(
            triage_current.insert().values(fingerprint="fp", state="open", author="a", updated_ms=1)
        )
        raise RuntimeError("disk on fire")
    # Rolled back together: neither the record nor its event.
    assert count(store, triage_current) == 0 and entries(store) == []
    with store.outbox([event], origin="o1"):
        store.set_triage("fp", "open", "a")
    [first, second] = entries(store)
    assert first.event_id == event.id and first.origin == "o1"  # the queued event, once
    assert second.topic == FindingTriaged.topic and second.origin is None
    # The same event again (a write delivered twice) is not logged twice.
    assert store.append_events([event], origin="o1") == 0


def test_large_entries_are_compressed_and_read_back_exactly(stores: tuple[Store, Store]) -> None:
    _, store = stores
    batch = MetricsRecorded(
        samples=tuple(Sample("cpu_percent", {"host": "a"}, 1_000 + i, i / 7) for i in range(2_000))
    )
    store.append_events([batch])
    [entry] = entries(store)
    assert entry.encoding == ENCODING_ZLIB
    assert len(entry.payload) < len(payload_json(entry)) / 2
    assert decode_event(payload_json(entry)) == batch


def test_the_writer_logs_what_it_stores_with_its_origin(stores: tuple[Store, Store]) -> None:
    _, store = stores
    metrics = make_scan_metrics("s1", now_ms() - 1_000, [])
    published: list[Event] = [
        ScanStarted(scan_id="s1", target=metrics.target),
        ViolationDetected(scan_id="s1", finding=make_finding(fingerprint="f1")),
        ViolationDetected(scan_id="s1", finding=make_finding(fingerprint="f2")),
        ScanCompleted(metrics=metrics),
        AlertChanged(alert=ALERT, previous_state=AlertState.PENDING),
        BaselineUpdated(baseline="main", fingerprints=2, added=2),
    ]
    t = now_ms() - 10_000
    samples = tuple(Sample("cpu_percent", {"host": "a"}, t + i, 1.0) for i in range(300))

    async def scenario() -> str:
        bus = AsyncEventBus()
        writer = StoreWriter(store, flush_interval_s=30.0)
        await writer.attach(bus)
        for event in published:
            await bus.publish(event)
        await bus.publish(MetricsRecorded(samples=samples[:100]))
        await bus.publish(MetricsRecorded(samples=samples[100:]))
        await bus.close(drain=True)
        await writer.close()
        return writer.origin

    origin = asyncio.run(scenario())
    logged = entries(store)
    assert {e.origin for e in logged} == {origin}
    events = [decode_event(payload_json(e)) for e in logged]
    assert {e.id for e in events if not isinstance(e, MetricsRecorded)} == {e.id for e in published}
    # Both batches in one entry: the writer flushed them together.
    [metric_entry] = [e for e in events if isinstance(e, MetricsRecorded)]
    assert metric_entry.samples == samples
    # In order: the scan's start before its findings, the findings before its end.
    order = [e.id for e in events]
    assert order.index(published[0].id) < order.index(published[1].id)
    assert order.index(published[2].id) < order.index(published[3].id)


# --------------------------------------------------------------------------- following


def test_a_server_hears_what_another_process_stores_once_and_in_order(
    stores: tuple[Store, Store],
) -> None:
    server_store, other = stores
    metrics = make_scan_metrics("s9", now_ms() - 1_000, [make_finding(fingerprint="g1")])
    scan_events: list[Event] = [
        ScanStarted(scan_id="s9", target=metrics.target),
        ViolationDetected(scan_id="s9", finding=make_finding(fingerprint="g1")),
        ScanCompleted(metrics=metrics),
    ]

    async def scenario() -> None:
        async with Server(server_store) as server:
            # Another process: its own bus and writer over the same database (a `secperf scan`).
            bus = AsyncEventBus()
            writer = StoreWriter(other, flush_interval_s=30.0)
            await writer.attach(bus)
            for event in scan_events:
                await bus.publish(event)
            await bus.close(drain=True)
            await writer.close()
            other.set_triage("g1", "accepted_risk", "ana", "vendored")
            await wait_for(lambda: len(server.heard) >= 4)
            # The server's own events go to the log but never come back to its bus.
            own = AlertChanged(alert=ALERT, previous_state=AlertState.PENDING)
            await server.bus.publish(own)
            other.set_triage("g1", "open", "ana")
            await wait_for(lambda: len(server.heard) >= 6)
            await wait_for(lambda: server.follower.stats().own >= 1)
            heard = server.heard_ids()
            assert heard[:3] == [e.id for e in scan_events]
            assert isinstance(server.heard[3], FindingTriaged)
            assert heard[4] == own.id
            assert isinstance(server.heard[5], FindingTriaged)
            assert len(set(heard)) == len(heard) == 6  # each once
            stats = server.follower.stats()
            assert (stats.followed, stats.own, stats.undecodable) == (5, 1, 0)
            assert server.writer.events_replayed == 5
            # /metrics tells how the follower does.
            text = render(
                build_registry(
                    server_store,
                    server.bus,
                    server.writer,
                    process_metrics=False,
                    follower=server.follower.stats,
                )
            ).decode()
            assert "secperf_event_log_followed_total 5.0" in text
            assert 'secperf_event_log_skipped_total{reason="own"} 1.0' in text
            assert "secperf_event_log_lag 0.0" in text

    asyncio.run(scenario())
    # Republished events were not stored again: one scan, one finding, one transition,
    # and one log entry per event.
    assert count(server_store, scans) == 1
    assert count(server_store, findings) == 1
    assert count(server_store, alert_transitions) == 1
    logged = [e.event_id for e in entries(server_store)]
    assert len(logged) == len(set(logged)) == 6


def test_a_restarted_server_resumes_from_its_cursor_without_duplicates(
    stores: tuple[Store, Store],
) -> None:
    server_store, other = stores
    heard: list[str] = []

    async def run_server(until: Callable[[Server], bool]) -> None:
        async with Server(server_store) as server:
            await wait_for(lambda: until(server))
            heard.extend(server.heard_ids())

    other.set_triage("before", "open", "ana")  # before the server ever ran: not replayed
    asyncio.run(run_server(lambda s: s.follower.stats().position > 0))
    assert heard == []
    first = other.set_triage("a", "open", "ana")
    assert first.fingerprint == "a"

    asyncio.run(run_server(lambda s: len(s.heard) >= 1))
    # While the server is down, others go on writing.
    for name in ("b", "c", "d"):
        other.set_triage(name, "open", "ana")
    asyncio.run(run_server(lambda s: len(s.heard) >= 3))
    names = [
        e.fingerprint
        for e in events_of(server_store)
        if isinstance(e, FindingTriaged) and e.id in heard
    ]
    assert names == ["a", "b", "c", "d"]
    assert len(heard) == len(set(heard)) == 4


def test_undecodable_entries_are_skipped_and_counted(
    stores: tuple[Store, Store], caplog: pytest.LogCaptureFixture
) -> None:
    server_store, other = stores
    caplog.set_level(logging.WARNING, logger="secperf.store.follower")
    future = b'{"type":"FromTheFuture","topic":"x.y","event":{}}'

    async def scenario() -> tuple[FollowerStats, list[str]]:
        async with Server(server_store, name="damaged") as server:
            await server.follower.stop()  # paused while entries are damaged
            for name in ("a", "b", "c", "d"):
                other.set_triage(name, "open", "ana")
            with other.engine.begin() as conn:
                a, b, c, _ = [int(s) for s in conn.execute(select(event_log.c.seq)).scalars()]
                conn.execute(
                    update(event_log).where(event_log.c.seq.in_([a, b])).values(payload=future)
                )
                conn.execute(
                    update(event_log)
                    .where(event_log.c.seq == c)
                    .values(encoding=ENCODING_ZLIB, payload=b"not zlib at all")
                )
            resumed = EventLogFollower(
                server_store, server.bus, name="damaged", writer=server.writer
            )
            server.follower = resumed
            await resumed.start()
            await wait_for(lambda: any(isinstance(e, FindingTriaged) for e in server.heard))
            return resumed.stats(), [
                e.fingerprint for e in server.heard if isinstance(e, FindingTriaged)
            ]

    stats, heard = asyncio.run(scenario())
    assert heard == ["d"]
    assert stats.undecodable == 3
    reports = [r.getMessage() for r in caplog.records if "cannot be read" in r.getMessage()]
    assert len(reports) == 2  # one per kind of problem, not one per entry
    assert any("FromTheFuture" in r for r in reports)
    assert any("decompress" in r for r in reports)


# --------------------------------------------------------------------------- retention


def test_retention_prunes_metric_batches_sooner_and_in_small_transactions(
    stores: tuple[Store, Store],
) -> None:
    _, store = stores
    store.configure_event_log(EventLogRetention(all_ms=3_600_000, metrics_ms=60_000))
    many = [BaselineUpdated(baseline="b", fingerprints=i) for i in range(PRUNE_BATCH + 20)]
    store.append_events(many)
    store.append_events([MetricsRecorded(samples=(Sample("m", {}, 1, 1.0),))])
    store.set_triage("fp", "open", "ana")
    total = len(entries(store))
    now = now_ms()
    assert store.prune_event_log(now + 30_000) == 0
    # Past the metric retention: only the metric batch goes.
    assert store.prune_event_log(now + 120_000) == 1
    assert len(entries(store)) == total - 1
    # Past the whole retention: everything, over several small transactions.
    assert store.prune_event_log(now + 7_200_000) == total - 1
    assert entries(store) == []
    # Numbers are never given twice, even after the log was emptied.
    _, _, last = store.event_log_bounds()
    store.set_triage("fp", "open", "ana")
    assert entries(store)[0].seq > last


def test_writers_prune_at_most_once_a_minute_across_processes(
    stores: tuple[Store, Store],
) -> None:
    """A scan appends thousands of entries; the writes of the next one must not prune again."""
    first, second = stores  # two stores on one database: two processes
    for store in stores:
        store.configure_event_log(EventLogRetention(all_ms=1_000, metrics_ms=1_000))
    first.set_triage("a", "open", "ana")
    now = now_ms()
    assert first.prune_event_log_if_due(now + 5_000) == 1
    second.set_triage("b", "open", "ana")
    # Another process within the minute: not due, the old entry stays.
    assert second.prune_event_log_if_due(now + 5_000 + PRUNE_INTERVAL_MS - 1) == 0
    assert len(entries(second)) == 1
    # A minute after the last prune, any writer prunes again.
    assert second.prune_event_log_if_due(now + 5_000 + PRUNE_INTERVAL_MS) == 1
    assert entries(second) == []
    # An explicit prune (the follower's) is never held back.
    second.set_triage("c", "open", "ana")
    assert second.prune_event_log(now + 5_000 + PRUNE_INTERVAL_MS + 1) == 1


def test_a_cursor_older_than_the_log_starts_at_the_oldest_and_says_so(
    stores: tuple[Store, Store], caplog: pytest.LogCaptureFixture
) -> None:
    server_store, other = stores
    caplog.set_level(logging.WARNING, logger="secperf.store.follower")

    async def first_run() -> None:
        async with Server(server_store, name="late") as server:
            await wait_for(lambda: server.follower.stats().position >= 0)

    asyncio.run(first_run())
    for name in ("a", "b", "c"):
        other.set_triage(name, "open", "ana")
    other.configure_event_log(EventLogRetention(all_ms=1_000, metrics_ms=1_000))
    with other.engine.begin() as conn:  # the first two are old
        seqs = [int(s) for s in conn.execute(select(event_log.c.seq)).scalars()]
        conn.execute(update(event_log).where(event_log.c.seq.in_(seqs[:2])).values(written_ms=0))
    assert other.prune_event_log() == 2

    async def second_run() -> tuple[FollowerStats, list[str]]:
        async with Server(server_store, name="late") as server:
            await wait_for(lambda: server.heard)
            return server.follower.stats(), [
                e.fingerprint for e in server.heard if isinstance(e, FindingTriaged)
            ]

    stats, heard = asyncio.run(second_run())
    assert heard == ["c"]
    assert stats.missed == 2
    assert any("2 entries were pruned" in r.getMessage() for r in caplog.records)


def test_the_writer_prunes_the_log_when_it_closes(stores: tuple[Store, Store]) -> None:
    _, store = stores
    store.configure_event_log(EventLogRetention(all_ms=1_000, metrics_ms=1_000))
    store.set_triage("old", "open", "ana")
    with store.engine.begin() as conn:
        conn.execute(update(event_log).values(written_ms=0))

    async def scenario() -> None:
        bus = AsyncEventBus()
        writer = StoreWriter(store)
        await writer.attach(bus)
        await bus.publish(BaselineUpdated(baseline="main", fingerprints=0))
        await bus.close(drain=True)
        await writer.close()

    asyncio.run(scenario())
    assert [e.topic for e in entries(store)] == [BaselineUpdated.topic]


def test_a_change_wakes_the_follower_without_waiting_for_its_poll(
    stores: tuple[Store, Store],
) -> None:
    """SQLite: data_version changed; PostgreSQL: the append's NOTIFY (the poll is 60 s here)."""
    server_store, other = stores

    async def scenario() -> float:
        async with Server(server_store, fallback_poll_s=60.0) as server:
            await asyncio.sleep(0)  # the follower's first pass has begun
            loop = asyncio.get_running_loop()
            await wait_for(lambda: server.follower.stats().position >= 0)
            began = loop.time()
            other.set_triage("woken", "open", "ana")
            await wait_for(lambda: server.heard, limit_s=20.0)
            return loop.time() - began

    assert asyncio.run(scenario()) < 30.0


def test_a_large_metric_batch_logs_only_its_newest_samples(stores: tuple[Store, Store]) -> None:
    _, store = stores
    t = now_ms() - 60_000
    batch = tuple(Sample("cpu_percent", {"host": "a"}, t + i, 1.0) for i in range(5_000))

    async def scenario() -> None:
        bus = AsyncEventBus()
        writer = StoreWriter(store, flush_interval_s=30.0)
        await writer.attach(bus)
        await bus.publish(MetricsRecorded(samples=batch))
        await bus.close(drain=True)
        await writer.close()

    asyncio.run(scenario())
    [logged] = events_of(store)
    assert isinstance(logged, MetricsRecorded)
    assert logged.samples == batch[-MAX_LOGGED_SAMPLES:]
    # The store has them all: charts read the older ones from there.
    assert store.query("cpu_percent", None, t, t + 5_000)[0].timestamps.size == 5_000


def test_stored_benchmark_results_are_logged_once(stores: tuple[Store, Store]) -> None:
    _, store = stores
    results = [
        BenchmarkResult("test_parse", "pytest-benchmark", 1_000, "m1", "c1", stats={"median": 0.1}),
        BenchmarkResult("test_load", "pytest-benchmark", 1_000, "m1", "c1", stats={"median": 0.2}),
    ]
    assert store.add_benchmark_results(results) == 2
    assert store.add_benchmark_results(results) == 0  # nothing new: nothing to tell
    [logged] = events_of(store)
    assert isinstance(logged, BenchmarksRecorded)
    assert (logged.names, logged.results) == (("test_load", "test_parse"), 2)
