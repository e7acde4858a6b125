"""The ``secperf`` command line: parse, call, print.

Commands stay thin: they load the config, call the library and print with
Rich. Each command is one small function; groups with subcommands (``config``,
``alerts``) are Typer sub-apps. A command that does not exist yet says so on
stderr and exits 2 instead of printing anything that could pass for a result.

Exit codes: 0 ok, 1 blocked or findings over the threshold, 2 usage or
configuration error, 3 cannot evaluate.
"""

from __future__ import annotations

import asyncio
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
from secperf.model import Severity


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


class ScanFormat(StrEnum):
    """Formats of ``secperf scan``."""

    TABLE = "table"
    JSON = "json"
    SARIF = "sarif"


def _severity_option(value: str | None) -> Severity | None:
    if value is None:
        return None
    try:
        return Severity.parse(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _project_root(path: Path | None, loaded: LoadedConfig) -> Path:
    root = (path or loaded.root).resolve()
    if not root.is_dir():
        fail(f"{root}: not a directory")
    return root


@app.command("scan")
def scan(
    path: Annotated[
        Path | None, typer.Argument(help="Directory to scan (default: the project root).")
    ] = None,
    output_format: Annotated[
        ScanFormat, typer.Option("--format", "-f", help="Output format.")
    ] = ScanFormat.TABLE,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the report to this file.")
    ] = None,
    fail_on: Annotated[
        str | None,
        typer.Option("--fail-on", help="Exit 1 when a new finding is at or above this severity."),
    ] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Rescan every file.")] = False,
    jobs: Annotated[
        int | None, typer.Option("--jobs", "-j", min=1, help="Worker processes.")
    ] = None,
    scanners: Annotated[
        str | None,
        typer.Option("--scanners", help="Comma-separated: bandit,secrets,deps,semgrep,sarif."),
    ] = None,
    osv_db: Annotated[
        Path | None,
        typer.Option("--osv-db", help="OSV database: a directory of JSON files or all.zip."),
    ] = None,
) -> None:
    """Scan a codebase with every enabled scanner; new findings at or above --fail-on exit 1."""
    from secperf.commands import scan_view
    from secperf.commands.scanning import (
        ScanOptions,
        blocking_findings,
        dumps,
        report_json,
        run_scan,
    )
    from secperf.events import now_ms
    from secperf.gates.reports.sarif import to_sarif
    from secperf.security.baseline import BaselineError

    loaded = load_or_exit()
    root = _project_root(path, loaded)
    threshold = _severity_option(fail_on) or loaded.config.scan.fail_on
    chosen = [s.strip() for s in scanners.split(",") if s.strip()] if scanners else None
    known = {"bandit", "secrets", "deps", "semgrep", "sarif"}
    if chosen and (unknown := [s for s in chosen if s not in known]):
        fail(
            f"--scanners: unknown scanner {unknown[0]!r};"
            f" expected some of {', '.join(sorted(known))}"
        )
    if osv_db is not None and not osv_db.exists():
        fail(f"--osv-db: {osv_db} does not exist")
    options = ScanOptions(
        root=root,
        scanners=chosen,
        jobs=jobs,
        use_cache=not no_cache,
        osv_db=osv_db,
        paths=["."] if path is not None else None,
    )
    show_progress = output_format is ScanFormat.TABLE and err_console.is_terminal
    try:
        with scan_view.scan_progress(err_console, show_progress) as progress:
            report, triage = asyncio.run(run_scan(loaded, options, progress=progress))  # type: ignore[arg-type]
    except BaselineError as exc:
        fail(str(exc))
    except ValueError as exc:
        fail(str(exc))
    blocking = blocking_findings(report, threshold, triage)
    now = now_ms()
    if output_format is ScanFormat.JSON:
        text = dumps(report_json(report, triage))
    elif output_format is ScanFormat.SARIF:
        sarif = to_sarif(
            report.findings,
            root_uri=root.as_uri(),
            triage=triage,
            now_ms=now,
            new_fingerprints={f.fingerprint for f in report.comparison.new},
        )
        text = dumps(sarif)
    else:
        text = ""
    if output is not None:
        if output_format is ScanFormat.TABLE:
            text = dumps(report_json(report, triage))
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text)
    elif text:
        typer.echo(text, nl=False)
    if output_format is ScanFormat.TABLE:
        new = {f.fingerprint for f in report.comparison.new}
        if report.findings:
            console.print(
                scan_view.findings_table(report.findings, new=new, triage=triage, now_ms=now)
            )
        else:
            console.print("[green]no findings[/green]")
        skipped = scan_view.skipped_table(report)
        if skipped is not None:
            console.print(skipped)
        console.print(scan_view.summary_table(report))
    if blocking:
        err_console.print(
            f"{len(blocking)} new finding(s) at or above {threshold.value}", style="bold red"
        )
        raise typer.Exit(int(ExitCode.BLOCKED))


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
