"""The ``secperf`` command line: parse, call, print.

Commands stay thin: they load the config, call the library and print with
Rich. Each command is one small function; groups with subcommands (``config``,
``alerts``) are Typer sub-apps.

Exit codes: 0 ok, 1 blocked or findings over the threshold, 2 usage or
configuration error, 3 cannot evaluate.
"""

from __future__ import annotations

import asyncio
import json
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

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
from secperf.model import SCANNER_IDS, Severity


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


def store_failure(exc: BaseException) -> tuple[str, ExitCode] | None:
    """The message and exit code for a store that cannot be used; None for other errors.

    Used by the root command group for every command, so a damaged store, a
    newer schema or a ``.secperf`` that is a file is one message on stderr and
    exit 2 wherever it is met, never a traceback (nor exit 1, "blocked").
    """
    from sqlalchemy.exc import SQLAlchemyError

    from secperf.store import SchemaVersionError, StoreCorruptError, StoreError

    check = "`secperf store check`"
    if isinstance(exc, StoreCorruptError):
        return (
            f"{exc}. secperf has not changed it. {check} shows what is wrong; restore the"
            " file from a backup, or move it aside to start an empty store.",
            ExitCode.USAGE,
        )
    if isinstance(exc, SchemaVersionError):
        return (
            f"{exc}, or restore a backup made with this version ({check} shows both versions).",
            ExitCode.USAGE,
        )
    if isinstance(exc, StoreError):
        return f"{exc} ({check} tests the store).", ExitCode.USAGE
    if isinstance(exc, (FileExistsError, NotADirectoryError)) and exc.filename:
        # Typically `.secperf` is a file: the store, cache and salt live in that directory.
        wanted = Path(str(exc.filename))
        blocker = next((p for p in (wanted, *wanted.parents) if p.is_file()), None)
        if blocker is not None:
            what = "" if blocker == wanted else f"cannot create {wanted}: "
            return (
                f"{what}{blocker} is a file, not a directory; move that file away"
                " (secperf keeps its store, cache and salt there)",
                ExitCode.USAGE,
            )
    if isinstance(exc, SQLAlchemyError):
        orig = getattr(exc, "orig", None)
        lines = str(orig if orig is not None else exc).strip().splitlines()
        return (
            f"the store failed: {lines[0] if lines else type(exc).__name__}; what was stored"
            f" before is kept. Try again; {check} tests the store.",
            ExitCode.CANNOT_EVALUATE,
        )
    return None


class _Commands(typer.core.TyperGroup):
    """The root group: turns a store that cannot be used into ``store_failure``'s message."""

    # ctx is Typer's own click Context (a vendored copy), typed loosely on purpose.
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            failure = store_failure(exc)
            if failure is None:
                raise
            fail(*failure)


