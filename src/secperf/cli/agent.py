"""``secperf agent``: collect and scan on this host, publish to a central bus."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from secperf.cli.common import duration_option, err_console, fail, load_or_exit


def agent(
    ctx: typer.Context,
    bus_url: Annotated[
        str | None,
        typer.Option("--bus", help="NATS URL of the central bus (default: [bus] url)."),
    ] = None,
    host: Annotated[
        str | None,
        typer.Option("--host", help="Host label of everything published (default: [agent])."),
    ] = None,
    scan_root: Annotated[
        Path | None,
        typer.Option("--scan-root", help="Directory to scan (default: the project root)."),
    ] = None,
    no_scan: Annotated[bool, typer.Option("--no-scan", help="Collect metrics only.")] = False,
    scan_interval: Annotated[
        str | None,
        typer.Option("--scan-interval", help="Time between scans, e.g. 30m (default: [agent])."),
    ] = None,
    duration: Annotated[
        str | None, typer.Option("--duration", help="Stop after this long, e.g. 10m.")
    ] = None,
) -> None:
    """Collect and scan on this host and publish to a central bus."""
    # The bus client (NATS), the collectors and the scanners load only when the agent runs.
    import asyncio
    import logging

    from secperf.bus.nats import BusConnectError
    from secperf.commands.agent import AgentOptions, run_agent
    from secperf.config import mask_url
    from secperf.model import ExitCode

    options = AgentOptions(
        bus_url=bus_url,
        host=host,
        scan_root=scan_root,
        scan=not no_scan,
        scan_interval_s=duration_option(scan_interval, "--scan-interval"),
        duration_s=duration_option(duration, "--duration"),
    )
    if scan_root is not None and not scan_root.is_dir():
        fail(f"--scan-root: {scan_root} is not a directory")
    loaded = load_or_exit(ctx)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        run = asyncio.run(run_agent(loaded, options))
    except ValueError as exc:
        fail(str(exc))
    except BusConnectError as exc:
        fail(str(exc), ExitCode.CANNOT_EVALUATE)
    err_console().print(
        f"agent {run.host} stopped: {run.published} events published to"
        f" {mask_url(run.bus_url)}, {run.dropped} dropped",
        markup=False,
    )
