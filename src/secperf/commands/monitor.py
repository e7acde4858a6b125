"""``secperf monitor``: run the configured collectors into the store, feeding a live view.

The collectors publish on the embedded runtime's bus and the store writer
persists what flows, exactly as under ``secperf up``. A small subscriber keeps
the latest host figures for the view (``MonitorView``, handed to a callback
the CLI draws); it never touches the store. Ctrl-C (or
SIGTERM, or the end of ``--duration``) stops the collectors, drains the bus and
flushes the writer, so every collected sample is stored before exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from secperf.commands.summary import LiveSummary, SummaryPoller, summary_series
from secperf.config import LoadedConfig
from secperf.events import Event, MetricsRecorded
from secperf.perf.collectors.factory import CollectorPlan, build_collectors
from secperf.perf.collectors.runner import CollectorRunner, CollectorStats
from secperf.runtime import Runtime
from secperf.store.maintenance import StoreMaintenance

__all__ = [
    "LatestFigures",
    "MonitorOptions",
    "MonitorSummary",
    "MonitorView",
    "build_plan",
    "run_monitor",
    "scrape_targets",
]

# The host-wide figures the view shows: only series labelled with nothing but
# ``host`` (the totals, not one core or one interface).
_HOST_METRICS = frozenset(
    {
        "cpu_percent",
        "memory_percent",
        "memory_used_bytes",
        "memory_total_bytes",
        "swap_percent",
        "load_1m",
        "load_5m",
        "load_15m",
        "disk_read_bytes",
        "disk_write_bytes",
        "net_sent_bytes",
        "net_recv_bytes",
    }
)
_SELF_METRICS = frozenset({"process_cpu_percent", "memory_rss_bytes"})


@dataclass(frozen=True, slots=True)
class MonitorOptions:
    """What the command line may change: how long, how often, which collectors."""

    duration_s: float | None = None
    interval_s: float | None = None
    system: bool = True
    process: bool = True
    prometheus: bool = True
    refresh_s: float = 1.0


@dataclass
class MonitorSummary:
    """What one monitoring session did."""

    elapsed_s: float
    samples_written: int
    samples_rejected: int
    bus_dropped: int
    collectors: dict[str, CollectorStats] = field(default_factory=dict)
    targets: list[tuple[str, str, str, str | None]] = field(default_factory=list)
    figures: LatestFigures = field(default_factory=lambda: LatestFigures())

    def last_view(self) -> MonitorView:
        """The view as it stood when monitoring ended."""
        return MonitorView(
            figures=self.figures,
            targets=self.targets,
            stats=self.collectors,
            samples_written=self.samples_written,
            bus_dropped=self.bus_dropped,
            elapsed_s=self.elapsed_s,
        )


@dataclass(frozen=True, slots=True)
class MonitorView:
    """What the live view shows at one moment."""

    figures: LatestFigures
    targets: list[tuple[str, str, str, str | None]]
    stats: dict[str, CollectorStats]
    samples_written: int
    bus_dropped: int
    elapsed_s: float


class LatestFigures:
    """The newest host and own-process figures seen on the bus (a bus subscriber)."""

    def __init__(self) -> None:
        self.host: dict[str, float] = {}
        self.own: dict[str, float] = {}
        self.batches = 0
        self._pid = str(os.getpid())

    async def handle(self, event: Event) -> None:
        """Keep the latest value of each figure the view shows."""
        if not isinstance(event, MetricsRecorded):
            return
        self.batches += 1
        for sample in event.samples:
            if sample.name in _HOST_METRICS and len(sample.labels) == 1:
                self.host[sample.name] = sample.value
            elif sample.name in _SELF_METRICS and sample.labels.get("pid") == self._pid:
                self.own[sample.name] = sample.value


def build_plan(loaded: LoadedConfig, options: MonitorOptions) -> CollectorPlan:
    """The collectors to run; raises ValueError when the options are invalid."""
    return build_collectors(
        loaded.config.monitor,
        system=options.system,
        process=options.process,
        prometheus=options.prometheus,
        interval_s=options.interval_s,
    )


async def run_monitor(
    loaded: LoadedConfig,
    plan: CollectorPlan,
    options: MonitorOptions,
    *,
    on_view: Callable[[MonitorView], None] | None = None,
    on_summary: Callable[[LiveSummary], None] | None = None,
    stop: asyncio.Event | None = None,
    store_url: str | None = None,
) -> MonitorSummary:
    """Collect until ``stop`` is set, SIGINT/SIGTERM arrives or ``duration_s`` passes.

    ``on_view`` (a live view) gets the figures once the collectors have started
    and then every ``refresh_s``; ``on_summary`` (the live summary) gets the
    last scan, firing alerts and trends read from the store as often; the
    returned summary says what was stored.
    """
    stop = stop or asyncio.Event()
    figures = LatestFigures()
    started = time.monotonic()
    async with Runtime(loaded.config, store_url=store_url) as runtime:
        assert runtime.bus is not None and runtime.writer is not None
        bus, writer = runtime.bus, runtime.writer
        await bus.subscribe("metrics.recorded", figures.handle, name="monitor-view", maxsize=64)
        runner = CollectorRunner(bus, plan.collectors)
        assert runtime.store is not None
        maintenance = StoreMaintenance.from_config(runtime.store, loaded.config.store)
        maintenance.start()  # rollup and retention, in its own thread
        restore = _on_signals(stop.set)
        quiet = _OncePerMessage()
        scrape_log = logging.getLogger("secperf.perf.collectors.prometheus")
        scrape_log.addFilter(quiet)
        poller: SummaryPoller | None = None
        try:
            await runner.start()
            if on_summary is not None:
                assert runtime.store is not None
                poller = SummaryPoller(
                    runtime.store,
                    on_summary,
                    series=summary_series(loaded.config),
                    refresh_s=options.refresh_s,
                ).start()

            def show() -> None:
                if on_view is not None:
                    on_view(
                        MonitorView(
                            figures=figures,
                            targets=scrape_targets(plan),
                            stats=runner.stats(),
                            samples_written=writer.samples_written,
                            bus_dropped=bus.stats().dropped,
                            elapsed_s=time.monotonic() - started,
                        )
                    )

            show()
            deadline = started + options.duration_s if options.duration_s else None
            while not stop.is_set():
                wait = options.refresh_s
                if deadline is not None:
                    wait = min(wait, deadline - time.monotonic())
                    if wait <= 0:
                        break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait)
                show()
        finally:
            maintenance.stop()
            restore()
            if poller is not None:
                await poller.stop()
            await runner.stop()
            scrape_log.removeFilter(quiet)
        stats = runner.stats()
    # The runtime is closed: the bus drained and the writer flushed.
    return MonitorSummary(
        elapsed_s=time.monotonic() - started,
        samples_written=writer.samples_written,
        samples_rejected=writer.samples_rejected,
        bus_dropped=bus.stats().dropped,
        collectors=stats,
        targets=scrape_targets(plan),
        figures=figures,
    )


class _OncePerMessage(logging.Filter):
    """Lets each distinct message through once: the view shows a target's state anyway."""

    def __init__(self) -> None:
        super().__init__()
        self._seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message in self._seen:
            return False
        self._seen.add(message)
        return True


def _on_signals(callback: Callable[[], None]) -> Callable[[], None]:
    """Call ``callback`` on SIGINT and SIGTERM; returns a function restoring the defaults."""
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, callback)
        except (NotImplementedError, RuntimeError, ValueError):
            continue  # not the main thread, or a platform without it: Ctrl-C still raises
        installed.append(sig)

    def restore() -> None:
        for sig in installed:
            loop.remove_signal_handler(sig)

    return restore


def scrape_targets(plan: CollectorPlan) -> list[tuple[str, str, str, str | None]]:
    """(job, url, state, error) of every scrape target; state is up, down or pending.

    The URL is masked as ``mask_url`` masks it (a target may carry ``?token=``).
    """
    rows: list[tuple[str, str, str, str | None]] = []
    for collector in plan.prometheus():
        for target in collector.targets:
            status = collector.status[target.url]
            state = "up" if status.up else "down"
            if status.last_scrape_ms is None:
                state = "pending"
            rows.append((target.job, target.shown_url, state, status.last_error))
    return rows
