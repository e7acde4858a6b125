"""The in-process event bus: throughput to one subscriber, and publish latency.

Throughput: N pre-built ``MetricsRecorded`` events (one sample each) published
with ``await bus.publish`` to one subscriber whose async handler counts them,
timed until the handler has seen all N. Anchor: a bare ``asyncio.Queue`` round
trip of the same N objects between a producer coroutine and a consumer task.
Both queues are sized to hold N, so neither drops nor makes the producer wait.

Latency: the median of per-call ``perf_counter_ns`` around ``await bus.publish``
while a subscriber drains (the publisher yields to it every 100 events).
Anchor: the same measurement around ``await queue.put`` on an ``asyncio.Queue``.
"""

from __future__ import annotations

import asyncio
import statistics
import time

from benchmarks.common import Figure
from secperf.bus.memory import AsyncEventBus
from secperf.events import Event, MetricsRecorded
from secperf.model import Sample

AREA = "bus"
THROUGHPUT_TARGET = 200_000.0  # events/s
LATENCY_TARGET_US = 5.0
YIELD_EVERY = 100


def _events(n: int) -> list[Event]:
    return [
        MetricsRecorded(samples=(Sample("cpu_percent", {"host": "bench"}, 1_000 + i, 0.5),))
        for i in range(n)
    ]


async def _bus_rate(events: list[Event]) -> float:
    """Events per second from ``publish`` to the subscriber's handler."""
    n = len(events)
    seen = 0
    done = asyncio.Event()

    async def count(event: Event) -> None:
        nonlocal seen
        seen += 1
        if seen == n:
            done.set()

    bus = AsyncEventBus()
    await bus.subscribe("metrics.>", count, name="counter", maxsize=n)
    publish = bus.publish
    start = time.perf_counter()
    for event in events:
        await publish(event)
    await done.wait()
    elapsed = time.perf_counter() - start
    stats = bus.stats()
    await bus.close()
    if stats.dropped or stats.delivered != n:
        raise RuntimeError(f"bus benchmark lost events: {stats}")
    return n / elapsed


async def _queue_rate(events: list[Event]) -> float:
    """Events per second through a bare asyncio.Queue (the anchor)."""
    n = len(events)
    queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=n)
    seen = 0

    async def consume() -> None:
        nonlocal seen
        get = queue.get
        while seen < n:
            await get()
            seen += 1

    start = time.perf_counter()
    consumer = asyncio.create_task(consume())
    put = queue.put
    for event in events:
        await put(event)
    await consumer
    return n / (time.perf_counter() - start)


async def _bus_latency_us(events: list[Event]) -> float:
    """Median microseconds of one ``await bus.publish`` with a draining subscriber."""

    async def drain(event: Event) -> None:
        return None

    bus = AsyncEventBus()
    await bus.subscribe("metrics.>", drain, name="drain")
    publish = bus.publish
    clock = time.perf_counter_ns
    timings: list[int] = []
    record = timings.append
    for index, event in enumerate(events):
        start = clock()
        await publish(event)
        record(clock() - start)
        if index % YIELD_EVERY == YIELD_EVERY - 1:
            await asyncio.sleep(0)  # let the subscriber drain
    stats = bus.stats()
    await bus.close()
    if stats.dropped:
        raise RuntimeError(f"bus latency benchmark dropped events: {stats}")
    return statistics.median(timings) / 1_000


async def _queue_latency_us(events: list[Event]) -> float:
    """Median microseconds of one ``await queue.put`` with a draining consumer."""
    queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=10_000)

    async def consume() -> None:
        while True:
            await queue.get()

    consumer = asyncio.create_task(consume())
    put = queue.put
    clock = time.perf_counter_ns
    timings: list[int] = []
    record = timings.append
    for index, event in enumerate(events):
        start = clock()
        await put(event)
        record(clock() - start)
        if index % YIELD_EVERY == YIELD_EVERY - 1:
            await asyncio.sleep(0)
    consumer.cancel()
    return statistics.median(timings) / 1_000


async def _measure(n: int, runs: int) -> tuple[float, float, float, float]:
    events = _events(n)
    bus_rates: list[float] = []
    queue_rates: list[float] = []
    bus_latencies: list[float] = []
    queue_latencies: list[float] = []
    # Interleave the bus and its anchors so machine noise hits both alike.
    for _ in range(runs):
        bus_rates.append(await _bus_rate(events))
        queue_rates.append(await _queue_rate(events))
        bus_latencies.append(await _bus_latency_us(events))
        queue_latencies.append(await _queue_latency_us(events))
    return (
        statistics.median(bus_rates),
        statistics.median(queue_rates),
        statistics.median(bus_latencies),
        statistics.median(queue_latencies),
    )


def run(quick: bool) -> list[Figure]:
    """Measure the bus's throughput and publish latency beside asyncio.Queue."""
    n, runs = (20_000, 3) if quick else (200_000, 5)
    rate, queue_rate, latency, queue_latency = asyncio.run(_measure(n, runs))
    return [
        Figure(
            area=AREA,
            name="publish -> handler throughput, 1 subscriber",
            value=rate,
            unit="events/s",
            target=">= 200,000 events/s",
            met=rate >= THROUGHPUT_TARGET,
            anchor_name="asyncio.Queue put/get round trip",
            anchor_value=queue_rate,
            note=f"median of {runs} runs of {n:,} MetricsRecorded events",
        ),
        Figure(
            area=AREA,
            name="await bus.publish latency (median)",
            value=latency,
            unit="us",
            target="<= 5 us",
            met=latency <= LATENCY_TARGET_US,
            anchor_name="await asyncio.Queue.put (median)",
            anchor_value=queue_latency,
            note=f"median of {runs} runs, each the median of {n:,} calls; subscriber draining",
        ),
    ]
