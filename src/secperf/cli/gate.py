"""``secperf gate``: the CI quality gate; exit 0 pass, 1 blocked, 3 cannot evaluate."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from secperf.cli.common import (
    console,
    fail,
    load_or_exit,
    project_root,
    severity_option,
)

if TYPE_CHECKING:
    from rich.table import Table

    from secperf.gates.evidence import GateOutcome


class GateFormat(StrEnum):
    """Formats of ``secperf gate`` on the terminal."""

    TABLE = "table"
    JSON = "json"


def gate(
    ctx: typer.Context,
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
    # The scanners, the store and the statistics load only when the gate runs.
    import asyncio

    from rich.markup import escape

    from secperf.commands.gate import (
        GateOptions,
        GateUsageError,
        run_gate,
        write_reports,
    )
    from secperf.commands.scanning import dumps
    from secperf.gates.reports.json_report import to_dict

    loaded = load_or_exit(ctx, project=path)
    root = project_root(path, loaded)
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
        fail_on=severity_option(fail_on),
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
        out = console()
        out.print(conditions_table(outcome, out.width))
        for note in outcome.notes:
            out.print(f"[dim]{escape(note)}[/dim]")
        out.print(escape(outcome.result.summary.split(". ", 1)[0]))
    raise typer.Exit(outcome.result.verdict.exit_code)


# --------------------------------------------------------------------------- display


#: From this terminal width on, no column of the conditions table is capped.
WIDE = 120


def conditions_table(outcome: GateOutcome, width: int = 80) -> Table:
    """The conditions as a Rich table for a terminal ``width`` columns wide."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    from secperf.model import ConditionStatus, GateVerdict

    _STYLE = {
        ConditionStatus.PASS: "green",
        ConditionStatus.BLOCK: "bold red",
        ConditionStatus.CANNOT_EVALUATE: "yellow",
        ConditionStatus.WAIVED: "cyan",
    }
    _VERDICT_STYLE = {
        GateVerdict.PASS: "bold green",
        GateVerdict.BLOCK: "bold red",
        GateVerdict.CANNOT_EVALUATE: "bold yellow",
    }
    verdict = outcome.result.verdict
    # Light rules and one space between columns: the evidence, the column to
    # read, gets most of an 80-column terminal; everything wraps, nothing is cut.
    table = Table(
        title=f"secperf gate: [{_VERDICT_STYLE[verdict]}]{verdict.value.upper()}[/]",
        box=box.SIMPLE_HEAD,
        show_lines=True,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
    )
    # Narrow terminals cap the short columns so that the evidence keeps its room.
    narrow = width < WIDE
    table.add_column(
        "condition", overflow="fold", min_width=len("condition"), max_width=16 if narrow else None
    )
    table.add_column(
        "measured", overflow="fold", min_width=len("measured"), max_width=12 if narrow else None
    )
    table.add_column(
        "threshold", overflow="fold", min_width=len("threshold"), max_width=12 if narrow else None
    )
    table.add_column("status", no_wrap=True)
    table.add_column("evidence", overflow="fold", min_width=len("evidence"))
    for c in outcome.result.conditions:
        table.add_row(
            escape(c.name),
            escape("" if c.measured is None else str(c.measured)),
            escape("" if c.threshold is None else str(c.threshold)),
            f"[{_STYLE[c.status]}]{c.status.value}[/]",
            escape(c.evidence),
        )
    return table
