"""The in-process event bus: routing, ordering, isolation, backpressure, threads, close."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from secperf.bus.interface import BusClosedError, EventBus, Subscription
from secperf.bus.memory import AsyncEventBus
from secperf.events import (
    BaselineUpdated,
    Event,
    MetricsRecorded,
    ScanCompleted,
    ScanStarted,
    ViolationDetected,
)
from secperf.model import Finding, Sample, SecurityMetrics, Severity, make_fingerprint

T = TypeVar("T")


def run(main: Callable[[], Awaitable[T]], timeout: float = 20.0) -> T:
    """Run one test body on a fresh loop; a hang fails instead of blocking the suite."""

    async def bounded() -> T:
        return await asyncio.wait_for(main(), timeout)

    return asyncio.run(bounded())


async def settle(rounds: int = 20) -> None:
    """Let the bus's worker tasks run (a few loop iterations, no wall-clock wait)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


class Recorder:
    """An async handler that records what it receives."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    async def __call__(self, event: Event) -> None:
        self.events.append(event)


class Gate:
    """An async handler that blocks on each event until released."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, event: Event) -> None:
        self.started.set()
        await self.release.wait()
        self.events.append(event)


def metrics(i: int) -> MetricsRecorded:
    return MetricsRecorded(samples=(Sample("cpu_percent", {"host": "a"}, 1_000 + i, float(i)),))


def scan_completed(scan_id: str = "scan-1") -> ScanCompleted:
    security = SecurityMetrics(
        scan_id=scan_id,
        target="/repo",
        started_ms=1_000,
        finished_ms=2_500,
        scan_duration_ms=1_500.0,
        violations_found=1,
        false_positive_rate=0.0,
        vulnerability_severity_counts={"high": 1},
        scan_coverage_percent=100.0,
        files_scanned=3,
    )
    return ScanCompleted(metrics=security)


def violation(i: int) -> ViolationDetected:
    code = f"eval(user_input_{i})"
    finding = Finding(
        fingerprint=make_fingerprint("B307", "app.py", code),
        rule_id="B307",
        scanner="bandit",
        severity=Severity.HIGH,
        message="Use of possibly insecure function - consider using safer ast.literal_eval.",
        path="app.py",
        line=10 + i,
        snippet=code,
    )
    return ViolationDetected(scan_id="scan-1", finding=finding)


def baseline(i: int) -> BaselineUpdated:
    return BaselineUpdated(baseline="main", fingerprints=i)


# --------------------------------------------------------------------------- routing


def test_exact_and_wildcard_subscribers_receive_only_matching_events() -> None:
    async def main() -> None:
        async with AsyncEventBus() as bus:
            exact = Recorder()
            one_token = Recorder()
            rest = Recorder()
            everything = Recorder()
            metrics_only = Recorder()
            await bus.subscribe("security.scan.completed", exact)
            await bus.subscribe("security.scan.*", one_token)
            await bus.subscribe("security.>", rest)
            await bus.subscribe(">", everything)
            await bus.subscribe("metrics.recorded", metrics_only)

            started = ScanStarted(scan_id="scan-1", target="/repo")
            completed = scan_completed()
            found = violation(0)
            sample = metrics(0)
            for event in (started, completed, found, sample):
                await bus.publish(event)
            await settle()

            assert exact.events == [completed]
            assert one_token.events == [started, completed]
            assert rest.events == [started, completed, found]
            assert everything.events == [started, completed, found, sample]
            assert metrics_only.events == [sample]

    run(main)


def test_route_cache_is_refreshed_when_subscribers_change() -> None:
    async def main() -> None:
        async with AsyncEventBus() as bus:
            first = Recorder()
            await bus.subscribe("security.>", first)
            await bus.publish(baseline(1))  # fills the cache for this topic
            late = Recorder()
            await bus.subscribe("security.baseline.*", late)
            await bus.publish(baseline(2))
            await settle()
            assert [e.fingerprints for e in first.events] == [1, 2]  # type: ignore[attr-defined]
            assert [e.fingerprints for e in late.events] == [2]  # type: ignore[attr-defined]

    run(main)


