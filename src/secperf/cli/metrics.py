"""``secperf metrics list`` and ``secperf metrics query``: read stored series."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from secperf.cli.common import console, fail, load_or_exit
from secperf.config import parse_duration_ms
from secperf.model import ExitCode, MetricType
from secperf.timefmt import clock_seconds

if TYPE_CHECKING:
    from secperf.commands.metrics import SeriesSummary, StoredMetric

app = typer.Typer(
    help="List stored metrics and query their series.", no_args_is_help=True, rich_markup_mode=None
)


@app.command("list")
def metrics_list(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option("--host", help="Only series of this host.")] = None,
) -> None:
    """Every stored metric with its unit, kind and number of series."""
    # The store (and numpy) load only when a command reads it.
    from secperf.commands.metrics import stored_metrics
    from secperf.commands.scanning import open_store

    loaded = load_or_exit(ctx)
    with open_store(loaded) as store:
        console().print(metric_table(stored_metrics(store, host)))


@app.command("query")
def metrics_query(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Metric name, e.g. cpu_percent.")],
    labels: Annotated[
        list[str] | None, typer.Option("--labels", "-l", help="Label matcher NAME=VALUE (repeat).")
    ] = None,
    since: Annotated[str, typer.Option("--since", help="How far back, e.g. 15m, 1h, 24h.")] = "1h",
    step: Annotated[
        str | None, typer.Option("--step", help="Downsample to this step, e.g. 10s.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """A metric's series over a time range, downsampled, with a trend line."""
    from secperf.commands.metrics import parse_labels, points_json, series_summaries
    from secperf.commands.scanning import open_store
    from secperf.events import now_ms

    try:
        matchers = parse_labels(labels or [])
        since_ms = parse_duration_ms(since)
        step_ms = parse_duration_ms(step) if step else None
    except ValueError as exc:
        fail(str(exc))
    if since_ms <= 0:
        fail("--since: must be longer than 0")
    if step_ms is not None and step_ms <= 0:
        fail("--step: must be longer than 0")
    loaded = load_or_exit(ctx)
    end = now_ms()
    with open_store(loaded) as store:
        points = store.query(
            name,
            matchers or None,
            end - since_ms,
            end,
            step_ms=step_ms,
            max_points=None if step_ms else 500,
        )
    if as_json:
        typer.echo(json.dumps(points_json(points)))
        return
    if not points:
        fail(f"no samples of {name} in the last {since}", ExitCode.CANNOT_EVALUATE)
    known = MetricType.lookup(name)
    console().print(query_table(series_summaries(points), known.unit if known else ""))


# --------------------------------------------------------------------------- display


def metric_table(metrics: Sequence[StoredMetric]) -> Table:
    """Every stored metric name with its unit, kind and series count."""
    table = Table(title="stored metrics")
    table.add_column("metric")
    table.add_column("unit")
    table.add_column("kind")
    table.add_column("series", justify="right")
    table.add_column("labels", overflow="fold")
    for m in metrics:
        table.add_row(m.name, m.unit, m.kind, str(m.series), ", ".join(m.label_keys))
    return table


def query_table(summaries: Sequence[SeriesSummary], unit: str) -> Table:
    """One row per series: labels, range, min / avg / max and a sparkline."""
    title = f"{summaries[0].name} ({unit or 'no unit'})" if summaries else "no data"
    table = Table(title=title)
    table.add_column("labels", overflow="fold")
    table.add_column("from")
    table.add_column("to")
    table.add_column("points", justify="right")
    table.add_column("min", justify="right")
    table.add_column("avg", justify="right")
    table.add_column("max", justify="right")
    table.add_column("trend")
    for s in summaries:
        labels = ", ".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
        table.add_row(
            labels or "-",
            clock_seconds(s.first_ms),
            clock_seconds(s.last_ms),
            str(s.points),
            f"{s.low:.4g}",
            f"{s.mean:.4g}",
            f"{s.high:.4g}",
            s.trend,
        )
    return table
