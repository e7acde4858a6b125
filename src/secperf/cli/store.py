"""``secperf store check``: the store's integrity and schema version, read only."""

from __future__ import annotations

from typing import Annotated

import typer

from secperf.cli.common import console, err_console, fail, load_or_exit

app = typer.Typer(
    help="Check the store (integrity and schema version).",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command("check")
def store_check(
    ctx: typer.Context,
    store_url: Annotated[
        str | None, typer.Option("--store", help="Store path or URL (default: store.url).")
    ] = None,
    quick: Annotated[
        bool,
        typer.Option("--quick", help="SQLite's quick_check instead of the full integrity_check."),
    ] = False,
) -> None:
    """Check the store without changing it: integrity, schema version; exit 2 on a problem."""
    # SQLAlchemy loads only when a command opens the store.
    from secperf.store import LATEST_VERSION
    from secperf.store.check import check_store

    target = store_url or load_or_exit(ctx).config.store.url
    found = check_store(target, quick=quick)
    size = f", {found.size_bytes / 1_048_576:.1f} MiB" if found.size_bytes is not None else ""
    out = console()
    out.print(f"store {found.store} ({found.backend}{size})", markup=False, soft_wrap=True)
    if found.schema_version is not None:
        out.print(
            f"schema version {found.schema_version} (this secperf: {LATEST_VERSION})",
            markup=False,
        )
    for note in found.notes:
        out.print(f"note: {note}", markup=False, soft_wrap=True)
    err = err_console()
    for problem in found.problems:
        err.print(f"problem: {problem}", markup=False)
    if found.problems:
        advice = f"; {found.advice}" if found.advice else ""
        fail(f"store {found.store}: {len(found.problems)} problem(s){advice}")
    out.print("store ok", markup=False)
