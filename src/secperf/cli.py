"""The ``secperf`` command line: parse, call, print.

Commands stay thin: they load the config, call the library and print with
Rich. Each command is one small function; groups with subcommands (``config``,
``alerts``) are Typer sub-apps. A command that does not exist yet says so on
stderr and exits 2 instead of printing anything that could pass for a result.

Exit codes: 0 ok, 1 blocked or findings over the threshold, 2 usage or
configuration error, 3 cannot evaluate.
"""

from __future__ import annotations

import json
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from secperf import __version__
from secperf.config import (
    ConfigError,
    LoadedConfig,
    export_config,
    format_duration_ms,
    load_config,
    mask_url,
    to_toml,
)


class ExitCode(IntEnum):
    """The process exit codes every command uses."""

    OK = 0
    BLOCKED = 1
    USAGE = 2
    CANNOT_EVALUATE = 3


class OutputFormat(StrEnum):
    """Formats of ``secperf config show``."""

    TOML = "toml"
    JSON = "json"


# Rich must not read "[scan]" in a message as markup, nor wrap long lines in
# a way that splits a file name from its key.
console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

# Extra arguments are accepted by commands not built yet, so that any call of
# them reaches the "not built yet" message rather than a usage error.
_PASSTHROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}

app = typer.Typer(
    name="secperf",
    help="Security validation and performance monitoring on one bus, store, "
    "alert engine, quality gate and dashboard.",
    no_args_is_help=True,
    add_completion=False,
    # Tracebacks with local variables could print the server token.
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
config_app = typer.Typer(
    help="Check and show the configuration.", no_args_is_help=True, rich_markup_mode=None
)
alerts_app = typer.Typer(
    help="List, acknowledge and silence alerts.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(config_app, name="config")
app.add_typer(alerts_app, name="alerts")


class State:
    """Options given before the command, shared with every command."""

    config_path: Path | None = None
    project_dir: Path | None = None


state = State()


def fail(message: str, code: ExitCode = ExitCode.USAGE) -> NoReturn:
    """Print ``message`` on stderr and exit with ``code``."""
    err_console.print(message, markup=False)
    raise typer.Exit(int(code))


def not_built(command: str) -> NoReturn:
    """The answer of a command that does not exist yet: one line, exit 2."""
    fail(f"secperf {command} is not built yet")


def load_or_exit(path: Path | None = None) -> LoadedConfig:
    """Load the config (``path`` or the global ``--config``); exit 2 on a config error."""
    try:
        return load_config(path or state.config_path, state.project_dir)
    except ConfigError as exc:
        fail(str(exc))


def _version_callback(value: bool) -> None:
    if value:
        console.print(f"secperf {__version__}", markup=False)
        raise typer.Exit(int(ExitCode.OK))


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="Print the version."
        ),
    ] = False,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            envvar="SECPERF_CONFIG",
            help="Config file (default: secperf.toml, else [tool.secperf] in pyproject.toml).",
        ),
    ] = None,
    project_dir: Annotated[
        Path | None,
        typer.Option(
            "--project-dir",
            help="Project root: where the config is searched and relative paths resolve.",
        ),
    ] = None,
) -> None:
    """secperf: security and performance, one view, one gate."""
    state.config_path = config
    state.project_dir = project_dir


# --------------------------------------------------------------------------- config

ConfigFileArg = Annotated[
    Path | None,
    typer.Argument(help="Config file to read instead of the one found in the project."),
]


@config_app.command("check")
def config_check(file: ConfigFileArg = None) -> None:
    """Validate the configuration and summarise it; exit 2 with each problem if invalid."""
    loaded = load_or_exit(file)
    cfg = loaded.config
    retention = format_duration_ms(cfg.store.retention)
    token = f"token from {loaded.token_source}" if loaded.token_source else "no token"
    rows = {
        "source": str(loaded.source) if loaded.source else "defaults (no config file)",
        "root": str(loaded.root),
        "store": f"{mask_url(cfg.store.url)} (retention {retention})",
        "bus": mask_url(cfg.bus.url),
        "scanners": ", ".join(cfg.scan.scanners) or "none",
        "server": f"http://{cfg.server.bind} ({token})",
    }
    console.print("[green]configuration is valid[/green]")
    # Plain lines rather than a table: paths must never be cut short.
    for label, value in rows.items():
        console.print(f"  [bold]{label:<10}[/bold]{escape(value)}", soft_wrap=True)


@config_app.command("show")
def config_show(
    file: ConfigFileArg = None,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="Output format.")
    ] = OutputFormat.TOML,
) -> None:
    """Print the effective configuration, defaults included (secrets masked)."""
    loaded = load_or_exit(file)
    data = export_config(loaded.config)
    if output_format is OutputFormat.JSON:
        typer.echo(json.dumps(data, indent=2))
    else:
        source = loaded.source if loaded.source else "defaults"
        typer.echo(f"# effective secperf configuration (from {source})\n" + to_toml(data))


# --------------------------------------------------------------------------- security


@app.command("scan", context_settings=_PASSTHROUGH)
def scan() -> None:
    """Scan a codebase with every enabled scanner."""
    not_built("scan")


@app.command("gate", context_settings=_PASSTHROUGH)
def gate() -> None:
    """Run the CI quality gate: exit 0 pass, 1 blocked, 3 cannot evaluate."""
    not_built("gate")


# --------------------------------------------------------------------------- performance


@app.command("monitor", context_settings=_PASSTHROUGH)
def monitor() -> None:
    """Collect system, process and Prometheus metrics into the store."""
    not_built("monitor")


@app.command("bench", context_settings=_PASSTHROUGH)
def bench() -> None:
    """Time a command over several runs and store the result."""
    not_built("bench")


@app.command("correlate", context_settings=_PASSTHROUGH)
def correlate() -> None:
    """Rank the metrics that scans affect, with the evidence."""
    not_built("correlate")


# --------------------------------------------------------------------------- alerts


@alerts_app.command("list", context_settings=_PASSTHROUGH)
def alerts_list() -> None:
    """List firing, pending and resolved alerts."""
    not_built("alerts list")


@alerts_app.command("ack", context_settings=_PASSTHROUGH)
def alerts_ack() -> None:
    """Acknowledge an alert with an author and a note."""
    not_built("alerts ack")


@alerts_app.command("silence", context_settings=_PASSTHROUGH)
def alerts_silence() -> None:
    """Silence alerts that match label matchers for a while."""
    not_built("alerts silence")


@alerts_app.command("unsilence", context_settings=_PASSTHROUGH)
def alerts_unsilence() -> None:
    """Remove a silence."""
    not_built("alerts unsilence")


# --------------------------------------------------------------------------- running


@app.command("serve", context_settings=_PASSTHROUGH)
def serve() -> None:
    """Serve the API and dashboard (consumes the bus, stores, alerts)."""
    not_built("serve")


@app.command("up", context_settings=_PASSTHROUGH)
def up() -> None:
    """Scan, watch, monitor, alert and serve the dashboard for this project."""
    not_built("up")


@app.command("agent", context_settings=_PASSTHROUGH)
def agent() -> None:
    """Collect and scan on this host and publish to a central bus."""
    not_built("agent")


def main() -> None:
    """Console-script entry point (``secperf``)."""
    app(prog_name="secperf")
