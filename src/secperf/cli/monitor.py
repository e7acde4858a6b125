"""``secperf monitor``: collect metrics into the store, with a live view."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from secperf.cli.common import console, duration_option, fail, load_or_exit


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
) -> None:
    """Collect system, process and Prometheus metrics into the store, with a live view."""
    # The collectors and the store load only when monitoring runs.
    from secperf.commands.monitor import MonitorOptions, build_plan, render_summary, run_monitor

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
    live = out.is_terminal
    summary = asyncio.run(run_monitor(loaded, plan, options, console=out, live=live))
    out.print(render_summary(summary, plan, final_view=not live))
