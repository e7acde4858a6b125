"""The ``secperf`` command line: one module per command group.

Each module parses its options, calls a use case (``secperf.commands`` and
friends) and renders the result with Rich; ``common`` holds what they share
(consoles, ``fail``, global options, option parsers), ``root`` the root
command and the table of commands, ``application`` the Typer app.

Start-up is kept short because hooks and editors run secperf on every save:
this package imports nothing at all, ``secperf --version`` answers before
Typer loads, ``--help`` imports no command module, and a command imports its
heavy libraries (pydantic, SQLAlchemy, FastAPI, scipy, the scanners) inside
its function. ``tests/cli/test_startup_imports.py`` keeps it so.

Exit codes (``secperf.model.ExitCode``): 0 ok, 1 blocked or findings over the
threshold, 2 usage or configuration error, 3 cannot evaluate.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from secperf.cli.application import app

__all__ = ["app", "main"]


def __getattr__(name: str) -> Any:
    # `from secperf.cli import app` builds the Typer app on first use only.
    if name == "app":
        from secperf.cli.application import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    """Console-script entry point (``secperf``)."""
    if sys.argv[1:] == ["--version"]:
        # The one answer that needs no parsing: before Typer (about 60 ms) loads.
        from secperf import __version__

        sys.stdout.write(f"secperf {__version__}\n")
        return
    from secperf.cli.application import app

    app(prog_name="secperf")
