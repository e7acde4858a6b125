"""``secperf demo``: a local workload with periodic scans and live correlations."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from secperf.cli.common import duration_option, fail, global_options, say

if TYPE_CHECKING:
    from secperf.analysis.correlate_store import CorrelationRun
    from secperf.model import GateResult
    from secperf.security.validator import ScanReport


def demo(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option("--host", help="Address (default: 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", min=0, max=65535, help="Port (default: 8765; 0: any).")
    ] = None,
    duration: Annotated[
        str | None, typer.Option("--duration", help="Stop after this long, e.g. 10m.")
    ] = None,
    scan_every: Annotated[
        str, typer.Option("--scan-every", help="Time between full scans of the sample project.")
    ] = "30s",
    correlate_every: Annotated[
        str, typer.Option("--correlate-every", help="Time between correlation and gate runs.")
    ] = "60s",
    rps: Annotated[
        float,
        typer.Option("--rps", min=0.1, max=10_000, help="Requests per second on the service."),
    ] = 50.0,
    clients: Annotated[
        int, typer.Option("--clients", min=1, max=256, help="Concurrent clients.")
    ] = 4,
    modules: Annotated[
        int,
        typer.Option(
            "--modules", min=0, max=2_000, help="Generated modules in the sample (scan cost)."
        ),
    ] = 40,
) -> None:
    """Run a local workload: a service under load, periodic scans, live correlations."""
    # The statistics, FastAPI and the scanners load only when the demo runs.
    import asyncio

    from secperf.analysis.correlate_store import explain
    from secperf.config import ConfigError
    from secperf.demo.runner import DemoError, DemoOptions, run_demo
    from secperf.web import UnsafeBindError

    every = duration_option(scan_every, "--scan-every")
    correlate = duration_option(correlate_every, "--correlate-every")
    assert every is not None and correlate is not None
    options = DemoOptions(
        root=(global_options(ctx).project_dir or Path.cwd()).resolve(),
        host=host,
        port=port,
        duration_s=duration_option(duration, "--duration"),
        scan_every_s=every,
        correlate_every_s=correlate,
        rps=rps,
        clients=clients,
        modules=modules,
    )

    def on_report(report: ScanReport) -> None:
        m = report.metrics
        by_scanner = ", ".join(f"{k} {v / 1000:.1f} s" for k, v in m.scanner_durations_ms.items())
        say(
            f"scan: {m.violations_found} violations, {m.files_scanned} files in"
            f" {m.scan_duration_ms / 1000:.1f} s ({by_scanner})"
        )

    def on_correlation(run: CorrelationRun) -> None:
        if run.id is None:
            say(f"correlation: not yet - {'; '.join(run.problems) or 'nothing to correlate'}")
            return
        latency = [r for r in run.tested if r.name == "response_time_ms"]
        top = latency[0] if latency else (run.tested[0] if run.tested else None)
        text = explain(top, run.alpha) if top is not None else "; ".join(run.problems)
        say(f"correlation #{run.id} over {run.n_scans} scans: {text}")

    def on_gate(result: GateResult) -> None:
        # The first sentence is the verdict's reason; the rest is in the Gate view.
        say(f"gate: {result.verdict.value} - {result.summary.split('. ')[0]}")

    try:
        asyncio.run(
            run_demo(
                options,
                say=say,
                on_report=on_report,
                on_correlation=on_correlation,
                on_gate=on_gate,
            )
        )
    except (DemoError, UnsafeBindError, ConfigError, ValueError) as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot run the demo: {exc.strerror or exc}")
    except KeyboardInterrupt:
        pass
