"""``secperf scan``: scan a codebase and print, or write, the findings."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from secperf.cli.common import (
    console,
    err_console,
    fail,
    load_or_exit,
    project_root,
    severity_option,
)
from secperf.model import SCANNER_IDS

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.text import Text

    from secperf.config import LoadedConfig
    from secperf.security.factory import ScanOptions
    from secperf.security.triage import TriageDecision
    from secperf.security.validator import ScanReport


#: Findings the table lists on the terminal by default (``--limit``): a pre-commit
#: hook or a CI log shows what to look at first, ``findings list`` the rest.
TABLE_LIMIT = 50


class ScanFormat(StrEnum):
    """Formats of ``secperf scan``."""

    TABLE = "table"
    JSON = "json"
    SARIF = "sarif"


class ScanPriority(StrEnum):
    """``--priority``: low (niced workers, the impact budget) or normal (full speed)."""

    LOW = "low"
    NORMAL = "normal"


def scan(
    ctx: typer.Context,
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
    limit: Annotated[
        int,
        typer.Option(
            "--limit",
            min=0,
            help="Findings the table lists on the terminal: open, then new, then most"
            " severe first (0: all). JSON, SARIF and --output files hold every finding.",
        ),
    ] = TABLE_LIMIT,
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
    plan: Annotated[
        bool, typer.Option("--plan", help="Print the predicted cost and schedule; do not scan.")
    ] = False,
    when_quiet: Annotated[
        bool,
        typer.Option("--when-quiet", help="Wait for the host and the guards to be quiet first."),
    ] = False,
    max_wait: Annotated[
        str | None,
        typer.Option(
            "--max-wait", help="With --when-quiet: scan anyway after this long (e.g. 10m)."
        ),
    ] = None,
    priority: Annotated[
        ScanPriority | None,
        typer.Option(
            "--priority",
            help="low: niced workers throttled within [scan.impact]'s budget; "
            "normal: full speed (the default of a one-shot scan).",
        ),
    ] = None,
) -> None:
    """Scan a codebase with every enabled scanner; new findings at or above --fail-on exit 1."""
    # The scanners, the store and the reports load only when a scan runs.
    import asyncio

    from secperf.cli import render_coverage, render_scan
    from secperf.cli.scan_progress import scan_progress
    from secperf.cli.text_table import TextTable
    from secperf.commands.scanning import (
        blocking_findings,
        dumps,
        report_json,
        run_scan,
        unevaluated_scanners,
    )
    from secperf.events import now_ms
    from secperf.model import ExitCode
    from secperf.security.baseline import BaselineError
    from secperf.security.factory import ScanOptions

    loaded = load_or_exit(ctx, project=path)
    root = project_root(path, loaded)
    threshold = severity_option(fail_on) or loaded.config.scan.fail_on
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
    out, err = console(), err_console()
    max_wait_ms = _max_wait_ms(max_wait, when_quiet)
    if plan:
        _print_plan(loaded, options, max_wait_ms, as_json=output_format is ScanFormat.JSON)
        return
    if when_quiet:
        _wait_until_quiet(loaded, max_wait_ms, options)
    show_progress = output_format is ScanFormat.TABLE and err.is_terminal
    try:
        with scan_progress(err, show_progress) as progress:
            outcome: list[tuple[ScanReport, dict[str, TriageDecision]]] = []

            async def scan_once() -> None:
                # The main task returns None: asyncio.run (3.11) formats its task,
                # result included, when it puts SIGINT's handler back, and the repr
                # of a report of thousands of findings costs a visible part of a
                # second, twice.
                outcome.append(
                    await run_scan(
                        loaded,
                        options,
                        progress=progress,
                        priority=priority.value if priority is not None else None,
                    )
                )

            asyncio.run(scan_once())
            report, triage = outcome[0]
    except BaselineError as exc:
        fail(str(exc))
    except ValueError as exc:
        fail(str(exc))
    blocking = blocking_findings(report, threshold, triage)
    unevaluated = unevaluated_scanners(report, chosen)
    now = now_ms()
    if output_format is ScanFormat.JSON:
        text = dumps(report_json(report, triage))
    elif output_format is ScanFormat.SARIF:
        # The report formats load only for the one asked for.
        from secperf.gates.reports.sarif import scan_notes, to_sarif

        sarif = to_sarif(
            report.findings,
            root_uri=root.as_uri(),
            triage=triage,
            now_ms=now,
            new_fingerprints={f.fingerprint for f in report.comparison.new},
            notes=scan_notes(report.skipped, report.excluded, report.unavailable),
            execution_successful=not unevaluated,
        )
        text = dumps(sarif)
    else:
        text = ""
    tables: list[RenderableType] = []
    if output_format is ScanFormat.TABLE:
        width = out.width if output is None else render_coverage.FILE_WIDTH
        new = {f.fingerprint for f in report.comparison.new}
        if report.findings:
            # A file gets every finding; a terminal (or a pipe) the first --limit.
            shown = report.findings
            if output is None:
                shown = render_scan.most_important(
                    report.findings, limit, new=new, triage=triage, now_ms=now
                )
            tables.append(
                render_scan.findings_table(shown, new=new, triage=triage, now_ms=now, width=width)
            )
            if len(shown) < len(report.findings):
                tables.append(_more_findings(len(shown), len(report.findings), path))
        else:
            tables.append("[green]no findings[/green]")
        skipped = render_scan.skipped_table(report)
        if skipped is not None:
            tables.append(skipped)
        tables.append(render_scan.summary_table(report))
        not_scanned = render_coverage.coverage_table(report)
        if not_scanned is not None:
            tables.append(not_scanned)
    if output is not None:
        if output_format is ScanFormat.TABLE:
            # What --format says, as plain text: a table report, not JSON.
            text = render_coverage.plain_text(tables)
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            fail(f"--output: cannot write {output}: {exc.strerror or exc}")
    elif text:
        typer.echo(text, nl=False)
    else:
        from rich.text import Text

        for table in tables:
            if isinstance(table, TextTable):
                table.print_to(out)
            else:
                # Soft-wrapped: a line naming a command stays whole, to be copied.
                out.print(table, soft_wrap=isinstance(table, Text))
    if blocking:
        err.print(f"{len(blocking)} new finding(s) at or above {threshold.value}", style="bold red")
        raise typer.Exit(int(ExitCode.BLOCKED))
    if unevaluated:
        # Asked for by name and unable to check: its files are not known to be clean.
        for scanner, reason in unevaluated.items():
            err.print(f"cannot evaluate: {scanner} checked nothing: {reason}", markup=False)
        raise typer.Exit(int(ExitCode.CANNOT_EVALUATE))


def _more_findings(shown: int, total: int, path: Path | None) -> Text:
    """What the table left out, and the commands that list it (80-column lines, no markup).

    A scan of a directory named on the command line stored its findings in
    that project: ``findings list`` reads them with ``--project-dir``.
    """
    import shlex

    from rich.text import Text

    head = f"{shown:,} of {total:,} findings listed: open, then new, then most severe first.\n"
    if path is None:
        return Text(
            f"{head}All of them: secperf findings list --limit {total}, or secperf scan --limit 0"
        )
    where = shlex.quote(str(path))
    return Text(
        f"{head}All of them: secperf --project-dir {where} findings list --limit {total}\n"
        f"or secperf scan {where} --limit 0"
    )


def _max_wait_ms(max_wait: str | None, when_quiet: bool) -> int | None:
    """``--max-wait`` in ms (None: ``[scan.schedule] max_delay``); exit 2 when unusable."""
    from secperf.config.units import parse_duration_ms

    if max_wait is None:
        return None
    if not when_quiet:
        fail("--max-wait: only with --when-quiet")
    try:
        return parse_duration_ms(max_wait)
    except ValueError as exc:
        fail(f"--max-wait: {exc}")


def _print_plan(
    loaded: LoadedConfig, options: ScanOptions, max_wait_ms: int | None, *, as_json: bool
) -> None:
    """``--plan``: the prediction per scanner and the schedule, without scanning."""
    from secperf.cli.render_plan import plan_lines, plan_table
    from secperf.commands.scan_plan import plan_scan_run
    from secperf.commands.scanning import dumps

    result = plan_scan_run(loaded, options, max_wait_ms=max_wait_ms)
    if as_json:
        typer.echo(dumps(result.to_document()), nl=False)
        return
    out = console()
    plan_table(result.prediction, width=min(out.width, 100)).print_to(out)
    for line in plan_lines(result):
        out.print(line, markup=False)


def _wait_until_quiet(loaded: LoadedConfig, max_wait_ms: int | None, options: ScanOptions) -> None:
    """``--when-quiet``: wait (saying for what and until when), then let the scan run."""
    import asyncio

    from secperf.commands.scan_plan import wait_until_quiet
    from secperf.security.pacing.schedule import SchedulePlan

    err = err_console()
    shown: list[str] = []

    def on_wait(plan: SchedulePlan) -> None:
        if not shown or shown[-1] != plan.reason:
            shown.append(plan.reason)
            err.print(f"waiting: {plan.reason} (Ctrl-C stops)", markup=False)

    try:
        why = asyncio.run(
            wait_until_quiet(loaded, max_wait_ms=max_wait_ms, on_wait=on_wait, options=options)
        )
    except KeyboardInterrupt:
        err.print("stopped waiting: no scan was run", markup=False)
        raise typer.Exit(130) from None
    err.print(f"scanning: {why}", markup=False)
