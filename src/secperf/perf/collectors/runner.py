"""Runs collectors on their intervals and publishes each collection on the bus.

Each collector has its own task on a drift-free monotonic schedule (tick *k*
is at ``start + k * interval``); a collection that overruns its interval skips
the ticks it missed (counted) instead of bunching up. ``collect`` runs in a
worker thread so a slow scrape never blocks the event loop. One collection
becomes one ``MetricsRecorded``; that event is droppable, so under overload
the bus drops batches (and counts them) rather than slowing the host.
A collector that raises is logged and counted and runs again next interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from secperf.bus.interface import EventBus
from secperf.events import MetricsRecorded, now_ms
from secperf.perf.collectors.interface import Collector, check_interval

log = logging.getLogger(__name__)


@dataclass
class CollectorStats:
    """Counters of one collector under the runner."""

    name: str
    interval_s: float
    collections: int = 0
    failures: int = 0
    samples: int = 0
    batches_published: int = 0
    missed_ticks: int = 0
    last_error: str | None = None
    last_duration_s: float | None = None


class CollectorRunner:
    """Runs ``collectors`` on ``bus`` until stopped.

    ``intervals`` overrides a collector's interval by name; an interval of
    None switches that collector off (configuration's way to disable one).
    """

    def __init__(
        self,
        bus: EventBus,
        collectors: Iterable[Collector],
        *,
        intervals: Mapping[str, float | None] | None = None,
        stop_timeout_s: float = 5.0,
    ) -> None:
        self.bus = bus
        overrides = dict(intervals or {})
        chosen: list[tuple[Collector, float]] = []
        names: set[str] = set()
        for collector in collectors:
            if collector.name in names:
                raise ValueError(
                    f"two collectors are named {collector.name!r}; names must be unique"
                )
            names.add(collector.name)
            if collector.name in overrides:
                interval = overrides[collector.name]
                if interval is None:
                    continue
                interval = check_interval(interval, f"interval of collector {collector.name!r}")
            else:
                interval = collector.interval_s
            chosen.append((collector, interval))
        unknown = set(overrides) - names
        if unknown:
            raise ValueError(
                f"interval given for unknown collector(s) {', '.join(sorted(unknown))}; "
                f"known: {', '.join(sorted(names)) or 'none'}"
            )
        self._collectors = chosen
        self._stats = {c.name: CollectorStats(c.name, interval) for c, interval in chosen}
        self._stop_timeout_s = stop_timeout_s
        self._stopping: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def collectors(self) -> list[Collector]:
        """The collectors that run (those switched off are left out)."""
        return [c for c, _ in self._collectors]

    @property
    def running(self) -> bool:
        return bool(self._tasks)

    def stats(self) -> dict[str, CollectorStats]:
        """A snapshot of every running collector's counters."""
        return {name: CollectorStats(**vars(s)) for name, s in self._stats.items()}

    async def start(self) -> None:
        """Start one task per collector; the first collection happens at once. Idempotent."""
        if self._tasks:
            return
        await self.bus.start()
        self._stopping = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self._run(c, interval), name=f"collector-{c.name}")
            for c, interval in self._collectors
        ]

    async def stop(self) -> None:
        """Stop every collector, letting a collection in progress finish briefly; close them."""
        if not self._tasks or self._stopping is None:
            return
        self._stopping.set()
        tasks, self._tasks = self._tasks, []
        _done, pending = await asyncio.wait(tasks, timeout=self._stop_timeout_s)
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for collector in self.collectors:
            try:
                await asyncio.to_thread(collector.close)
            except Exception:
                log.exception("collector %s failed to close", collector.name)

    async def _run(self, collector: Collector, interval: float) -> None:
        assert self._stopping is not None
        stopping = self._stopping
        stats = self._stats[collector.name]
        loop = asyncio.get_running_loop()
        start = loop.time()
        tick = 0
        while not stopping.is_set():
            await self._collect_once(collector, stats)
            tick += 1
            now = loop.time()
            due = start + tick * interval
            if due < now:
                missed = int((now - due) // interval) + 1
                stats.missed_ticks += missed
                tick += missed
                due = start + tick * interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), due - now)

    async def _collect_once(self, collector: Collector, stats: CollectorStats) -> None:
        started = time.perf_counter()
        try:
            samples = await asyncio.to_thread(collector.collect, now_ms())
        except Exception as exc:
            stats.failures += 1
            stats.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("collector %s failed", collector.name)
            return
        finally:
            stats.collections += 1
            stats.last_duration_s = time.perf_counter() - started
        stats.last_error = None
        if not samples:
            return
        stats.samples += len(samples)
        try:
            await self.bus.publish(MetricsRecorded(samples=tuple(samples), host=collector.host))
        except Exception as exc:  # a closed bus must not kill the collector's task
            stats.failures += 1
            stats.last_error = f"publish failed: {type(exc).__name__}: {exc}"
            log.warning("collector %s could not publish: %s", collector.name, exc)
            return
        stats.batches_published += 1
