"""The Typer app of ``secperf``: the root command; its commands come from ``root.COMMANDS``."""

from __future__ import annotations

import typer

from secperf.cli.root import RootGroup, root

__all__ = ["app"]

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
