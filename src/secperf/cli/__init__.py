"""The ``secperf`` command line: one module per command group, registered here.

Each module parses its options, calls a use case (``secperf.commands`` and
friends) and renders the result with Rich; ``common`` holds what they share
(consoles, ``fail``, global options, option parsers) and ``root`` the root
command. Heavy libraries (SQLAlchemy, FastAPI, scipy, the scanners) are
imported inside the commands that need them, so ``secperf --help`` stays quick.

Exit codes (``secperf.model.ExitCode``): 0 ok, 1 blocked or findings over the
threshold, 2 usage or configuration error, 3 cannot evaluate.
"""

from __future__ import annotations

import typer

from secperf.cli import (
    agent,
    alerts,
    baseline,
    bench,
    config,
    correlate,
    demo,
    findings,
    gate,
    import_,
    metrics,
    monitor,
    scan,
    serve,
    store,
    triage,
    up,
)
from secperf.cli.root import RootGroup, root

__all__ = ["app", "main"]

app = typer.Typer(
    cls=RootGroup,
    name="secperf",
    help="Security validation and performance monitoring on one bus, store, "
    "alert engine, quality gate and dashboard.",
    no_args_is_help=True,
    add_completion=False,
    # Tracebacks with local variables could print the server token.
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.callback()(root)

# Commands, then groups, in the order `secperf --help` lists them.
app.command("scan")(scan.scan)
app.command("triage")(triage.triage)
app.command("gate")(gate.gate)
app.command("monitor")(monitor.monitor)
app.command("correlate")(correlate.correlate)
app.command("serve")(serve.serve)
app.command("up")(up.up)
app.command("demo")(demo.demo)
app.command("agent")(agent.agent)
app.add_typer(config.app, name="config")
app.add_typer(alerts.app, name="alerts")
app.add_typer(findings.app, name="findings")
app.add_typer(baseline.app, name="baseline")
app.add_typer(metrics.app, name="metrics")
app.add_typer(import_.app, name="import")
app.add_typer(bench.app, name="bench")
app.add_typer(alerts.rules_app, name="rules")
app.add_typer(store.app, name="store")


def main() -> None:
    """Console-script entry point (``secperf``)."""
    from secperf.security.redaction import install_log_redaction

    install_log_redaction()  # before any command logs: no secret reaches a log line
    app(prog_name="secperf")
