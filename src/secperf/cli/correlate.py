"""``secperf correlate``: rank the metrics that scans affect."""

from __future__ import annotations

from typing import Annotated

import typer

from secperf.cli.common import console, err_console, load_or_exit


def correlate(
    ctx: typer.Context,
    since: Annotated[
        str,
        typer.Option("--since", metavar="DURATION", help="How far back to look: 24h, 7d, 90m."),
    ] = "24h",
    metric: Annotated[
        list[str] | None,
        typer.Option("--metric", "-m", metavar="NAME", help="Only this metric (repeat for more)."),
    ] = None,
    alpha: Annotated[
        float, typer.Option("--alpha", help="False discovery rate for significance.")
    ] = 0.01,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Rank the metrics that scans affect, with the evidence; exit 3 without scans or data."""
    # The statistics (scipy) and the store load only when a correlation runs.
    from secperf.commands.correlate import correlate_command

    loaded = load_or_exit(ctx)
    code = correlate_command(
        loaded,
        since=since,
        metrics=metric,
        alpha=alpha,
        as_json=as_json,
        console=console(),
        err_console=err_console(),
    )
    if code:
        raise typer.Exit(code)