def test_bad_subscriptions_are_refused_with_clear_errors() -> None:
    async def main() -> None:
        async with AsyncEventBus() as bus:
            handler = Recorder()
            with pytest.raises(ValueError, match="'>' must be the last token"):
                await bus.subscribe("security.>.scan", handler)
            with pytest.raises(ValueError, match="empty token"):
                await bus.subscribe("security..scan", handler)
            with pytest.raises(ValueError, match="maxsize must be an integer >= 1"):
                await bus.subscribe("security.>", handler, maxsize=0)
            with pytest.raises(TypeError, match="async callable"):
                await bus.subscribe("security.>", "not a handler")  # type: ignore[arg-type]
            await bus.subscribe("security.>", handler, name="store")
            with pytest.raises(ValueError, match="'store' already exists"):
                await bus.subscribe("alerts.>", handler, name="store")
            with pytest.raises(TypeError, match="only secperf events"):
                await bus.publish({"topic": "security.violation"})  # type: ignore[arg-type]

    run(main)


def test_the_bus_is_an_event_bus() -> None:
    assert issubclass(AsyncEventBus, EventBus)
    with pytest.raises(ValueError, match="default_maxsize"):
        AsyncEventBus(default_maxsize=-1)


# --------------------------------------------------------------------------- delivery


def test_each_subscriber_receives_events_in_publish_order() -> None:
    async def main() -> None:
        async with AsyncEventBus(default_maxsize=64) as bus:
            a = Recorder()
            b = Recorder()
            await bus.subscribe("security.>", a)
            await bus.subscribe("security.baseline.updated", b)
            sent = [baseline(i) for i in range(2_000)]
            for index, event in enumerate(sent):
                await bus.publish(event)
                if index % 97 == 0:
                    await asyncio.sleep(0)
        # close() drained both queues
        assert a.events == sent
        assert b.events == sent

    run(main)


def test_a_failing_handler_is_isolated_logged_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    failing_ids: list[str] = []

    async def main() -> tuple[list[BaselineUpdated], list[Event], AsyncEventBus]:
        bus = AsyncEventBus()
        healthy = Recorder()
        survived: list[Event] = []

        async def flaky(event: Event) -> None:
            assert isinstance(event, BaselineUpdated)
            if event.fingerprints % 3 == 0:
                failing_ids.append(event.id)
                raise RuntimeError(f"cannot handle {event.fingerprints}")
            survived.append(event)

        await bus.subscribe("security.>", flaky, name="flaky")
        await bus.subscribe("security.>", healthy, name="healthy")
        sent = [baseline(i) for i in range(30)]
        for event in sent:
            await bus.publish(event)
        await bus.close()
        return sent, survived, bus

    with caplog.at_level(logging.ERROR, logger="secperf.bus.memory"):
        sent, survived, bus = run(main)

    stats = bus.stats()
    by_name = {s.name: s for s in stats.subscribers}
    assert by_name["healthy"].delivered == 30
    assert by_name["healthy"].failed == 0
    assert by_name["flaky"].failed == 10
    assert by_name["flaky"].delivered == 20
    assert stats.failed == 10
    assert stats.delivered == 50
    # Later events still reach the failing subscriber.
    assert [e.id for e in survived] == [e.id for e in sent if e.fingerprints % 3]
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(failures) == 10
    for record, event_id in zip(failures, failing_ids, strict=True):
        message = record.getMessage()
        assert "'flaky'" in message
        assert "BaselineUpdated" in message
        assert event_id in message
        assert record.exc_info is not None


# --------------------------------------------------------------------------- backpressure


def test_full_subscriber_drops_metrics_and_makes_security_events_wait() -> None:
    async def main() -> None:
        bus = AsyncEventBus()
        slow = Gate()
        fast = Recorder()
        await bus.subscribe(">", slow, name="slow", maxsize=2)
        await bus.subscribe(">", fast, name="fast")

        first = metrics(0)
        await bus.publish(first)
        await slow.started.wait()  # the worker holds `first`; its queue is empty
        queued = [metrics(1), metrics(2)]
        shed = [metrics(3), metrics(4), metrics(5)]
        for event in queued + shed:
            await bus.publish(event)  # never waits for droppable events

        stats = {s.name: s for s in bus.stats().subscribers}
        assert stats["slow"].queue_depth == 2
        assert stats["slow"].queue_max == 2
        assert stats["slow"].dropped == 3

        security: list[Event] = [scan_completed(), *(violation(i) for i in range(4))]

        async def publish_security() -> None:
            for event in security:
                await bus.publish(event)

        publisher = asyncio.create_task(publish_security())
        await settle()
        assert not publisher.done()  # the publisher waits for room instead of dropping

        # A droppable event published meanwhile does not jump the waiting publisher.
        await bus.publish(metrics(6))

        slow.release.set()
        await publisher
        await bus.close()

        assert slow.events == [first, *queued, *security]
        assert fast.events[: 1 + len(queued) + len(shed)] == [first, *queued, *shed]
        assert set(map(id, security)) <= set(map(id, fast.events))
        totals = bus.stats()
        by_name = {s.name: s for s in totals.subscribers}
        assert by_name["slow"].dropped == 4  # three shed + the one published while full
        assert by_name["fast"].dropped == 0
        assert totals.dropped == 4
        assert totals.published == 1 + 2 + 3 + 5 + 1
        assert by_name["slow"].delivered == 1 + 2 + 5
        assert by_name["fast"].delivered == totals.published

    run(main)


