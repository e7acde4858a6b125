"""``secperf metrics list`` and ``secperf metrics query``: read stored series."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from secperf.cli.common import console, fail, load_or_exit
from secperf.config import parse_duration_ms
from secperf.model import ExitCode, MetricType

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
    from secperf.commands.metrics import metric_table
    from secperf.commands.scanning import open_store

    loaded = load_or_exit(ctx)
    with open_store(loaded) as store:
        console().print(metric_table(store, host))


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
    from secperf.commands.metrics import parse_labels, points_json, query_table
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
    console().print(query_table(points, known.unit if known else ""))
