"""``secperf monitor``: run the configured collectors into the store, with a live view.

The collectors publish on the embedded runtime's bus and the store writer
persists what flows, exactly as under ``secperf up``. A small subscriber keeps
the latest host figures for the view; it never touches the store. Ctrl-C (or
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

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from secperf.config import LoadedConfig
from secperf.events import Event, MetricsRecorded
from secperf.perf.collectors.factory import CollectorPlan, build_collectors
from secperf.perf.collectors.runner import CollectorRunner, CollectorStats
from secperf.runtime import Runtime

__all__ = [
    "LatestFigures",
    "MonitorOptions",
    "MonitorSummary",
    "build_plan",
    "render_summary",
    "render_view",
    "run_monitor",
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
    console: Console,
    live: bool,
    stop: asyncio.Event | None = None,
    store_url: str | None = None,
) -> MonitorSummary:
    """Collect until ``stop`` is set, SIGINT/SIGTERM arrives or ``duration_s`` passes.

    With ``live`` a Rich live table is redrawn every ``refresh_s``; without it
    (output not a terminal) nothing is printed here and the caller prints the
    returned summary.
    """
    stop = stop or asyncio.Event()
    figures = LatestFigures()
    started = time.monotonic()
    async with Runtime(loaded.config, store_url=store_url) as runtime:
        assert runtime.bus is not None and runtime.writer is not None
        bus, writer = runtime.bus, runtime.writer
        await bus.subscribe("metrics.recorded", figures.handle, name="monitor-view", maxsize=64)
        runner = CollectorRunner(bus, plan.collectors)
        restore = _on_signals(stop.set)
        quiet = _OncePerMessage()
        scrape_log = logging.getLogger("secperf.perf.collectors.prometheus")
        scrape_log.addFilter(quiet)
        try:
            await runner.start()

            def view() -> RenderableType:
                return render_view(
                    figures, plan, runner.stats(), writer.samples_written, bus.stats().dropped,
                    time.monotonic() - started,
                )  # fmt: skip

            deadline = started + options.duration_s if options.duration_s else None
            with Live(view(), console=console, auto_refresh=False) if live else _NoLive() as shown:
                while not stop.is_set():
                    wait = options.refresh_s
                    if deadline is not None:
                        wait = min(wait, deadline - time.monotonic())
                        if wait <= 0:
                            break
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), wait)
                    shown.update(view(), refresh=True)
        finally:
            restore()
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
        targets=_targets(plan),
        figures=figures,
    )


def render_summary(
    summary: MonitorSummary, plan: CollectorPlan, *, final_view: bool
) -> RenderableType:
    """The closing output: the last view (when no live view was shown) and a summary line."""
    line = Text(
        f"stored {summary.samples_written} samples from {len(summary.collectors)} collector(s) "
        f"in {summary.elapsed_s:.1f} s; {summary.bus_dropped} metric batches dropped"
    )
    if summary.samples_rejected:
        line.append(f"; {summary.samples_rejected} invalid samples rejected", style="red")
    if not final_view:
        return line
    view = render_view(
        summary.figures, plan, summary.collectors, summary.samples_written,
        summary.bus_dropped, summary.elapsed_s,
    )  # fmt: skip
    return Group(view, line)


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


class _NoLive:
    """Stands in for ``rich.live.Live`` when the output is not a terminal."""

    def __enter__(self) -> _NoLive:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def update(self, renderable: RenderableType, *, refresh: bool = False) -> None:
        """Nothing to redraw."""


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


def _targets(plan: CollectorPlan) -> list[tuple[str, str, str, str | None]]:
    """(job, url, state, error) of every scrape target; state is up, down or pending."""
    rows: list[tuple[str, str, str, str | None]] = []
    for collector in plan.prometheus():
        for target in collector.targets:
            status = collector.status[target.url]
            state = "up" if status.up else "down"
            if status.last_scrape_ms is None:
                state = "pending"
            rows.append((target.job, target.url, state, status.last_error))
    return rows


# --------------------------------------------------------------------------- rendering


def _bytes(value: float | None) -> str:
    if value is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{_bytes(value)}/s"


def _num(value: float | None, fmt: str = "{:.1f}") -> str:
    return "-" if value is None else fmt.format(value)


def render_view(
    figures: LatestFigures,
    plan: CollectorPlan,
    stats: dict[str, CollectorStats],
    samples_written: int,
    bus_dropped: int,
    elapsed_s: float,
) -> RenderableType:
    """The live view: host figures, secperf's own cost, scrape targets, counters."""
    h = figures.host.get
    host = Table(title="host", show_header=False, box=None, padding=(0, 2))
    host.add_column(style="bold")
    host.add_column(justify="right")
    host.add_row("CPU", _num(h("cpu_percent"), "{:.1f} %"))
    used, total = h("memory_used_bytes"), h("memory_total_bytes")
    memory = _num(h("memory_percent"), "{:.1f} %")
    if used is not None and total is not None:
        memory += f"  ({_bytes(used)} of {_bytes(total)})"
    host.add_row("memory", memory)
    host.add_row("swap", _num(h("swap_percent"), "{:.1f} %"))
    host.add_row(
        "load 1/5/15m",
        " ".join(_num(h(n), "{:.2f}") for n in ("load_1m", "load_5m", "load_15m")),
    )
    host.add_row(
        "disk read/write", f"{_rate(h('disk_read_bytes'))} / {_rate(h('disk_write_bytes'))}"
    )
    host.add_row("net recv/sent", f"{_rate(h('net_recv_bytes'))} / {_rate(h('net_sent_bytes'))}")
    if figures.own:
        host.add_row(
            "secperf itself",
            f"{_num(figures.own.get('process_cpu_percent'), '{:.1f} %')} CPU, "
            f"{_bytes(figures.own.get('memory_rss_bytes'))} RSS",
        )

    parts: list[RenderableType] = [host]
    targets = _targets(plan)
    if targets:
        table = Table(title="scrape targets", padding=(0, 1))
        for column in ("job", "url", "state", "error"):
            table.add_column(column, overflow="fold")
        for job, url, state, error in targets:
            table.add_row(job, url, Text(state, "green" if state == "up" else "red"), error or "")
        parts.append(table)

    collectors = Table(title="collectors", padding=(0, 1))
    for column in ("collector", "interval", "collections", "samples", "failures", "missed"):
        collectors.add_column(column, justify="left" if column == "collector" else "right")
    for name, s in stats.items():
        collectors.add_row(
            name,
            f"{s.interval_s:g} s",
            str(s.collections),
            str(s.samples),
            str(s.failures),
            str(s.missed_ticks),
        )
    parts.append(collectors)
    off = ", ".join(f"{name} ({why})" for name, why in plan.switched_off.items())
    footer = (
        f"{elapsed_s:.0f} s elapsed, {samples_written} samples stored, "
        f"{bus_dropped} metric batches dropped by the bus"
    )
    if off:
        footer += f"; off: {off}"
    parts.append(Text(footer, style="dim"))
    return Group(*parts)
