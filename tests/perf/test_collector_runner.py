"""The runner: collectors on their intervals, batches on the real bus, failures contained."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

import pytest

from secperf.bus.memory import AsyncEventBus
from secperf.events import Event, MetricsRecorded
from secperf.model import Sample
from secperf.perf.collectors.interface import Collector
from secperf.perf.collectors.process import ProcessCollector
from secperf.perf.collectors.runner import CollectorRunner
from secperf.perf.collectors.system import SystemCollector

T = TypeVar("T")


def run(main: Callable[[], Awaitable[T]], timeout: float = 20.0) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(main(), timeout)

    return asyncio.run(bounded())


class Counting(Collector):
    """Gives one sample numbered by its call; fails on the calls listed in ``fail_on``."""

    def __init__(
        self,
        name: str = "counting",
        interval_s: float = 0.02,
        fail_on: Iterable[int] = (),
        pause_s: float = 0.0,
    ) -> None:
        super().__init__(name, interval_s, host="test-host")
        self.calls = 0
        self.fail_on = set(fail_on)
        self.pause_s = pause_s
        self.threads: set[str] = set()
        self.closed = False

    def collect(self, now_ms: int) -> list[Sample]:
        self.calls += 1
        self.threads.add(threading.current_thread().name)
        if self.pause_s:
            time.sleep(self.pause_s)
        if self.calls in self.fail_on:
            raise RuntimeError(f"broken on call {self.calls}")
        return [Sample("calls", {"host": self.host}, now_ms, float(self.calls))]

    def close(self) -> None:
        self.closed = True


async def _wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


def test_each_collection_is_one_batch_on_the_bus() -> None:
    async def main() -> None:
        received: list[Event] = []
        bus = AsyncEventBus()

        async def handler(event: Event) -> None:
            received.append(event)

        await bus.subscribe("metrics.>", handler, name="store")
        collector = Counting()
        runner = CollectorRunner(bus, [collector])
        await runner.start()
        await _wait_for(lambda: len(received) >= 3)
        await runner.stop()
        await bus.close()
        assert all(isinstance(e, MetricsRecorded) for e in received)
        batches = [e for e in received if isinstance(e, MetricsRecorded)]  # all of them
        assert [e.samples[0].value for e in batches[:3]] == [1.0, 2.0, 3.0]
        assert {e.host for e in received} == {"test-host"}
        assert collector.closed
        assert "MainThread" not in collector.threads  # collect ran off the loop
        stats = runner.stats()["counting"]
        assert stats.batches_published == stats.collections >= 3
        assert stats.failures == 0

    run(main)


def test_failing_collector_is_counted_and_keeps_running(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        bus = AsyncEventBus()
        values: list[float] = []

        async def handler(event: Event) -> None:
            assert isinstance(event, MetricsRecorded)  # the only event on metrics.recorded
            values.extend(s.value for s in event.samples)

        await bus.subscribe("metrics.recorded", handler)
        broken = Counting(fail_on={1, 3})
        runner = CollectorRunner(bus, [broken])
        await runner.start()
        await _wait_for(lambda: len(values) >= 3)
        await runner.stop()
        await bus.close()
        assert values[:3] == [2.0, 4.0, 5.0]
        stats = runner.stats()["counting"]
        assert stats.failures == 2
        assert "broken on call" in caplog.text

    run(main)


def test_collectors_keep_their_own_intervals_and_can_be_switched_off() -> None:
    async def main() -> None:
        bus = AsyncEventBus()
        fast = Counting("fast", interval_s=0.01)
        slow = Counting("slow", interval_s=30)
        off = Counting("off", interval_s=0.01)
        runner = CollectorRunner(bus, [fast, slow, off], intervals={"off": None})
        assert [c.name for c in runner.collectors] == ["fast", "slow"]
        await runner.start()
        await _wait_for(lambda: fast.calls >= 10)
        await runner.stop()
        await bus.close()
        assert slow.calls == 1  # the first collection happens at start, the next in 30 s
        assert off.calls == 0
        assert set(runner.stats()) == {"fast", "slow"}

    run(main)


def test_an_interval_override_replaces_the_collectors_own() -> None:
    async def main() -> None:
        bus = AsyncEventBus()
        lazy = Counting("lazy", interval_s=60)
        runner = CollectorRunner(bus, [lazy], intervals={"lazy": 0.01})
        await runner.start()
        await _wait_for(lambda: lazy.calls >= 5)
        await runner.stop()
        await bus.close()
        assert runner.stats()["lazy"].interval_s == 0.01

    run(main)


def test_overrunning_collection_skips_missed_ticks() -> None:
    async def main() -> None:
        bus = AsyncEventBus()
        slow = Counting(interval_s=0.01, pause_s=0.05)
        runner = CollectorRunner(bus, [slow])
        await runner.start()
        await _wait_for(lambda: slow.calls >= 3)
        await runner.stop()
        await bus.close()
        stats = runner.stats()["counting"]
        assert stats.missed_ticks >= 2
        assert stats.collections == slow.calls

    run(main)


def test_overloaded_subscriber_makes_the_bus_drop_batches_not_the_runner_wait() -> None:
    async def main() -> None:
        bus = AsyncEventBus()
        release = asyncio.Event()

        async def stuck(event: Event) -> None:
            await release.wait()

        await bus.subscribe("metrics.>", stuck, name="stuck", maxsize=1)
        collector = Counting(interval_s=0.005)
        runner = CollectorRunner(bus, [collector])
        await runner.start()
        await _wait_for(lambda: bus.stats().dropped >= 5)
        # The collector kept its pace while the subscriber was stuck.
        assert collector.calls >= 7
        release.set()
        await runner.stop()
        await bus.close()
        assert runner.stats()["counting"].batches_published == collector.calls

    run(main)


def test_real_collectors_publish_real_samples() -> None:
    async def main() -> None:
        bus = AsyncEventBus()
        batches: list[MetricsRecorded] = []

        async def handler(event: Event) -> None:
            assert isinstance(event, MetricsRecorded)  # the only event on metrics.recorded
            batches.append(event)

        await bus.subscribe("metrics.recorded", handler)
        system = SystemCollector(interval_s=0.1, per_cpu=False)
        process = ProcessCollector(interval_s=0.1, include_children=False)
        runner = CollectorRunner(bus, [system, process])
        await runner.start()

        def names() -> set[str]:
            return {s.name for b in batches for s in b.samples}

        await _wait_for(lambda: {"cpu_percent", "process_cpu_percent"} <= names())
        await runner.stop()
        await bus.close()
        assert {"memory_percent", "memory_rss_bytes", "load_1m"} <= names()

    run(main)


def test_stop_is_idempotent_and_a_closed_bus_does_not_kill_the_task() -> None:
    async def main() -> None:
        bus = AsyncEventBus()
        await bus.start()
        collector = Counting()
        runner = CollectorRunner(bus, [collector])
        await runner.start()
        await _wait_for(lambda: collector.calls >= 1)
        await bus.close()
        calls = collector.calls
        await _wait_for(lambda: collector.calls >= calls + 2)
        assert runner.running
        await runner.stop()
        await runner.stop()
        running: bool = runner.running  # read again: mypy would keep the narrowing above
        assert not running
        stats = runner.stats()["counting"]
        assert stats.last_error is not None and "publish failed" in stats.last_error

    run(main)


def test_bad_configuration_is_refused_with_the_reason() -> None:
    bus = AsyncEventBus()
    with pytest.raises(ValueError, match="unknown collector"):
        CollectorRunner(bus, [Counting()], intervals={"nope": 1})
    with pytest.raises(ValueError, match="unique"):
        CollectorRunner(bus, [Counting(), Counting()])
    with pytest.raises(ValueError, match="interval of collector 'counting'"):
        CollectorRunner(bus, [Counting()], intervals={"counting": -1})
