"""``secperf baseline update`` and ``secperf baseline show``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from secperf.cli.common import author_option, console, fail, load_or_exit, project_root

app = typer.Typer(
    help="Accept the current findings, or show the baseline.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command("update")
def baseline_update(
    ctx: typer.Context,
    path: Annotated[Path | None, typer.Argument(help="Project directory.")] = None,
    author: Annotated[str | None, typer.Option("--author")] = None,
    osv_db: Annotated[
        Path | None,
        typer.Option("--osv-db", help="OSV database: a directory of JSON files or all.zip."),
    ] = None,
) -> None:
    """Scan and accept every current finding: later scans report only what is new."""
    # The scanners and the store load only when a command runs.
    import asyncio

    from rich.markup import escape

    from secperf.commands.scanning import update_baseline
    from secperf.security.baseline import BaselineError
    from secperf.security.factory import ScanOptions

    loaded = load_or_exit(ctx, project=path)
    root = project_root(path, loaded)
    # As `scan` and `gate` take it: dependency findings are accepted from the same data.
    if osv_db is not None and not osv_db.exists():
        fail(f"--osv-db: {osv_db} does not exist")
    options = ScanOptions(root=root, osv_db=osv_db)
    try:
        change = asyncio.run(update_baseline(loaded, options, author_option(author)))
    except (BaselineError, ValueError) as exc:
        fail(str(exc))
    console().print(
        f"baseline {escape(str(change.path))}: {change.fingerprints} findings accepted"
        f" ({change.added} added, {change.removed} removed). Commit it with your code."
    )


@app.command("show")
def baseline_show(
    ctx: typer.Context,
    path: Annotated[Path | None, typer.Argument(help="Project directory.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """What the repository's baseline accepts, by scanner and severity."""
    from collections import Counter

    from secperf.model import ExitCode
    from secperf.security.baseline import BaselineError
    from secperf.security.factory import baseline_path, load_project_baseline

    loaded = load_or_exit(ctx, project=path)
    root = project_root(path, loaded)
    try:
        baseline = load_project_baseline(root)
    except BaselineError as exc:
        fail(str(exc))
    accepted = baseline.fingerprints if baseline is not None else {}
    counts = Counter(
        (str(v.get("scanner", "?")), str(v.get("severity", "?"))) for v in accepted.values()
    )
    if as_json:
        import json

        document = {
            "path": str(baseline_path(root)),
            "exists": baseline is not None,
            "accepted": len(accepted),
            "counts": [
                {"scanner": scanner_id, "severity": sev, "count": count}
                for (scanner_id, sev), count in sorted(counts.items())
            ],
        }
        typer.echo(json.dumps(document, indent=2))
        return
    if baseline is None:
        fail(f"no baseline at {baseline_path(root)}: run `secperf baseline update`", ExitCode.OK)
    out = console()
    out.print(f"{baseline_path(root)}: {len(baseline.fingerprints)} accepted findings")
    for (scanner_id, sev), count in sorted(counts.items()):
        out.print(f"  {scanner_id:<10}{sev:<10}{count}")
