"""``secperf metrics list`` and ``secperf metrics query``: read stored series."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated

import typer

from secperf.cli.common import console, fail, load_or_exit, open_store

if TYPE_CHECKING:
    from rich.table import Table

    from secperf.commands.metrics import SeriesSummary, StoredMetric
    from secperf.store import SeriesPoints

app = typer.Typer(
    help="List stored metrics and query their series.", no_args_is_help=True, rich_markup_mode=None
)

#: Width of the trend line in a wide terminal, and the least it shrinks to.
TREND_WIDTH = 40
MIN_TREND_WIDTH = 10
#: What the other columns of the query table take at most (labels at their least).
QUERY_FIXED_WIDTH = 60
#: Units as the tables show them (``--json`` keeps the names of ``MetricType``).
SHORT_UNITS = {
    "bytes_per_second": "B/s",
    "operations_per_second": "ops/s",
    "requests_per_second": "req/s",
    "milliseconds": "ms",
    "percent": "%",
}


@app.command("list")
def metrics_list(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option("--host", help="Only series of this host.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every stored metric with its unit, kind and number of series."""
    # The store (and numpy) load only when a command reads it.
    from secperf.commands.metrics import stored_metrics

    loaded = load_or_exit(ctx)
    with open_store(loaded) as store:
        metrics = stored_metrics(store, host)
    if as_json:
        typer.echo(json.dumps({"metrics": [asdict(m) for m in metrics]}, indent=2))
        return
    if not metrics:
        console().print("no stored metrics: run `secperf monitor` or `secperf scan`", markup=False)
        return
    console().print(metric_table(metrics))


@app.command("query")
def metrics_query(
    ctx: typer.Context,
    name: Annotated[
        str,
        typer.Argument(help='Metric name or selector, e.g. cpu_percent or x{job="api"}.'),
    ],
    labels: Annotated[
        list[str] | None, typer.Option("--labels", "-l", help="Label matcher NAME=VALUE (repeat).")
    ] = None,
    since: Annotated[str, typer.Option("--since", help="How far back, e.g. 15m, 1h, 24h.")] = "1h",
    step: Annotated[
        str | None,
        typer.Option(
            "--step", help="Downsample to buckets of this length, e.g. 10s (times: bucket starts)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """A metric's series over a time range, downsampled, with a trend line."""
    from secperf.commands.metrics import parse_query_selector, points_json, series_summaries
    from secperf.events import now_ms
    from secperf.model import ExitCode, MetricType

    try:
        selector = parse_query_selector(name, labels or [])
    except ValueError as exc:
        fail(str(exc))  # names the metric or --labels item
    since_ms = _duration_ms(since, "--since")
    step_ms = None if step is None else _duration_ms(step, "--step")
    if since_ms <= 0:
        fail("--since: must be longer than 0")
    if step_ms is not None and step_ms <= 0:
        fail("--step: must be longer than 0")
    loaded = load_or_exit(ctx)
    end = now_ms()
    with open_store(loaded) as store:
        points = store.query(
            selector.name,
            selector.equality or None,
            end - since_ms,
            end,
            step_ms=step_ms,
            max_points=None if step_ms else 500,
        )
    points = [p for p in points if selector.keep(p.name, p.labels)]
    if as_json:
        typer.echo(json.dumps(points_json(points)))
        return
    if not points:
        fail(f"no samples of {name} in the last {since}", ExitCode.CANNOT_EVALUATE)
    known = MetricType.lookup(selector.name)
    out = console()
    trend = max(MIN_TREND_WIDTH, min(TREND_WIDTH, out.width - QUERY_FIXED_WIDTH))
    out.print(
        query_table(
            series_summaries(points), known.unit if known else "", points, trend_width=trend
        )
    )


def _duration_ms(value: str, option: str) -> int:
    """A duration option in ms; exit 2 naming ``option`` when it is no duration."""
    from secperf.config import parse_duration_ms

    try:
        return parse_duration_ms(value)
    except ValueError as exc:
        fail(f"{option}: {exc}")


# --------------------------------------------------------------------------- display


def metric_table(metrics: Sequence[StoredMetric]) -> Table:
    """Every stored metric name with its unit, kind and series count.

    Fits 80 columns: units are shortened (B/s, ms, %), only the label keys
    wrap; an unknown unit or kind is "-".
    """
    from rich import box
    from rich.table import Table

    table = Table(
        title="stored metrics",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column("metric", no_wrap=True)
    table.add_column("unit", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("series", justify="right", no_wrap=True)
    table.add_column("labels", overflow="fold", min_width=len("labels"))
    for m in metrics:
        table.add_row(
            m.name,
            SHORT_UNITS.get(m.unit, m.unit) or "-",
            m.kind or "-",
            str(m.series),
            ", ".join(m.label_keys) or "-",
        )
    return table


def _step_text(step_ms: int) -> str:
    from secperf.config import format_duration_ms

    return format_duration_ms(step_ms)


def query_table(
    summaries: Sequence[SeriesSummary],
    unit: str,
    points: Sequence[SeriesPoints] = (),
    *,
    trend_width: int = TREND_WIDTH,
) -> Table:
    """One row per series: labels, first and last time, points, min / avg / max, a trend line.

    Downsampled points are stamped at the start of their bucket; the title says
    so, with the bucket length. ``points`` (the queried series, in the order of
    ``summaries``) redraw the trend line ``trend_width`` wide so that the table
    fits the terminal.
    """
    from rich import box
    from rich.table import Table

    from secperf.commands.metrics import sparkline
    from secperf.timefmt import clock_seconds

    step = next((p.step_ms for p in points if p.step_ms), None)
    title = f"{summaries[0].name} ({unit or 'no unit'})" if summaries else "no data"
    if step is not None and step > 1:
        title += f"; times are bucket starts, {_step_text(step)} buckets"
    table = Table(
        title=title,
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
        min_width=len(title),  # the title on one line: a narrow table would wrap it
    )
    table.add_column("labels", overflow="fold", min_width=len("labels"))
    table.add_column("first", no_wrap=True)
    table.add_column("last", no_wrap=True)
    table.add_column("points", justify="right", no_wrap=True)
    table.add_column("min", justify="right", no_wrap=True)
    table.add_column("avg", justify="right", no_wrap=True)
    table.add_column("max", justify="right", no_wrap=True)
    table.add_column("trend", no_wrap=True)
    for i, s in enumerate(summaries):
        labels = ", ".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
        trend = sparkline(points[i].values, trend_width) if i < len(points) else s.trend
        table.add_row(
            labels or "-",
            clock_seconds(s.first_ms),
            clock_seconds(s.last_ms),
            str(s.points),
            f"{s.low:.4g}",
            f"{s.mean:.4g}",
            f"{s.high:.4g}",
            trend,
        )
    return table
