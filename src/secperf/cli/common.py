"""What every command shares: the consoles, ``fail``, the global options, option parsers.

Kept small and light: every command module imports it at start-up, and
``secperf --help`` must not wait for Rich, pydantic (the config) or the model.
So everything beyond typer is imported inside the function that needs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from secperf.config import LoadedConfig
    from secperf.model import Severity
    from secperf.store import Store

#: Exit code of a usage or configuration error (``secperf.model.ExitCode.USAGE``).
USAGE = 2

#: Rich style of each severity, by its value (a ``Severity`` is its value as a key).
SEVERITY_STYLE = {
    "critical": "bold white on red",
    "high": "bold red",
    "medium": "yellow",
    "low": "cyan",
    "info": "dim",
}


def console() -> Console:
    """The console for results (stdout).

    Rich must not read "[scan]" in a message as markup. A new console per
    command (Rich looks up the stream when it prints) keeps the CLI free of
    shared state.
    """
    from rich.console import Console

    return Console(highlight=False)


def err_console() -> Console:
    """The console for problems (stderr); long lines are not wrapped.

    Wrapping would split a file name from its key.
    """
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str, code: int = USAGE) -> NoReturn:
    """Print ``message`` on stderr and exit with ``code`` (a ``secperf.model.ExitCode``)."""
    err_console().print(message, markup=False)
    raise typer.Exit(int(code))


def say(line: str) -> None:
    """Print one plain line on stdout (no markup), e.g. a long-running command's news."""
    console().print(line, markup=False, soft_wrap=True)


@dataclass(frozen=True, slots=True)
class GlobalOptions:
    """Options given before the command, kept in the Typer context for every command."""

    config_path: Path | None = None
    project_dir: Path | None = None


def global_options(ctx: typer.Context) -> GlobalOptions:
    """The options the root command stored (defaults when it did not run)."""
    found = ctx.find_object(GlobalOptions)
    return found if found is not None else GlobalOptions()


def load_or_exit(
    ctx: typer.Context, path: Path | None = None, *, project: Path | None = None
) -> LoadedConfig:
    """Load the config (``path`` or the global ``--config``); exit 2 on a config error.

    ``project`` is the directory a command was pointed at: its own secperf.toml
    applies unless ``--project-dir`` says otherwise.
    """
    from secperf.config import ConfigError, load_config

    options = global_options(ctx)
    project_dir = options.project_dir
    if project_dir is None and project is not None and project.is_dir():
        project_dir = project
    try:
        return load_config(path or options.config_path, project_dir)
    except ConfigError as exc:
        fail(str(exc))


def open_store(loaded: LoadedConfig) -> Store:
    """The configured store, for commands that only read or triage.

    What ``secperf.commands.scanning.open_store`` does, without importing that
    module: it brings the runtime, the scanners and the collectors, which a
    command that reads the store never needs (``findings list`` must start fast).
    """
    from secperf.store import Store

    return Store.open(loaded.config.store.url)


def project_root(path: Path | None, loaded: LoadedConfig) -> Path:
    """The directory a command works on (``path`` or the config's root); exit 2 if none."""
    root = (path or loaded.root).resolve()
    if not root.is_dir():
        fail(f"{root}: not a directory")
    return root


# --------------------------------------------------------------------------- option parsers


def severity_option(value: str | None, option: str = "--fail-on") -> Severity | None:
    """A ``--fail-on`` / ``--severity`` value (None when not given); a bad one is a usage
    error naming ``option`` (``Invalid value for --fail-on: unknown severity 'x'; ...``)."""
    if value is None:
        return None
    from secperf.model import Severity

    try:
        return Severity.parse(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


def duration_option(value: str | None, option: str) -> float | None:
    """A duration option such as ``30s`` or ``500ms`` in seconds (None when not given)."""
    if value is None:
        return None
    from secperf.config import parse_duration_s

    try:
        seconds = parse_duration_s(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None
    if seconds <= 0:
        raise typer.BadParameter("must be longer than 0", param_hint=option)
    return seconds


def author_option(author: str | None) -> str:
    """``--author``, else the user's login name, else ``unknown``."""
    if author:
        return author
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
