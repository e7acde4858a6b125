"""``secperf findings list`` and ``secperf findings show``: read stored findings."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from secperf.cli.common import console, fail, load_or_exit, open_store, severity_option

app = typer.Typer(
    help="List and show stored findings.", no_args_is_help=True, rich_markup_mode=None
)

#: Findings the table lists by default (``--limit``); ``--limit 0`` lists them all.
TABLE_LIMIT = 200


@app.command("list")
def findings_list(
    ctx: typer.Context,
    severity: Annotated[
        str | None, typer.Option("--severity", "-s", help="At least this severity.")
    ] = None,
    scanner: Annotated[str | None, typer.Option("--scanner", help="Only this scanner.")] = None,
    path_glob: Annotated[str | None, typer.Option("--path", help="Path glob.")] = None,
    state_filter: Annotated[
        str | None,
        typer.Option(
            "--state",
            help="Triage state: open, false_positive, accepted_risk or fixed"
            " (the words of the state column and of secperf triage).",
        ),
    ] = None,
    only_new: Annotated[
        bool, typer.Option("--new", help="Only findings new since the baseline.")
    ] = False,
    limit: Annotated[
        int,
        typer.Option(
            "--limit",
            min=0,
            help="Findings the table lists (0: all); a line says how many more match."
            " --json lists every finding.",
        ),
    ] = TABLE_LIMIT,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The findings of the latest scan of the project, filtered.

    The id column is the start of the fingerprint: `secperf triage ID` and
    `secperf findings show ID` take it.
    """
    # The store loads only when a command reads it. The clock is read here, not
    # through secperf.events: its event classes are not needed to list findings.
    import time

    from secperf.cli import render_scan
    from secperf.security.triage import parse_state
    from secperf.store.sqlite_reader import Listing, NotReadable, latest_scan_listing

    loaded = load_or_exit(ctx)
    floor = severity_option(severity, "--severity")
    state = None
    if state_filter is not None:
        try:
            state = parse_state(state_filter)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--state") from None
    target = str(loaded.root.resolve())
    now = time.time_ns() // 1_000_000  # UTC ms, as secperf.events.now_ms
    # JSON holds every finding (as `secperf scan --format json`); the table --limit.
    most = None if as_json or limit == 0 else limit
    try:
        # An SQLite store that needs no migration is read without SQLAlchemy.
        listing = latest_scan_listing(
            loaded.config.store.url,
            target,
            severity_at_least=floor,
            scanner=scanner,
            path_glob=path_glob,
            state=state,
            new_only=only_new,
            limit=most,
            now_ms=now,
        )
    except NotReadable:
        with open_store(loaded) as store:
            scans = store.scans(limit=1, target=target)
            scan_id = scans[0].scan_id if scans else None
            found = (
                []
                if scan_id is None
                else store.findings(
                    scan_id=scan_id,
                    severity_at_least=floor,
                    scanner=scanner,
                    path_glob=path_glob,
                    state=state,
                    limit=None,  # --new filters them here, and the line counts them
                    now_ms=now,
                )
            )
            triage = store.triage_all()
        if only_new:
            found = [r for r in found if r.is_new]
        listing = Listing(scan_id, found[:most], len(found), triage)
    if listing.scan_id is None:
        fail("no scan of this project yet: run `secperf scan`")
    rows = listing.rows
    if as_json:
        from pydantic import TypeAdapter

        from secperf.model import Finding

        adapter = TypeAdapter(Finding)
        listed = [
            {
                **adapter.dump_python(r.finding, mode="json"),
                "id": r.finding.fingerprint[: render_scan.FINGERPRINT_DIGITS],
                "is_new": r.is_new,
                "state": r.triage_state.value,
            }
            for r in rows
        ]
        typer.echo(json.dumps(listed, indent=2))
        return
    if not rows:
        console().print("no findings match", markup=False)
        return
    new = {r.finding.fingerprint for r in rows if r.is_new}
    out = console()
    render_scan.findings_table(
        [r.finding for r in rows], new=new, triage=listing.triage, now_ms=now, width=out.width
    ).print_to(out)
    if len(rows) < listing.total:
        out.print(more_findings(len(rows), listing.total), markup=False, soft_wrap=True)


def more_findings(shown: int, total: int) -> str:
    """The line under a table that left findings out: how many, and how to list them all.

    In the words of ``secperf scan``'s line ("N of M findings listed", "All of
    them:"); ``--limit 0`` keeps the filters given.
    """
    return f"{shown:,} of {total:,} findings listed. All of them: add --limit 0."


@app.command("show")
def findings_show(
    ctx: typer.Context,
    fingerprint: Annotated[str, typer.Argument(help="Fingerprint or a unique prefix.")],
) -> None:
    """One finding with all its details and its triage history."""
    from secperf.commands.scanning import open_store, resolve_fingerprint
    from secperf.timefmt import iso_minutes

    loaded = load_or_exit(ctx)
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
        until = f" until {iso_minutes(entry.expires_ms)}" if entry.expires_ms else ""
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
    console().print(grid)