def test_stats_show_the_queue_depth_of_a_blocked_subscriber() -> None:
    async def main() -> None:
        bus = AsyncEventBus(default_maxsize=5)
        slow = Gate()
        await bus.subscribe("security.>", slow, name="blocked")
        await bus.publish(baseline(0))
        await slow.started.wait()
        for i in range(1, 4):
            await bus.publish(baseline(i))
        (entry,) = bus.stats().subscribers
        assert (entry.name, entry.pattern) == ("blocked", "security.>")
        assert entry.queue_depth == 3
        assert entry.queue_max == 5
        assert entry.delivered == 0
        slow.release.set()
        await bus.close()
        (entry,) = bus.stats().subscribers
        assert entry.queue_depth == 0
        assert entry.delivered == 4

    run(main)


# --------------------------------------------------------------------------- threads


def test_publishing_from_several_threads_delivers_everything_in_order() -> None:
    threads_count = 4
    per_thread = 300

    async def main() -> None:
        bus = AsyncEventBus(default_maxsize=8)  # small: non-droppable events must wait
        security = Recorder()
        every = Recorder()
        await bus.subscribe("security.>", security, name="security")
        await bus.subscribe(">", every, name="every", maxsize=10_000)
        sent: dict[int, list[Event]] = {}

        def produce(worker: int) -> None:
            events: list[Event] = []
            for i in range(per_thread):
                event: Event = (
                    metrics(i)
                    if i % 2
                    else BaselineUpdated(baseline=f"thread-{worker}", fingerprints=i)
                )
                events.append(event)
                bus.publish_threadsafe(event, timeout=10)
            sent[worker] = events

        threads = [threading.Thread(target=produce, args=(n,)) for n in range(threads_count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            await asyncio.to_thread(thread.join)
        await bus.close()

        total = threads_count * per_thread
        by_name = {s.name: s for s in bus.stats().subscribers}
        assert bus.stats().published == total
        assert by_name["every"].delivered == total
        assert by_name["every"].dropped == 0
        assert by_name["security"].delivered == total // 2
        assert len(security.events) == total // 2
        # Each thread's events arrive in the order that thread published them.
        assert len(sent) == threads_count
        for events in sent.values():
            mine = {id(e) for e in events}
            assert [e for e in every.events if id(e) in mine] == events
            assert [e for e in security.events if id(e) in mine] == [
                e for e in events if not e.droppable
            ]

    run(main)


def test_publish_threadsafe_times_out_while_a_queue_stays_full() -> None:
    async def main() -> None:
        bus = AsyncEventBus()
        slow = Gate()
        await bus.subscribe("security.>", slow, maxsize=1)
        await bus.publish(baseline(0))
        await slow.started.wait()
        await bus.publish(baseline(1))  # fills the queue
        stuck = baseline(2)
        with pytest.raises(TimeoutError, match=f"BaselineUpdated {stuck.id} was not queued"):
            await asyncio.to_thread(bus.publish_threadsafe, stuck, 0.2)
        slow.release.set()
        await bus.close()
        assert [e.fingerprints for e in slow.events] == [0, 1]  # type: ignore[attr-defined]

    run(main)


def test_publish_threadsafe_on_the_loop_thread_is_refused() -> None:
    async def main() -> None:
        async with AsyncEventBus() as bus:
            with pytest.raises(RuntimeError, match="event loop's own thread"):
                bus.publish_threadsafe(baseline(1))
            with pytest.raises(RuntimeError, match="event loop's own thread"):
                bus.publish_threadsafe(metrics(1))

    run(main)


def test_publish_threadsafe_before_start_is_refused() -> None:
    with pytest.raises(RuntimeError, match="not started"):
        AsyncEventBus().publish_threadsafe(baseline(1))


# --------------------------------------------------------------------------- close


def test_close_delivers_everything_queued() -> None:
    async def main() -> None:
        bus = AsyncEventBus()
        slow = Gate()
        await bus.subscribe("security.>", slow)
        sent = [baseline(i) for i in range(50)]
        for event in sent:
            await bus.publish(event)
        await slow.started.wait()
        asyncio.get_running_loop().call_soon(slow.release.set)
        await bus.close()
        assert slow.events == sent
        stats = bus.stats()
        assert (stats.published, stats.delivered, stats.dropped) == (50, 50, 0)

    run(main)


def test_close_lets_waiting_publishers_finish() -> None:
    async def main() -> None:
        bus = AsyncEventBus()
        slow = Gate()
        other = Recorder()
        await bus.subscribe("security.>", slow, name="slow", maxsize=1)
        await bus.subscribe("security.>", other, name="other", maxsize=1)
        await bus.publish(baseline(0))
        await slow.started.wait()
        await bus.publish(baseline(1))
        publisher = asyncio.create_task(bus.publish(baseline(2)))
        await settle()
        assert not publisher.done()
        asyncio.get_running_loop().call_soon(slow.release.set)
        await bus.close()
        await publisher
        assert [e.fingerprints for e in slow.events] == [0, 1, 2]  # type: ignore[attr-defined]
        assert [e.fingerprints for e in other.events] == [0, 1, 2]  # type: ignore[attr-defined]

    run(main)


def test_close_without_drain_counts_discarded_events() -> None:
    async def main() -> None:
        bus = AsyncEventBus()
        slow = Gate()
        await bus.subscribe("security.>", slow, name="slow")
        for i in range(6):
            await bus.publish(baseline(i))
        await slow.started.wait()  # event 0 is in the handler, 1..5 are queued
        asyncio.get_running_loop().call_soon(slow.release.set)
        await bus.close(drain=False)
        assert [e.fingerprints for e in slow.events] == [0]  # type: ignore[attr-defined]
        stats = bus.stats()
        assert stats.dropped == 5
        assert stats.delivered == 1
        assert stats.subscribers[0].queue_depth == 0

    run(main)


def test_close_without_drain_fails_waiting_publishers() -> None:
    async def main() -> None:
        bus = AsyncEventBus()
        slow = Gate()
        await bus.subscribe("security.>", slow, maxsize=1)
        await bus.publish(baseline(0))
        await slow.started.wait()
        await bus.publish(baseline(1))
        publisher = asyncio.create_task(bus.publish(baseline(2)))
        await settle()
        asyncio.get_running_loop().call_soon(slow.release.set)
        await bus.close(drain=False)
        with pytest.raises(BusClosedError, match="without draining"):
            await publisher
        assert bus.stats().dropped == 1  # event 1 was queued; event 2 never was

    run(main)


def test_close_timeout_cancels_a_stuck_handler_and_counts_what_it_held(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> AsyncEventBus:
        bus = AsyncEventBus()
        stuck = Gate()  # never released
        await bus.subscribe("security.>", stuck, name="stuck")
        for i in range(4):
            await bus.publish(baseline(i))
        await stuck.started.wait()
        await bus.close(timeout=0.05)
        return bus

    with caplog.at_level(logging.WARNING, logger="secperf.bus.memory"):
        bus = run(main)
    stats = bus.stats()
    assert stats.dropped == 4  # the one in the handler and the three queued
    assert stats.delivered == 0
    assert any("'stuck' did not finish" in r.getMessage() for r in caplog.records)


def test_everything_after_close_is_refused() -> None:
    async def main() -> None:
        bus = AsyncEventBus()
        await bus.subscribe("security.>", Recorder())
        await bus.close()
        await bus.close()  # idempotent
        with pytest.raises(BusClosedError, match="closed"):
            await bus.publish(baseline(1))
        with pytest.raises(BusClosedError, match="closed"):
            await asyncio.to_thread(bus.publish_threadsafe, baseline(1))
        with pytest.raises(BusClosedError, match="closed"):
            await asyncio.to_thread(bus.publish_threadsafe, metrics(1))
        with pytest.raises(BusClosedError, match="closed"):
            await bus.subscribe("security.>", Recorder())
        assert bus.stats().published == 0

    run(main)


# --------------------------------------------------------------------------- unsubscribe


def test_unsubscribe_drains_first_then_stops_delivery() -> None:
    async def main() -> None:
        bus = AsyncEventBus()
        slow = Gate()
        stays = Recorder()
        subscription = await bus.subscribe("security.>", slow, name="leaving")
        await bus.subscribe("security.>", stays, name="staying")
        for i in range(5):
            await bus.publish(baseline(i))
        await slow.started.wait()
        asyncio.get_running_loop().call_soon(slow.release.set)
        await subscription.unsubscribe()
        assert [e.fingerprints for e in slow.events] == [0, 1, 2, 3, 4]  # type: ignore[attr-defined]
        await bus.publish(baseline(5))
        await bus.close()
        assert len(slow.events) == 5
        assert len(stays.events) == 6
        stats = bus.stats()
        assert [s.name for s in stats.subscribers] == ["staying"]
        assert stats.delivered == 11  # the departed subscriber's counts are kept

    run(main)


def test_a_handler_may_unsubscribe_itself() -> None:
    async def main() -> None:
        bus = AsyncEventBus()
        seen: list[Event] = []
        subscription: Subscription | None = None

        async def once(event: Event) -> None:
            seen.append(event)
            assert subscription is not None
            await subscription.unsubscribe()

        subscription = await bus.subscribe("security.>", once, name="once")
        await bus.publish(baseline(0))
        await settle()
        await bus.publish(baseline(1))
        await settle()
        assert len(seen) == 1
        assert bus.stats().subscribers == []
        assert bus.stats().delivered == 1
        await bus.close()

    run(main)


def test_publish_many_threadsafe_delivers_a_batch_in_order_through_full_queues() -> None:
    async def main() -> None:
        bus = AsyncEventBus(default_maxsize=2)  # small: the batch must wait for room
        security = Recorder()
        every = Recorder()
        await bus.subscribe("security.>", security, name="security")
        await bus.subscribe(">", every, name="every", maxsize=10_000)
        events: list[Event] = [
            metrics(i) if i % 3 == 0 else BaselineUpdated(baseline="main", fingerprints=i)
            for i in range(500)
        ]
        await asyncio.to_thread(bus.publish_many_threadsafe, events, 10)
        await bus.close()
        assert bus.stats().published == len(events)
        assert every.events == events
        assert security.events == [e for e in events if not e.droppable]

    run(main)


def test_publish_many_threadsafe_checks_every_event_before_publishing_any() -> None:
    async def main() -> None:
        bus = AsyncEventBus()
        every = Recorder()
        await bus.subscribe(">", every)
        with pytest.raises(TypeError, match="only secperf events can be published, got str"):
            await asyncio.to_thread(
                bus.publish_many_threadsafe,
                [baseline(1), "not an event"],  # type: ignore[list-item]
            )
        await bus.close()
        assert every.events == []
        assert bus.stats().published == 0

    run(main)


def test_publish_many_threadsafe_times_out_while_a_queue_stays_full() -> None:
    async def main() -> None:
        bus = AsyncEventBus()
        slow = Gate()
        await bus.subscribe("security.>", slow, maxsize=1)
        await bus.publish(baseline(0))
        await slow.started.wait()
        with pytest.raises(TimeoutError, match=r"3 events were not all queued within 0\.2 s"):
            await asyncio.to_thread(
                bus.publish_many_threadsafe, [baseline(1), baseline(2), baseline(3)], 0.2
            )
        slow.release.set()
        await bus.close()
        # The first of the batch found room; the rest were withdrawn with the timeout.
        assert [e.fingerprints for e in slow.events] == [0, 1]  # type: ignore[attr-defined]

    run(main)


def test_publish_many_threadsafe_is_refused_on_the_loop_thread_and_before_start() -> None:
    async def main() -> None:
        async with AsyncEventBus() as bus:
            with pytest.raises(RuntimeError, match="event loop's own thread"):
                bus.publish_many_threadsafe([baseline(1), baseline(2)])

    run(main)
    with pytest.raises(RuntimeError, match="not started"):
        AsyncEventBus().publish_many_threadsafe([baseline(1), baseline(2)])
