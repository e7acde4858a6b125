"""``secperf monitor``: collect metrics into the store, with a live view."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from secperf.cli.common import console, duration_option, fail, load_or_exit

if TYPE_CHECKING:
    from rich.console import RenderableType

    from secperf.commands.monitor import MonitorSummary, MonitorView
    from secperf.commands.summary import LiveSummary
    from secperf.perf.collectors.factory import CollectorPlan


def monitor(
    ctx: typer.Context,
    duration: Annotated[
        str | None,
        typer.Option("--duration", "-d", help="Stop after this long, e.g. 30s (default: Ctrl-C)."),
    ] = None,
    interval: Annotated[
        str | None,
        typer.Option("--interval", "-i", help="System and process interval, e.g. 1s or 500ms."),
    ] = None,
    no_system: Annotated[
        bool, typer.Option("--no-system", help="Do not collect host metrics.")
    ] = False,
    no_process: Annotated[
        bool, typer.Option("--no-process", help="Do not collect process metrics.")
    ] = False,
    no_prometheus: Annotated[
        bool, typer.Option("--no-prometheus", help="Do not scrape Prometheus targets.")
    ] = False,
    no_live: Annotated[
        bool,
        typer.Option("--no-live", help="No live summary: print the figures once, at the end."),
    ] = False,
) -> None:
    """Collect system, process and Prometheus metrics into the store, with a live view."""
    # The collectors, the store and Rich's live display load only when monitoring runs.
    import asyncio

    from rich.live import Live

    from secperf.commands.monitor import MonitorOptions, build_plan, run_monitor

    options = MonitorOptions(
        duration_s=duration_option(duration, "--duration"),
        interval_s=duration_option(interval, "--interval"),
        system=not no_system,
        process=not no_process,
        prometheus=not no_prometheus,
    )
    loaded = load_or_exit(ctx)
    try:
        plan = build_plan(loaded, options)
    except ValueError as exc:
        fail(str(exc))
    if not plan.collectors:
        off = "; ".join(f"{name}: {why}" for name, why in plan.switched_off.items())
        fail(f"nothing to collect: every collector is switched off ({off or 'none configured'})")
    out = console()
    # Pipes and CI logs get plain output: the live summary redraws in place.
    live = out.is_terminal and not no_live
    if live:
        screen = LiveScreen()
        with Live(console=out, get_renderable=screen.render, refresh_per_second=2):
            try:
                summary = asyncio.run(
                    run_monitor(
                        loaded, plan, options, on_view=screen.on_view, on_summary=screen.on_summary
                    )
                )
            finally:
                screen.finished = True  # the last frame, drawn when Live stops, says it is over
    else:
        # Not a terminal: nothing is drawn while collecting; the summary shows the last view.
        summary = asyncio.run(run_monitor(loaded, plan, options))
    out.print(render_summary(summary, plan, final_view=not live))


# --------------------------------------------------------------------------- display


class LiveScreen:
    """What the live display draws: the newest summary and collector figures.

    The callbacks run on the event loop; Rich's refresh thread calls ``render``
    and reads whatever was set last (each is replaced whole, never changed).
    """

    def __init__(self) -> None:
        self.view: MonitorView | None = None
        self.summary: LiveSummary | None = None
        self.finished = False

    def on_view(self, view: MonitorView) -> None:
        """Keep the newest collector figures."""
        self.view = view

    def on_summary(self, summary: LiveSummary) -> None:
        """Keep the newest summary."""
        self.summary = summary

    def status(self) -> str | None:
        """One line on the collectors: time, samples stored, drops (if any), scrape targets."""
        view = self.view
        if view is None:
            return None
        line = f"{view.elapsed_s:.0f} s · {view.samples_written} samples stored"
        if view.bus_dropped:
            line += f" · {view.bus_dropped} metric batches dropped"
        if view.targets:
            up = sum(1 for _, _, state, _ in view.targets if state == "up")
            down = [job for job, _, state, _ in view.targets if state == "down"]
            line += f" · targets {up} up of {len(view.targets)}"
            if down:
                line += f" ({', '.join(down)} down)"
        return line if self.finished else line + " · Ctrl-C stops"

    def render(self) -> RenderableType:
        """The live summary, or a line while the first one is being read."""
        from rich.text import Text

        from secperf.cli.live_summary import render_live_summary

        if self.summary is None:
            return Text("secperf monitor: starting the collectors …", style="dim")
        return render_live_summary(self.summary, title="monitor", status=self.status())


def render_summary(
    summary: MonitorSummary, plan: CollectorPlan, *, final_view: bool
) -> RenderableType:
    """The closing output: the last view (when no live view was shown) and a summary line."""
    from rich.console import Group
    from rich.text import Text

    line = Text(
        f"stored {summary.samples_written} samples from {len(summary.collectors)} collector(s) "
        f"in {summary.elapsed_s:.1f} s; {summary.bus_dropped} metric batches dropped"
    )
    if summary.samples_rejected:
        line.append(f"; {summary.samples_rejected} invalid samples rejected", style="red")
    if not final_view:
        return line
    return Group(render_view(summary.last_view(), plan), line)


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


def render_view(view: MonitorView, plan: CollectorPlan) -> RenderableType:
    """The view printed at the end without a live summary: host, own cost, targets, counters."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from secperf.config.units import mask_url

    figures = view.figures
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
    targets = view.targets
    if targets:
        table = Table(title="scrape targets", padding=(0, 1))
        for column in ("job", "url", "state", "error"):
            table.add_column(column, overflow="fold")
        for job, url, state, error in targets:
            # scrape_targets masks the URL (a target may carry ?token=); so does the table.
            table.add_row(
                job, mask_url(url), Text(state, "green" if state == "up" else "red"), error or ""
            )
        parts.append(table)

    collectors = Table(title="collectors", padding=(0, 1))
    for column in ("collector", "interval", "collections", "samples", "failures", "missed"):
        collectors.add_column(column, justify="left" if column == "collector" else "right")
    for name, s in view.stats.items():
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
        f"{view.elapsed_s:.0f} s elapsed, {view.samples_written} samples stored, "
        f"{view.bus_dropped} metric batches dropped by the bus"
    )
    if off:
        footer += f"; off: {off}"
    parts.append(Text(footer, style="dim"))
    return Group(*parts)
