"""The event log follower under trouble: lost connections, damage, backlogs, pruning.

Real SQLite files and the real PostgreSQL (``store_url``/``postgres_url``),
real in-process buses; a lost connection is a backend killed with
``pg_terminate_backend``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import update

from secperf.bus.memory import AsyncEventBus
from secperf.events import (
    BaselineUpdated,
    Event,
    FindingTriaged,
    now_ms,
)
from secperf.store import Store
from secperf.store.event_log import EventLogRetention
from secperf.store.follower import EventLogFollower, cursor_name
from secperf.store.schema import event_log
from support.waiting import wait_for


async def listening_bus() -> tuple[AsyncEventBus, list[Event]]:
    bus = AsyncEventBus()
    await bus.start()
    heard: list[Event] = []

    async def listen(event: Event) -> None:
        heard.append(event)

    await bus.subscribe(">", listen, name="listener")
    return bus, heard


def triaged(heard: list[Event]) -> list[str]:
    return [e.fingerprint for e in heard if isinstance(e, FindingTriaged)]


def count_reads(store: Store) -> list[int]:
    """Count the store's log reads (the instance's method, wrapped)."""
    reads = [0]
    read = store.read_event_log

    def counting(*args: Any, **kwargs: Any) -> Any:
        reads[0] += 1
        return read(*args, **kwargs)

    store.read_event_log = counting  # type: ignore[method-assign]
    return reads


# --------------------------------------------------------------------------- PostgreSQL LISTEN


def test_a_lost_listen_connection_is_opened_again_without_spinning(postgres_url: str) -> None:
    import psycopg

    from support.services import POSTGRES_URL

    dsn = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://", 1).split("?")[0]
    server_store, other = Store.open(postgres_url), Store.open(postgres_url)
    reads = count_reads(server_store)

    async def scenario() -> tuple[int, list[str]]:
        bus, heard = await listening_bus()
        # The fallback poll is a minute: only a NOTIFY (or a reconnect) makes it read.
        follower = EventLogFollower(server_store, bus, name="lost", fallback_poll_s=60.0)
        await follower.start()
        try:
            waiter: Any = follower._waiter
            await wait_for(lambda: reads[0] >= 1)
            pid = waiter._conn.info.backend_pid
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
            # Written while the connection is lost: read once it is back.
            other.set_triage("during", "open", "ana")
            await wait_for(lambda: triaged(heard), limit_s=20.0)
            # Connected again: quiet, a read only when told of an append.
            settled = reads[0]
            loop = asyncio.get_running_loop()
            until = loop.time() + 1.0
            while loop.time() < until:  # a spinning follower reads thousands of times here
                await asyncio.sleep(0.05)
            quiet = reads[0] - settled
            other.set_triage("after", "open", "ana")
            await wait_for(lambda: len(triaged(heard)) == 2, limit_s=20.0)
            return quiet, triaged(heard)
        finally:
            await follower.stop()
            await bus.close()

    try:
        quiet, heard = asyncio.run(scenario())
    finally:
        other.close()
        server_store.close()
    assert quiet <= 3, f"{quiet} reads in a quiet second"  # spinning: thousands
    assert heard == ["during", "after"]


def test_the_listen_connection_is_retried_while_the_server_refuses(postgres_url: str) -> None:
    """Attempts that fail wait longer each time; the follower keeps its pace meanwhile."""
    from secperf.store import follower as follower_module

    store = Store.open(postgres_url)
    reads = count_reads(store)

    async def scenario() -> tuple[int, int]:
        bus, _ = await listening_bus()
        follower = EventLogFollower(store, bus, name="refused", fallback_poll_s=0.2)
        await follower.start()
        try:
            waiter: Any = follower._waiter
            await wait_for(lambda: reads[0] >= 1)
            with waiter._lock:  # the server now refuses every connection
                waiter._kwargs = {**waiter._kwargs, "port": 1}
                waiter._conn.close()
            loop = asyncio.get_running_loop()
            begin = reads[0]
            until = loop.time() + 1.0
            while loop.time() < until:
                await asyncio.sleep(0.05)
            return reads[0] - begin, waiter.reconnects
        finally:
            await follower.stop()
            await bus.close()

    try:
        during, reconnects = asyncio.run(scenario())
    finally:
        store.close()
    # One read per fallback poll (0.2 s), not one per loop turn.
    assert 1 <= during <= 10
    assert reconnects == 0
    assert follower_module.RECONNECT_MIN_S < follower_module.RECONNECT_MAX_S


# --------------------------------------------------------------------------- damage


def test_damaged_entries_are_reported_once_per_kind_of_damage(
    stores: tuple[Store, Store], caplog: pytest.LogCaptureFixture
) -> None:
    server_store, other = stores
    caplog.set_level(logging.WARNING, logger="secperf.store.follower")

    async def scenario() -> int:
        bus, _ = await listening_bus()
        follower = EventLogFollower(server_store, bus, name="damage")
        await follower.start()
        try:
            with other.engine.begin() as conn:
                conn.execute(
                    event_log.insert(),
                    [
                        {
                            "event_id": f"bad{i}",
                            "topic": "x",
                            "ts_ms": 0,
                            "written_ms": now_ms(),
                            "origin": None,
                            "encoding": 0,
                            # Each breaks at another position: another JSON error message.
                            "payload": b"{" + b" " * i + b"oops",
                        }
                        for i in range(5)
                    ]
                    + [
                        {
                            "event_id": f"future{i}",
                            "topic": "x",
                            "ts_ms": 0,
                            "written_ms": now_ms(),
                            "origin": None,
                            "encoding": 0,
                            "payload": b'{"type":"Future%d","topic":"x","event":{}}' % i,
                        }
                        for i in range(3)
                    ],
                )
            await wait_for(lambda: follower.stats().undecodable == 8)
            return follower.stats().undecodable
        finally:
            await follower.stop()
            await bus.close()

    assert asyncio.run(scenario()) == 8
    reports = [r.getMessage() for r in caplog.records if "cannot be read" in r.getMessage()]
    assert len(reports) == 2  # not JSON; an unknown event type


# --------------------------------------------------------------------------- stop, positions


def test_stop_is_prompt_with_a_backlog_and_the_next_start_resumes(
    stores: tuple[Store, Store],
) -> None:
    server_store, other = stores
    total = 400

    async def scenario() -> tuple[int, int, list[str]]:
        bus, heard = await listening_bus()
        # One entry a read: the backlog takes a while to read.
        first = EventLogFollower(server_store, bus, name="behind", read_batch=1)
        await first.start()
        start = first.stats().position
        other.append_events(
            [BaselineUpdated(baseline=f"b{i}", fingerprints=i) for i in range(total)]
        )
        await wait_for(lambda: first.stats().position > start)
        await first.stop()
        stopped_at = first.stats().position
        saved = server_store.event_log_cursor("behind")
        assert saved == stopped_at
        second = EventLogFollower(server_store, bus, name="behind", read_batch=100)
        await second.start()
        await wait_for(lambda: len(heard) >= total)
        await second.stop()
        await bus.close(drain=True)
        baselines = [e.baseline for e in heard if isinstance(e, BaselineUpdated)]
        return stopped_at - start, len(heard), baselines

    read_before_stop, heard_count, baselines = asyncio.run(scenario())
    assert read_before_stop < total  # stopped without reading the whole backlog
    assert heard_count == total
    assert baselines == [f"b{i}" for i in range(total)]  # once each, in order


def test_entries_pruned_past_a_running_follower_are_counted_as_missed(
    stores: tuple[Store, Store],
) -> None:
    server_store, other = stores

    async def scenario() -> tuple[int, list[str]]:
        bus, heard = await listening_bus()
        follower = EventLogFollower(server_store, bus, name="pruned")
        await follower.start()
        await follower.stop()  # its position is the end; the read below is by hand
        for name in ("a", "b", "c"):
            other.set_triage(name, "open", "ana")
        other.configure_event_log(EventLogRetention(all_ms=1_000, metrics_ms=1_000))
        with other.engine.begin() as conn:
            seqs = sorted(e.seq for e in other.read_event_log(0, 100))
            conn.execute(
                update(event_log).where(event_log.c.seq.in_(seqs[:2])).values(written_ms=0)
            )
        assert other.prune_event_log() == 2
        await follower.follow()
        await bus.close(drain=True)
        return follower.stats().missed, triaged(heard)

    missed, heard = asyncio.run(scenario())
    assert heard == ["c"]
    assert missed == 2


def test_a_log_pruned_to_empty_keeps_the_position(stores: tuple[Store, Store]) -> None:
    """PostgreSQL knows the last number from the sequence, as SQLite does from its table."""
    server_store, other = stores

    async def run(name: str, until: Callable[[EventLogFollower, list[Event]], bool]) -> Any:
        bus, heard = await listening_bus()
        follower = EventLogFollower(server_store, bus, name=name)
        await follower.start()
        try:
            await wait_for(lambda: until(follower, heard))
        finally:
            await follower.stop()
            await bus.close(drain=True)
        return follower.stats(), triaged(heard)

    asyncio.run(run("empty", lambda f, h: True))
    for name in ("a", "b"):
        other.set_triage(name, "open", "ana")
    first, heard = asyncio.run(run("empty", lambda f, h: len(triaged(h)) == 2))
    assert heard == ["a", "b"]
    other.configure_event_log(EventLogRetention(all_ms=1_000, metrics_ms=1_000))
    with other.engine.begin() as conn:
        conn.execute(update(event_log).values(written_ms=0))
    assert other.prune_event_log() == 2
    again, _ = asyncio.run(run("empty", lambda f, h: True))
    assert again.position == first.position  # not back to 0
    other.set_triage("c", "open", "ana")
    last, heard = asyncio.run(run("empty", lambda f, h: bool(triaged(h))))
    assert heard == ["c"]
    assert last.missed == 0
    assert last.position > first.position


# --------------------------------------------------------------------------- names


def test_cursor_names_tell_servers_of_one_kind_apart_and_stay_across_restarts() -> None:
    a = cursor_name("serve", "127.0.0.1:8080")
    assert a == cursor_name("serve", "127.0.0.1:8080")
    assert a != cursor_name("serve", "127.0.0.1:8081")
    assert a != cursor_name("up", "127.0.0.1:8080")
    with pytest.raises(ValueError, match="tells its server apart"):
        cursor_name("serve", " ")