app = typer.Typer(
    cls=_Commands,
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
findings_app = typer.Typer(
    help="List and show stored findings.", no_args_is_help=True, rich_markup_mode=None
)
baseline_app = typer.Typer(
    help="Accept the current findings, or show the baseline.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(config_app, name="config")
app.add_typer(alerts_app, name="alerts")
app.add_typer(findings_app, name="findings")
app.add_typer(baseline_app, name="baseline")


class State:
    """Options given before the command, shared with every command."""

    config_path: Path | None = None
    project_dir: Path | None = None


state = State()


def fail(message: str, code: ExitCode = ExitCode.USAGE) -> NoReturn:
    """Print ``message`` on stderr and exit with ``code``."""
    err_console.print(message, markup=False)
    raise typer.Exit(int(code))


def load_or_exit(path: Path | None = None, *, project: Path | None = None) -> LoadedConfig:
    """Load the config (``path`` or the global ``--config``); exit 2 on a config error.

    ``project`` is the directory a command was pointed at: its own secperf.toml
    applies unless ``--project-dir`` says otherwise.
    """
    project_dir = state.project_dir
    if project_dir is None and project is not None and project.is_dir():
        project_dir = project
    try:
        return load_config(path or state.config_path, project_dir)
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
        typer.Option("--scanners", help=f"Comma-separated: {','.join(SCANNER_IDS)}."),
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

    loaded = load_or_exit(project=path)
    root = _project_root(path, loaded)
    threshold = _severity_option(fail_on) or loaded.config.scan.fail_on
    chosen = [s.strip() for s in scanners.split(",") if s.strip()] if scanners else None
    known = set(SCANNER_IDS)
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
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            fail(f"--output: cannot write {output}: {exc.strerror or exc}")
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


def _author(author: str | None) -> str:
    import getpass

    if author:
        return author
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _iso(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def _parse_until(until: str | None) -> int | None:
    """``--until`` as UTC milliseconds: a date (end of that day) or an ISO date-time."""
    if until is None:
        return None
    from datetime import UTC, datetime, timedelta

    try:
        if len(until) == 10:
            day = datetime.fromisoformat(until).replace(tzinfo=UTC)
            return int((day + timedelta(days=1)).timestamp() * 1000)
        moment = datetime.fromisoformat(until)
    except ValueError:
        raise typer.BadParameter(
            f"{until!r} is not a date (YYYY-MM-DD) or ISO date-time", param_hint="--until"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


@findings_app.command("list")
def findings_list(
    severity: Annotated[
        str | None, typer.Option("--severity", "-s", help="At least this severity.")
    ] = None,
    scanner: Annotated[str | None, typer.Option("--scanner", help="Only this scanner.")] = None,
    path_glob: Annotated[str | None, typer.Option("--path", help="Path glob.")] = None,
    state_filter: Annotated[
        str | None,
        typer.Option("--state", help="open, false_positive, accepted_risk or fixed."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The findings of the latest scan of the project, filtered."""
    from secperf.commands import scan_view
    from secperf.commands.scanning import open_store
    from secperf.events import now_ms

    loaded = load_or_exit()
    floor = _severity_option(severity)
    with open_store(loaded) as store:
        scans = store.scans(limit=1, target=str(loaded.root.resolve()))
        if not scans:
            fail("no scan of this project yet: run `secperf scan`")
        try:
            rows = store.findings(
                scan_id=scans[0].scan_id,
                severity_at_least=floor,
                scanner=scanner,
                path_glob=path_glob,
                state=state_filter,
                limit=limit,
            )
        except ValueError as exc:
            fail(str(exc))
        triage = store.triage_all()
    if as_json:
        from pydantic import TypeAdapter

        from secperf.model import Finding

        adapter = TypeAdapter(Finding)
        out = [
            {
                **adapter.dump_python(r.finding, mode="json"),
                "is_new": r.is_new,
                "state": r.triage_state.value,
            }
            for r in rows
        ]
        typer.echo(json.dumps(out, indent=2))
        return
    new = {r.finding.fingerprint for r in rows if r.is_new}
    console.print(
        scan_view.findings_table([r.finding for r in rows], new=new, triage=triage, now_ms=now_ms())
    )


@findings_app.command("show")
def findings_show(
    fingerprint: Annotated[str, typer.Argument(help="Fingerprint or a unique prefix.")],
) -> None:
    """One finding with all its details and its triage history."""
    from secperf.commands.scanning import open_store, resolve_fingerprint

    loaded = load_or_exit()
    with open_store(loaded) as store:
        try:
            finding = resolve_fingerprint(store, fingerprint)
        except ValueError as exc:
            fail(str(exc))
        history = store.triage_history(finding.fingerprint)
    rows = {
        "fingerprint": finding.fingerprint,
        "rule": f"{finding.rule_id} ({finding.scanner}, {finding.category})",
        "severity": finding.severity.value
        + (f", confidence {finding.confidence}" if finding.confidence else ""),
        "location": f"{finding.path}:{finding.line}",
        "message": finding.message,
        "cwe": f"CWE-{finding.cwe}" if finding.cwe else "-",
        "code": finding.snippet or "-",
        "help": finding.help_url or "-",
    }
    for key, value in finding.properties.items():
        if value is None or value == "" or value == [] or value == {}:
            rows[key] = "-"  # an unknown value, not the text "null"
        else:
            rows[key] = value if isinstance(value, str) else json.dumps(value)
    lines = list(rows.items())
    for entry in history:
        until = f" until {_iso(entry.expires_ms)}" if entry.expires_ms else ""
        lines.append(("triage", f"{entry.state} by {entry.author}{until}: {entry.reason}"))
    _print_label_values(lines)


def _print_label_values(lines: list[tuple[str, str]]) -> None:
    """Aligned ``label  value`` rows: labels never run into values, long values wrap."""
    from rich.table import Table
    from rich.text import Text

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for label, value in lines:
        # Text, not markup: values come from scanned files and may hold brackets.
        grid.add_row(Text(label), Text(value))
    console.print(grid)


@app.command("triage")
def triage(
    fingerprint: Annotated[str, typer.Argument(help="Fingerprint or a unique prefix.")],
    false_positive: Annotated[
        bool, typer.Option("--false-positive", help="Mark as a false positive.")
    ] = False,
    accept_risk: Annotated[bool, typer.Option("--accept-risk", help="Accept the risk.")] = False,
    reopen: Annotated[bool, typer.Option("--reopen", help="Undo an earlier decision.")] = False,
    reason: Annotated[str, typer.Option("--reason", help="Why (required).")] = "",
    until: Annotated[
        str | None, typer.Option("--until", help="Expiry: YYYY-MM-DD or an ISO date-time.")
    ] = None,
    author: Annotated[str | None, typer.Option("--author", help="Default: your user name.")] = None,
) -> None:
    """Mark a finding a false positive or accept its risk (optionally until a date)."""
    from secperf.commands.scanning import open_store, resolve_fingerprint
    from secperf.events import now_ms

    chosen = [
        name
        for name, on in (
            ("false_positive", false_positive),
            ("accepted_risk", accept_risk),
            ("open", reopen),
        )
        if on
    ]
    if len(chosen) != 1:
        fail("give exactly one of --false-positive, --accept-risk or --reopen")
    if not reason.strip():
        fail("--reason is required: say why, for whoever reads this later")
    expires = _parse_until(until)
    if expires is not None and expires <= now_ms():
        fail(f"--until {until}: the date is already past")
    loaded = load_or_exit()
    with open_store(loaded) as store:
        try:
            finding = resolve_fingerprint(store, fingerprint)
        except ValueError as exc:
            fail(str(exc))
        entry = store.set_triage(finding.fingerprint, chosen[0], _author(author), reason, expires)
    console.print(
        f"{escape(finding.rule_id)} at {escape(finding.path)}:{finding.line} is now"
        f" [bold]{entry.state}[/bold]" + (f" until {until}" if until else "")
    )


@baseline_app.command("update")
def baseline_update(
    path: Annotated[Path | None, typer.Argument(help="Project directory.")] = None,
    author: Annotated[str | None, typer.Option("--author")] = None,
) -> None:
    """Scan and accept every current finding: later scans report only what is new."""
    from secperf.commands.scanning import ScanOptions, update_baseline
    from secperf.security.baseline import BaselineError

    loaded = load_or_exit(project=path)
    root = _project_root(path, loaded)
    try:
        change = asyncio.run(update_baseline(loaded, ScanOptions(root=root), _author(author)))
    except (BaselineError, ValueError) as exc:
        fail(str(exc))
    console.print(
        f"baseline {escape(str(change.path))}: {change.fingerprints} findings accepted"
        f" ({change.added} added, {change.removed} removed). Commit it with your code."
    )


@baseline_app.command("show")
def baseline_show(
    path: Annotated[Path | None, typer.Argument(help="Project directory.")] = None,
) -> None:
    """What the repository's baseline accepts, by scanner and severity."""
    from collections import Counter

    from secperf.commands.scanning import baseline_path, load_project_baseline
    from secperf.security.baseline import BaselineError

    loaded = load_or_exit(project=path)
    root = _project_root(path, loaded)
    try:
        baseline = load_project_baseline(root)
    except BaselineError as exc:
        fail(str(exc))
    if baseline is None:
        fail(f"no baseline at {baseline_path(root)}: run `secperf baseline update`", ExitCode.OK)
    counts = Counter(
        (str(v.get("scanner", "?")), str(v.get("severity", "?")))
        for v in baseline.fingerprints.values()
    )
    console.print(f"{baseline_path(root)}: {len(baseline.fingerprints)} accepted findings")
    for (scanner_id, sev), count in sorted(counts.items()):
        console.print(f"  {scanner_id:<10}{sev:<10}{count}")


class GateFormat(StrEnum):
    """Formats of ``secperf gate`` on the terminal."""

    TABLE = "table"
    JSON = "json"


metrics_app = typer.Typer(
    help="List stored metrics and query their series.", no_args_is_help=True, rich_markup_mode=None
)
import_app = typer.Typer(
    help="Import benchmark results: pytest-benchmark JSON or asv results.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(metrics_app, name="metrics")
app.add_typer(import_app, name="import")


@metrics_app.command("list")
def metrics_list(
    host: Annotated[str | None, typer.Option("--host", help="Only series of this host.")] = None,
) -> None:
    """Every stored metric with its unit, kind and number of series."""
    from secperf.commands.metrics import metric_table
    from secperf.commands.scanning import open_store

    loaded = load_or_exit()
    with open_store(loaded) as store:
        console.print(metric_table(store, host))


@metrics_app.command("query")
def metrics_query(
    name: Annotated[str, typer.Argument(help="Metric name, e.g. cpu_percent.")],
    labels: Annotated[
        list[str] | None, typer.Option("--labels", "-l", help="Label matcher NAME=VALUE (repeat).")
    ] = None,
    since: Annotated[str, typer.Option("--since", help="How far back, e.g. 15m, 1h, 24h.")] = "1h",
    step: Annotated[
        str | None, typer.Option("--step", help="Downsample to this step, e.g. 10s.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """A metric's series over a time range, downsampled, with a trend line."""
    from secperf.commands.metrics import parse_labels, points_json, query_table
    from secperf.commands.scanning import open_store
    from secperf.config import parse_duration_ms
    from secperf.events import now_ms
    from secperf.model import MetricType

    try:
        matchers = parse_labels(labels or [])
        since_ms = parse_duration_ms(since)
        step_ms = parse_duration_ms(step) if step else None
    except ValueError as exc:
        fail(str(exc))
    if since_ms <= 0:
        fail("--since: must be longer than 0")
    if step_ms is not None and step_ms <= 0:
        fail("--step: must be longer than 0")
    loaded = load_or_exit()
    end = now_ms()
    with open_store(loaded) as store:
        points = store.query(
            name,
            matchers or None,
            end - since_ms,
            end,
            step_ms=step_ms,
            max_points=None if step_ms else 500,
        )
    if as_json:
        typer.echo(json.dumps(points_json(points)))
        return
    if not points:
        fail(f"no samples of {name} in the last {since}", ExitCode.CANNOT_EVALUATE)
    known = MetricType.lookup(name)
    console.print(query_table(points, known.unit if known else ""))


def _import_kind(files: list[Path], kind: str) -> None:
    from secperf.commands.bench import load_benchmark_files, status_counts, store_results
    from secperf.commands.scanning import open_store
    from secperf.perf.benchmarks import BenchmarkImportError

    loaded = load_or_exit()
    try:
        imported = load_benchmark_files(files)
    except BenchmarkImportError as exc:
        fail(f"cannot import: {exc}; nothing was stored")
    for item in imported:
        if item.kind != kind:
            fail(f"{item.path}: this is {item.kind} data, not {kind}; nothing was stored")
    every = [r for item in imported for r in item.results]
    with open_store(loaded) as store:
        added = store_results(store, every)
    for item in imported:
        console.print(f"{escape(str(item.path))}: {status_counts(item.results)}", soft_wrap=True)
    console.print(f"{added} new results stored ({len(every) - added} already stored)")


@import_app.command("pytest-benchmark")
def import_pytest_benchmark(
    files: Annotated[list[Path], typer.Argument(help="pytest-benchmark JSON files.")],
) -> None:
    """Store pytest-benchmark results (all or nothing)."""
    _import_kind(files, "pytest-benchmark")


@import_app.command("asv")
def import_asv(
    paths: Annotated[list[Path], typer.Argument(help="asv results directories or files.")],
) -> None:
    """Store asv results (all or nothing)."""
    _import_kind(paths, "asv")


@app.command("gate")
def gate(
    path: Annotated[
        Path | None, typer.Argument(help="Directory to scan (default: the project root).")
    ] = None,
    benchmarks: Annotated[
        list[Path] | None,
        typer.Option(
            "--benchmarks", help="pytest-benchmark JSON file (repeat for several); stored."
        ),
    ] = None,
    asv: Annotated[
        Path | None, typer.Option("--asv", help="asv results directory (or one results file).")
    ] = None,
    report_dir: Annotated[
        Path | None,
        typer.Option(
            "--report-dir", help="Write gate.md, gate.junit.xml, gate.sarif and gate.json here."
        ),
    ] = None,
    scan_id: Annotated[
        str | None, typer.Option("--scan-id", help="Judge this stored scan instead of scanning.")
    ] = None,
    fail_on: Annotated[
        str | None,
        typer.Option("--fail-on", help="Block on new findings at or above this severity."),
    ] = None,
    output_format: Annotated[
        GateFormat, typer.Option("--format", "-f", help="Output format.")
    ] = GateFormat.TABLE,
    osv_db: Annotated[
        Path | None,
        typer.Option("--osv-db", help="OSV database: a directory of JSON files or all.zip."),
    ] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Rescan every file.")] = False,
) -> None:
    """Run the CI quality gate: exit 0 pass, 1 blocked, 3 cannot evaluate, 2 bad input."""
    from secperf.commands.gate import (
        GateOptions,
        GateUsageError,
        conditions_table,
        run_gate,
        write_reports,
    )
    from secperf.commands.scanning import dumps
    from secperf.gates.reports.json_report import to_dict

    loaded = load_or_exit(project=path)
    root = _project_root(path, loaded)
    if osv_db is not None and not osv_db.exists():
        fail(f"--osv-db: {osv_db} does not exist")
    if report_dir is not None:
        # Before the scan, so that a typo costs no scan and stores no gate run.
        try:
            report_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            fail(f"--report-dir: cannot create {report_dir}: {exc.strerror or exc}")
    options = GateOptions(
        root=root,
        benchmark_files=tuple(benchmarks or ()),
        asv_dir=asv,
        scan_id=scan_id,
        fail_on=_severity_option(fail_on),
        osv_db=osv_db,
        use_cache=not no_cache,
        paths=["."] if path is not None else None,
    )
    try:
        outcome = asyncio.run(run_gate(loaded, options))
    except GateUsageError as exc:
        fail(str(exc))
    if report_dir is not None:
        try:
            write_reports(outcome, report_dir, root)
        except OSError as exc:
            fail(f"--report-dir: cannot write the reports in {report_dir}: {exc.strerror or exc}")
    if output_format is GateFormat.JSON:
        typer.echo(dumps(to_dict(outcome)), nl=False)
    else:
        console.print(conditions_table(outcome))
        for note in outcome.notes:
            console.print(f"[dim]{escape(note)}[/dim]")
        console.print(escape(outcome.result.summary.split(". ", 1)[0]))
    raise typer.Exit(outcome.result.verdict.exit_code)


# --------------------------------------------------------------------------- performance


def _duration_option(value: str | None, option: str) -> float | None:
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


@app.command("monitor")
def monitor(
    duration: Annotated[
        str | None,
        typer.Option("--duration", "-d", help="Stop after this long, e.g. 30s (default: Ctrl-C)."),
    ] = None,
    interval: Annotated[
        str | None,
        typer.Option("--interval", "-i", help="System and process interval, e.g. 1s or 500ms."),
    ] = None,
    no_system: Annotated[
        bool, typer.Option("--no-system", help="Do not collect host metrics.")
    ] = False,
    no_process: Annotated[
        bool, typer.Option("--no-process", help="Do not collect process metrics.")
    ] = False,
    no_prometheus: Annotated[
        bool, typer.Option("--no-prometheus", help="Do not scrape Prometheus targets.")
    ] = False,
) -> None:
    """Collect system, process and Prometheus metrics into the store, with a live view."""
    from secperf.commands.monitor import MonitorOptions, build_plan, render_summary, run_monitor

    options = MonitorOptions(
        duration_s=_duration_option(duration, "--duration"),
        interval_s=_duration_option(interval, "--interval"),
        system=not no_system,
        process=not no_process,
        prometheus=not no_prometheus,
    )
    loaded = load_or_exit()
    try:
        plan = build_plan(loaded, options)
    except ValueError as exc:
        fail(str(exc))
    if not plan.collectors:
        off = "; ".join(f"{name}: {why}" for name, why in plan.switched_off.items())
        fail(f"nothing to collect: every collector is switched off ({off or 'none configured'})")
    live = console.is_terminal
    summary = asyncio.run(run_monitor(loaded, plan, options, console=console, live=live))
    console.print(render_summary(summary, plan, final_view=not live))


def _bench_group() -> type[typer.core.TyperGroup]:
    # The group class lives with the bench command's code.
    from secperf.commands.bench import DefaultRunGroup

    return DefaultRunGroup


bench_app = typer.Typer(
    cls=_bench_group(),
    help="Time a command (bench run, or just bench -- CMD), import and list benchmark results.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(bench_app, name="bench")


@bench_app.command(
    "run", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False}
)
def bench_run(
    command: Annotated[list[str], typer.Argument(help="The command and its arguments (after --).")],
    runs: Annotated[int, typer.Option("--runs", "-n", min=1, help="Measured runs.")] = 10,
    warmup: Annotated[
        int, typer.Option("--warmup", "-w", min=0, help="Unmeasured runs first.")
    ] = 1,
    name: Annotated[
        str | None, typer.Option("--name", help="Benchmark name (default: the command line).")
    ] = None,
    timeout: Annotated[
        str | None, typer.Option("--timeout", help="Kill a run that takes longer, e.g. 60s.")
    ] = None,
) -> None:
    """Time CMD over N runs after a warm-up; store median, MAD, min, max and max RSS."""
    from secperf.commands.bench import run_benchmark, store_results, timing_table
    from secperf.commands.scanning import open_store
    from secperf.perf.command_timing import CommandTimingError

    timeout_s = _duration_option(timeout, "--timeout")
    loaded = load_or_exit()
    try:
        timing, result = run_benchmark(
            command, runs=runs, warmup=warmup, name=name, root=loaded.root, timeout_s=timeout_s
        )
    except (CommandTimingError, ValueError) as exc:
        fail(f"secperf bench: {exc}")
    with open_store(loaded) as store:
        store_results(store, [result])
    console.print(timing_table(result.name, timing))
    commit = (result.commit or "no commit")[:12]
    console.print(f"stored as {escape(result.name)!r} ({commit}, machine {result.machine})")


@bench_app.command("import")
def bench_import(
    files: Annotated[
        list[Path],
        typer.Argument(help="pytest-benchmark JSON files, asv results files or directories."),
    ],
) -> None:
    """Store pytest-benchmark or asv results (detected by content); all or nothing."""
    from secperf.commands.bench import load_benchmark_files, status_counts, store_results
    from secperf.commands.scanning import open_store
    from secperf.perf.benchmarks import BenchmarkImportError

    loaded = load_or_exit()
    try:
        imported = load_benchmark_files(files)
    except BenchmarkImportError as exc:
        fail(f"cannot import: {exc}; nothing was stored")
    every = [r for item in imported for r in item.results]
    with open_store(loaded) as store:
        added = store_results(store, every)
    for item in imported:
        console.print(
            f"{escape(str(item.path))}: {item.kind}, {status_counts(item.results)}", soft_wrap=True
        )
    console.print(f"{added} new results stored ({len(every) - added} already stored)")


@bench_app.command("list")
def bench_list(
    name: Annotated[str | None, typer.Option("--name", help="Only this benchmark.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 100,
) -> None:
    """Stored benchmark results, oldest first: name, commit, machine, median, rounds."""
    from secperf.commands.bench import results_table
    from secperf.commands.scanning import open_store

    loaded = load_or_exit()
    with open_store(loaded) as store:
        results = store.benchmark_results(name=name, limit=limit)
    if not results:
        fail(
            f"no stored results{f' named {name!r}' if name else ''}: "
            "run `secperf bench run -- CMD` or `secperf bench import FILE`",
            ExitCode.OK,
        )
    console.print(results_table(results))


@app.command("correlate")
def correlate(
    since: Annotated[
        str,
        typer.Option("--since", metavar="DURATION", help="How far back to look: 24h, 7d, 90m."),
    ] = "24h",
    metric: Annotated[
        list[str] | None,
        typer.Option("--metric", "-m", metavar="NAME", help="Only this metric (repeat for more)."),
    ] = None,
    alpha: Annotated[
        float, typer.Option("--alpha", help="False discovery rate for significance.")
    ] = 0.01,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Rank the metrics that scans affect, with the evidence; exit 3 without scans or data."""
    from secperf.commands.correlate import correlate_command

    loaded = load_or_exit()
    code = correlate_command(
        loaded,
        since=since,
        metrics=metric,
        alpha=alpha,
        as_json=as_json,
        console=console,
        err_console=err_console,
    )
    if code:
        raise typer.Exit(code)


# --------------------------------------------------------------------------- alerts


@alerts_app.command("list")
def alerts_list(
    state_filter: Annotated[
        list[str] | None,
        typer.Option(
            "--state",
            "-s",
            help="Only alerts in this state (repeat, or comma-separate): firing, pending, "
            "resolved, nodata, error, inactive. Default: all but inactive.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Stored alerts, newest change first: state, severity, rule, labels, value, ack, silenced."""
    from secperf.commands.alerts import (
        AlertsCommandError,
        alerts_json,
        alerts_table,
        parse_states,
        stored_alerts,
    )
    from secperf.commands.scanning import open_store
    from secperf.events import now_ms

    try:
        states = parse_states(state_filter)
    except AlertsCommandError as exc:
        fail(str(exc))
    loaded = load_or_exit()
    now = now_ms()
    with open_store(loaded) as store:
        rows = stored_alerts(store, states, now)
    if as_json:
        typer.echo(json.dumps(alerts_json(rows), indent=2))
        return
    if not rows:
        shown = ", ".join(s.value for s in states)
        console.print(f"no alerts ({shown})", markup=False)
        return
    console.print(alerts_table(rows, now))


@alerts_app.command("ack")
def alerts_ack(
    fingerprint: Annotated[
        str, typer.Argument(help="The alert's fingerprint, or a unique prefix of 6+ characters.")
    ],
    author: Annotated[
        str | None, typer.Option("--author", "-a", help="Who acknowledges (default: you).")
    ] = None,
    note: Annotated[str, typer.Option("--note", "-n", help="Why, or what is being done.")] = "",
) -> None:
    """Acknowledge an alert with an author and a note (cleared when it fires again)."""
    from secperf.commands.alerts import AlertsCommandError, acknowledge
    from secperf.commands.scanning import open_store
    from secperf.events import now_ms

    loaded = load_or_exit()
    try:
        with open_store(loaded) as store:
            alert = acknowledge(store, fingerprint, _author(author), note, now_ms())
    except AlertsCommandError as exc:
        fail(str(exc))
    console.print(
        f"acknowledged {alert.fingerprint} ({alert.rule}, {alert.state.value})"
        f" by {alert.acknowledged_by}" + (f": {note}" if note else ""),
        markup=False,
        soft_wrap=True,
    )


@alerts_app.command("silence")
def alerts_silence(
    matchers: Annotated[
        list[str],
        typer.Argument(
            help='Label matchers in PromQL form: job="api", env!="dev", severity=~"high|critical".'
        ),
    ],
    duration: Annotated[
        str, typer.Option("--duration", "-d", help="How long, e.g. 30m, 2h, 1d.")
    ] = "2h",
    starts: Annotated[
        str | None,
        typer.Option(
            "--starts",
            help="When it starts: now (default), a duration from now (30m) or an ISO date-time.",
        ),
    ] = None,
    author: Annotated[
        str | None, typer.Option("--author", "-a", help="Who silences (default: you).")
    ] = None,
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why (required).")] = "",
) -> None:
    """Mute alerts matching every matcher for a while; prints the silence id."""
    from secperf.commands.alerts import AlertsCommandError, add_silence, silence_line
    from secperf.commands.scanning import open_store
    from secperf.events import now_ms

    if not reason.strip():
        fail("--reason: required: say why these alerts are silenced")
    loaded = load_or_exit()
    now = now_ms()
    try:
        with open_store(loaded) as store:
            silence = add_silence(
                store,
                matchers,
                duration=duration,
                starts=starts,
                author=_author(author),
                reason=reason,
                now_ms=now,
            )
    except AlertsCommandError as exc:
        fail(str(exc))
    console.print(silence_line(silence, now), markup=False, soft_wrap=True)


@alerts_app.command("unsilence")
def alerts_unsilence(
    silence_id: Annotated[int, typer.Argument(help="The silence id (printed by `silence`).")],
) -> None:
    """End a silence now."""
    from secperf.commands.alerts import AlertsCommandError, expire_silence
    from secperf.commands.scanning import open_store
    from secperf.events import now_ms

    loaded = load_or_exit()
    try:
        with open_store(loaded) as store:
            done = expire_silence(store, silence_id, now_ms())
    except AlertsCommandError as exc:
        fail(str(exc))
    if done.ended:
        console.print(f"silence {silence_id} ended", markup=False)
    else:
        console.print(f"silence {silence_id} had already ended; nothing to do", markup=False)


rules_app = typer.Typer(help="Check alert rule files.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(rules_app, name="rules")
alerts_app.add_typer(rules_app, name="rules")


@rules_app.command("check")
def rules_check(
    file: Annotated[
        Path,
        typer.Argument(
            help="A rule file ([[rules]]), or secperf.toml / pyproject.toml with [alerts] rules."
        ),
    ],
) -> None:
    """Load every rule and print it OK or its problem; exit 2 when any is invalid."""
    from secperf.commands.alerts import check_rules, rules_report_lines

    report = check_rules(file)
    for is_problem, line in rules_report_lines(report):
        console.print(line, markup=False, soft_wrap=True, style="red" if is_problem else None)
    bad = sum(1 for c in report.checks if c.problem is not None) + len(report.file_problems)
    good = sum(1 for c in report.checks if c.problem is None)
    defaults = f" (+ {report.default_rules} default rules)" if report.default_rules else ""
    if bad:
        err_console.print(f"{bad} problem(s); {good} rule(s) valid{defaults}", markup=False)
        raise typer.Exit(int(ExitCode.USAGE))
    console.print(f"{good} rule(s) valid{defaults}", markup=False)


# --------------------------------------------------------------------------- running


@app.command("serve")
def serve(
    host: Annotated[
        str | None, typer.Option("--host", help="Address to listen on (default: server.host).")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option("--port", min=0, max=65535, help="Port (default: server.port; 0: any)."),
    ] = None,
    store_url: Annotated[
        str | None, typer.Option("--store", help="Store path or URL (default: store.url).")
    ] = None,
    bus_url: Annotated[
        str | None, typer.Option("--bus", help="Bus URL (default: bus.url; memory://).")
    ] = None,
) -> None:
    """Serve the API and dashboard (consumes the bus, stores, alerts)."""
    from pydantic import ValidationError

    from secperf.bus.factory import make_bus
    from secperf.config import BusConfig, ServerConfig
    from secperf.store import Store, StoreWriter
    from secperf.web import UnsafeBindError, check_bind
    from secperf.web import serve as run_server
    from secperf.web.server import AlertEngineStartError

    loaded = load_or_exit()
    cfg = loaded.config
    overrides: dict[str, object] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    try:
        server_cfg = ServerConfig.model_validate({**cfg.server.model_dump(), **overrides})
    except ValidationError:
        fail(f"--host {host!r} is not an IP address or a host name")
    token = server_cfg.token.get_secret_value() if server_cfg.token is not None else None
    try:
        check_bind(server_cfg.host, token)
    except UnsafeBindError as exc:
        fail(str(exc))
    bus_cfg = cfg.bus
    if bus_url is not None:
        try:
            bus_cfg = BusConfig.model_validate({**cfg.bus.model_dump(), "url": bus_url})
        except ValidationError:
            fail(f"--bus {mask_url(bus_url)}: expected memory:// or nats://host:port")
    target = store_url or cfg.store.url
    try:
        store = Store.open(target)
    except Exception as exc:  # any failure to open is a configuration problem here
        failure = store_failure(exc)
        fail(failure[0] if failure else f"cannot open the store {mask_url(str(target))}: {exc}")
    bus = make_bus(bus_cfg)
    writer = StoreWriter(store)
    writes = (
        f"writes need the token from {loaded.token_source}"
        if token and loaded.token_source
        else "writes need the token"
        if token
        else "no token: writes are disabled (set SECPERF_TOKEN)"
    )

    def started(url: str) -> None:
        console.print(
            f"secperf serving on {url} ({writes}); Ctrl-C stops", markup=False, soft_wrap=True
        )

    try:
        run_server(
            server_cfg,
            store,
            bus,
            token=token,
            on_started=started,
            writer=writer,
            manage_writer=True,
            bus_kind="nats" if bus_cfg.is_nats else "memory",
            alerts=cfg.alerts,
        )
    except KeyboardInterrupt:
        pass
    except ConnectionError as exc:  # the bus (NATS) cannot be reached
        fail(f"cannot start: {exc}")
    except OSError as exc:
        fail(f"cannot listen on {server_cfg.bind}: {exc.strerror or exc}")
    except ValueError as exc:  # alert rule files that do not load
        fail(str(exc))
    except AlertEngineStartError as exc:
        fail(str(exc), ExitCode.CANNOT_EVALUATE)
    finally:
        store.close()


@app.command("up")
def up(
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
    from pydantic import ValidationError

    from secperf.commands.up import UpOptions, run_up
    from secperf.security.baseline import BaselineError
    from secperf.security.validator import ScanReport
    from secperf.web import UnsafeBindError

    loaded = load_or_exit(project=path)
    root = _project_root(path, loaded)
    options = UpOptions(
        root=root,
        host=host,
        port=port,
        scan=not no_scan,
        monitor=not no_monitor,
        watch=not no_watch,
    )

    def say(line: str) -> None:
        console.print(line, markup=False, soft_wrap=True)

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


@app.command("demo")
def demo(
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
    from secperf.analysis.correlate_store import CorrelationRun, explain
    from secperf.demo.runner import DemoError, DemoOptions, run_demo
    from secperf.model import GateResult
    from secperf.security.validator import ScanReport
    from secperf.web import UnsafeBindError

    every = _duration_option(scan_every, "--scan-every")
    correlate = _duration_option(correlate_every, "--correlate-every")
    assert every is not None and correlate is not None
    options = DemoOptions(
        root=(state.project_dir or Path.cwd()).resolve(),
        host=host,
        port=port,
        duration_s=_duration_option(duration, "--duration"),
        scan_every_s=every,
        correlate_every_s=correlate,
        rps=rps,
        clients=clients,
        modules=modules,
    )

    def say(line: str) -> None:
        console.print(line, markup=False, soft_wrap=True)

    def on_report(report: ScanReport) -> None:
        m = report.metrics
        by_scanner = ", ".join(f"{k} {v / 1000:.1f} s" for k, v in m.scanner_durations_ms.items())
        say(
            f"scan: {m.violations_found} findings, {m.files_scanned} files in"
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


@app.command("agent")
def agent(
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
    import logging

    from secperf.commands.agent import AgentOptions, run_agent

    options = AgentOptions(
        bus_url=bus_url,
        host=host,
        scan_root=scan_root,
        scan=not no_scan,
        scan_interval_s=_duration_option(scan_interval, "--scan-interval"),
        duration_s=_duration_option(duration, "--duration"),
    )
    if scan_root is not None and not scan_root.is_dir():
        fail(f"--scan-root: {scan_root} is not a directory")
    loaded = load_or_exit()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from secperf.bus.nats import BusConnectError

    try:
        run = asyncio.run(run_agent(loaded, options))
    except ValueError as exc:
        fail(str(exc))
    except BusConnectError as exc:
        fail(str(exc), ExitCode.CANNOT_EVALUATE)
    err_console.print(
        f"agent {run.host} stopped: {run.published} events published to"
        f" {mask_url(run.bus_url)}, {run.dropped} dropped",
        markup=False,
    )


# --------------------------------------------------------------------------- store

store_app = typer.Typer(
    help="Check the store (integrity and schema version).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(store_app, name="store")


@store_app.command("check")
def store_check(
    store_url: Annotated[
        str | None, typer.Option("--store", help="Store path or URL (default: store.url).")
    ] = None,
    quick: Annotated[
        bool,
        typer.Option("--quick", help="SQLite's quick_check instead of the full integrity_check."),
    ] = False,
) -> None:
    """Check the store without changing it: integrity, schema version; exit 2 on a problem."""
    from secperf.store.check import check_store

    target = store_url or load_or_exit().config.store.url
    found = check_store(target, quick=quick)
    size = f", {found.size_bytes / 1_048_576:.1f} MiB" if found.size_bytes is not None else ""
    console.print(f"store {found.store} ({found.backend}{size})", markup=False, soft_wrap=True)
    if found.schema_version is not None:
        from secperf.store import LATEST_VERSION

        console.print(
            f"schema version {found.schema_version} (this secperf: {LATEST_VERSION})",
            markup=False,
        )
    for note in found.notes:
        console.print(f"note: {note}", markup=False, soft_wrap=True)
    for problem in found.problems:
        err_console.print(f"problem: {problem}", markup=False)
    if found.problems:
        advice = f"; {found.advice}" if found.advice else ""
        fail(f"store {found.store}: {len(found.problems)} problem(s){advice}")
    console.print("store ok", markup=False)


def main() -> None:
    """Console-script entry point (``secperf``)."""
    app(prog_name="secperf")
