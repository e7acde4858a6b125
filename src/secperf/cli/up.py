"""``secperf up``: scan, watch, monitor, alert and serve the dashboard for a project."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from secperf.cli.common import console, fail, load_or_exit, project_root, say

if TYPE_CHECKING:
    from rich.console import RenderableType

    from secperf.cli.scan_progress import ScanProgressFeed
    from secperf.commands.summary import LiveSummary
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
    no_live: Annotated[
        bool, typer.Option("--no-live", help="No live summary: print one line per event.")
    ] = False,
) -> None:
    """Scan, watch, monitor, alert and serve the dashboard for this project."""
    # The scanners, FastAPI, pydantic and the store load only when the command runs.
    import asyncio

    from pydantic import ValidationError
    from rich.live import Live

    from secperf.alerts.rule_loading import RuleError, effective_rules
    from secperf.commands.up import UpOptions, run_up
    from secperf.security.baseline import BaselineError
    from secperf.siem.forwarder import SiemSetupError
    from secperf.siem.queue import QueueError
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
            f"scan: {m.violations_found} violations ({counts or 'none'}), {m.new_findings} new,"
            f" {m.files_scanned} files in {m.scan_duration_ms / 1000:.2f} s"
            f" ({m.cache_hits} cached)"
        )
        if report.pacing is not None:
            from secperf.security.pacing.document import PacingDocument

            pacing = PacingDocument.from_document(report.pacing)
            # Said when the budget acted or could not: a quiet scan needs no line.
            if pacing.throttled or pacing.budget_state == "off":
                say(f"scan pacing: {pacing.summary()}")

    out = console()
    try:
        # Pipes and CI logs get the plain lines: the live summary redraws in place.
        if out.is_terminal and not no_live:
            screen = UpScreen()
            with Live(console=out, get_renderable=screen.render, refresh_per_second=2):
                try:
                    asyncio.run(
                        run_up(
                            loaded,
                            options,
                            say=say,
                            on_report=on_report,
                            progress=screen.progress,
                            on_summary=screen.on_summary,
                        )
                    )
                finally:
                    screen.finished = True  # the last frame, drawn when Live stops
        else:
            asyncio.run(run_up(loaded, options, say=say, on_report=on_report))
    except (UnsafeBindError, BaselineError, QueueError, SiemSetupError) as exc:
        fail(str(exc))
    except ValidationError:
        fail(f"--host {host!r} is not an IP address or a host name")
    except OSError as exc:
        fail(f"cannot serve: {exc.strerror or exc}")
    except KeyboardInterrupt:
        pass


class UpScreen:
    """What the live display of ``up`` draws: the newest summary and the running scan.

    News (the dashboard's address, each scan's result) is printed above it as
    lines; the summary below is redrawn in place by Rich's refresh thread.
    """

    def __init__(self) -> None:
        from secperf.cli.scan_progress import ScanProgressFeed, scan_progress_bar

        self.summary: LiveSummary | None = None
        self.finished = False
        # Not started: drawn inside the summary, fed from the scan's thread.
        self.progress: ScanProgressFeed = ScanProgressFeed(scan_progress_bar())

    def on_summary(self, summary: LiveSummary) -> None:
        """Keep the newest summary."""
        self.summary = summary

    def render(self) -> RenderableType:
        """The live summary with the scan's progress while one runs."""
        from rich.text import Text

        from secperf.cli.live_summary import render_live_summary

        if self.summary is None:
            return Text("secperf up: starting …", style="dim")
        bar = self.progress.progress.get_renderable() if self.progress.active else None
        status = "stopped" if self.finished else "Ctrl-C stops"
        return render_live_summary(self.summary, title="up", progress=bar, status=status)
