"""``secperf up``: scan, watch, monitor, alert and serve the dashboard for a project."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError

from secperf.cli.common import fail, load_or_exit, project_root, say
from secperf.security.baseline import BaselineError

if TYPE_CHECKING:
    from secperf.security.validator import ScanReport


def up(
    ctx: typer.Context,
    path: Annotated[
        Path | None, typer.Argument(help="Project directory (default: the project root).")
    ] = None,
    host: Annotated[
        str | None, typer.Option("--host", help="Address (default: server.host).")
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", min=0, max=65535, help="Port (default: server.port).")
    ] = None,
    no_scan: Annotated[bool, typer.Option("--no-scan", help="Do not scan the project.")] = False,
    no_watch: Annotated[
        bool, typer.Option("--no-watch", help="Scan once; do not rescan edits.")
    ] = False,
    no_monitor: Annotated[
        bool, typer.Option("--no-monitor", help="Do not collect system metrics.")
    ] = False,
) -> None:
    """Scan, watch, monitor, alert and serve the dashboard for this project."""
    # The scanners, FastAPI and the store load only when the command runs.
    from secperf.alerts.rule_loading import RuleError, effective_rules
    from secperf.commands.up import UpOptions, run_up
    from secperf.web import UnsafeBindError

    loaded = load_or_exit(ctx, project=path)
    try:  # a rule that does not load is a configuration error, found before anything starts
        effective_rules(loaded.config.alerts).require_valid()
    except RuleError as exc:
        fail(str(exc))
    root = project_root(path, loaded)
    options = UpOptions(
        root=root,
        host=host,
        port=port,
        scan=not no_scan,
        monitor=not no_monitor,
        watch=not no_watch,
    )

    def on_report(report: ScanReport) -> None:
        m = report.metrics
        counts = ", ".join(f"{k} {v}" for k, v in sorted(m.vulnerability_severity_counts.items()))
        say(
            f"scan: {m.violations_found} findings ({counts or 'none'}), {m.new_findings} new,"
            f" {m.files_scanned} files in {m.scan_duration_ms / 1000:.2f} s"
            f" ({m.cache_hits} cached)"
        )

    try:
        asyncio.run(run_up(loaded, options, say=say, on_report=on_report))
    except (UnsafeBindError, BaselineError) as exc:
        fail(str(exc))
    except ValidationError:
        fail(f"--host {host!r} is not an IP address or a host name")
    except OSError as exc:
        fail(f"cannot serve: {exc.strerror or exc}")
    except KeyboardInterrupt:
        pass
