"""The compact live summary of ``monitor`` and ``up``, drawn with Rich.

``render_live_summary`` turns a ``LiveSummary`` (built in
``secperf.commands.summary``) into renderables: a title, the last scan, the
firing alerts of both kinds and a sparkline per key series. A pure function:
it fits 80 columns and about fifteen lines, and tests draw it without a
terminal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Group, RenderableType
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from secperf.timefmt import clock_seconds, iso_minutes

if TYPE_CHECKING:
    from secperf.commands.summary import FiringAlert, LiveSummary, ScanSummary, SeriesTrend

__all__ = ["ago", "render_live_summary", "sparkline"]

BARS = "▁▂▃▄▅▆▇█"
#: Alerts listed by name; the rest are counted.
TOP_ALERTS = 3

_SEVERITY_STYLE = {
    "critical": "bold white on red",
    "high": "bold red",
    "medium": "yellow",
    "low": "cyan",
    "info": "dim",
}
_STATUS_STYLE = {
    "ok": "green",
    "running": "cyan",
    "partial": "yellow",
    "failed": "bold red",
    "interrupted": "yellow",
    "abandoned": "red",
}


def sparkline(points: tuple[float | None, ...], *, low: float, high: float) -> str:
    """One block character per point on the scale ``low``..``high``; a gap is a space."""
    span = high - low
    cells = []
    for value in points:
        if value is None:
            cells.append(" ")
            continue
        level = 0 if span <= 0 else round((min(max(value, low), high) - low) / span * 7)
        cells.append(BARS[level])
    return "".join(cells)


def ago(ms: int, now_ms: int) -> str:
    """``12 s ago``, ``4 min ago``, ``3 h ago``; older than a day, the moment itself."""
    seconds = max(0, now_ms - ms) // 1000
    if seconds < 60:
        return f"{seconds} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86_400:
        return f"{seconds // 3600} h ago"
    return iso_minutes(ms)


def _figure(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "percent":
        return f"{value:.1f} %"
    if unit == "milliseconds":
        return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"
    if unit == "bytes":
        for prefix in ("B", "KiB", "MiB", "GiB"):
            if abs(value) < 1024:
                return f"{value:.0f} {prefix}" if prefix == "B" else f"{value:.1f} {prefix}"
            value /= 1024
        return f"{value:.1f} TiB"
    return f"{value:.3g}"


def _seconds(ms: float) -> str:
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"


def _short_target(target: str, width: int = 24) -> str:
    # A scan's target is usually an absolute path: its last part names the project.
    name = target.rstrip("/").rsplit("/", 1)[-1] or target
    return name if len(name) <= width else name[: width - 1] + "…"


def _scan_rows(scan: ScanSummary | None, now_ms: int) -> list[tuple[str, Text]]:
    if scan is None:
        return [("last scan", Text("none yet", style="dim"))]
    line = Text(_short_target(scan.target), style="bold")
    line.append(" · ")
    line.append(scan.status, style=_STATUS_STYLE.get(scan.status, ""))
    if scan.status == "running":
        line.append(f" for {_seconds(float(now_ms - scan.started_ms))}")
    else:
        line.append(f" · {ago(scan.finished_ms or scan.started_ms, now_ms)}")
        if scan.duration_ms is not None:
            line.append(f" · took {_seconds(scan.duration_ms)}")
    if scan.files is not None:
        line.append(f" · {scan.files} files")
    rows = [("last scan", line)]
    if scan.findings is not None:
        found = Text(f"{scan.findings}", style="bold")
        if scan.by_severity:
            found.append(": ")
            for i, (severity, count) in enumerate(scan.by_severity):
                if i:
                    found.append(", ")
                found.append(f"{severity} {count}", style=_SEVERITY_STYLE.get(severity, ""))
        if scan.new is not None:
            found.append(f" · {scan.new} new")
        rows.append(("findings", found))
    return rows


def _alert_line(alert: FiringAlert) -> Text:
    line = Text(f"{alert.severity:<8}", style=_SEVERITY_STYLE.get(alert.severity, ""))
    line.append(f" {alert.rule}", style="bold")
    if alert.value is not None:
        line.append(f" = {alert.value:.4g}")
    if alert.subject:
        line.append(f"  {alert.subject}", style="dim")
    return line


def _alert_rows(summary: LiveSummary) -> list[tuple[str, Text]]:
    firing = summary.firing
    if not firing:
        return [("alerts", Text("none firing", style="green"))]
    head = Text(f"{len(firing)} firing", style="bold red")
    head.append(
        f": {summary.firing_count('security')} security,"
        f" {summary.firing_count('performance')} performance"
    )
    rows = [("alerts", head)]
    rows += [("", _alert_line(alert)) for alert in firing[:TOP_ALERTS]]
    if len(firing) > TOP_ALERTS:
        rows.append(("", Text(f"and {len(firing) - TOP_ALERTS} more", style="dim")))
    return rows


def _trend_row(trend: SeriesTrend) -> tuple[str, Text]:
    if trend.last is None:
        return trend.label, Text("no samples yet", style="dim")
    known = [v for v in trend.points if v is not None]
    # Percentages keep their absolute scale, so a quiet host draws low bars.
    high = 100.0 if trend.unit == "percent" else max(known, default=0.0)
    line = Text(sparkline(trend.points, low=0.0, high=high), style="cyan")
    line.append(f" {_figure(trend.last, trend.unit)}", style="bold")
    line.append(f"  max {_figure(trend.high, trend.unit)}", style="dim")
    if trend.guard:
        line.append("  guard", style="magenta")
    return trend.label, line


def render_live_summary(
    summary: LiveSummary,
    *,
    title: str,
    status: str | None = None,
    progress: RenderableType | None = None,
) -> RenderableType:
    """The summary as Rich renderables: title, last scan, firing alerts, sparklines, status."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="bold", no_wrap=True, min_width=11)
    grid.add_column(no_wrap=True, overflow="ellipsis")
    for label, line in _scan_rows(summary.last_scan, summary.now_ms):
        grid.add_row(label, line)
    if summary.next_scan:
        grid.add_row("next scan", Text(summary.next_scan))
    for label, line in _alert_rows(summary):
        grid.add_row(label, line)
    minutes = max(1, round(summary.window_ms / 60_000))
    grid.add_row(Text(f"last {minutes} min", style="dim"), Text(""))
    for trend in summary.trends:
        grid.add_row(*_trend_row(trend))
    parts: list[RenderableType] = [
        Rule(f"secperf {title} · {clock_seconds(summary.now_ms)} UTC", align="left"),
        grid,
    ]
    if progress is not None:
        parts.append(progress)
    if status:
        parts.append(Text(status, style="dim", no_wrap=True, overflow="ellipsis"))
    return Group(*parts)
