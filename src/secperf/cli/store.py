"""``secperf store check`` (integrity, schema version) and ``store stats`` (tiers), read only."""

from __future__ import annotations

from typing import Annotated

import typer

from secperf.cli.common import console, err_console, fail, load_or_exit

app = typer.Typer(
    help="Check the store (integrity, schema version) and show its tiers (stats).",
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


@app.command("stats")
def store_stats(
    ctx: typer.Context,
    store_url: Annotated[
        str | None, typer.Option("--store", help="Store path or URL (default: store.url).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Per tier (raw, 1m, 1h): series, points, stored bytes, oldest and newest, retention."""
    import json

    from rich import box
    from rich.table import Table

    from secperf.config.units import format_duration_ms
    from secperf.store import Store
    from secperf.store.maintenance import tier_retention
    from secperf.store.store import describe_target
    from secperf.store.tiers import RAW
    from secperf.timefmt import iso_date

    loaded = load_or_exit(ctx)
    retention = tier_retention(loaded.config.store)
    target = store_url or loaded.config.store.url
    with Store.open(target) as store:
        stats = store.tier_stats()
        where = describe_target(store.engine.url)
        file_bytes = store.file_size()
    tiers = [
        {
            "tier": s.tier,
            "bucket_ms": s.width_ms or None,
            "series": s.series,
            "rows": s.rows,
            "points": s.points,
            "bytes": s.bytes,
            "bytes_per_point": round(s.bytes / s.points, 3) if s.points else None,
            "oldest_ms": s.oldest_ms,
            "newest_ms": s.newest_ms,
            "retention_ms": retention.of(s.width_ms),
        }
        for s in stats
    ]
    if as_json:
        doc = {"store": where, "file_bytes": file_bytes, "tiers": tiers}
        typer.echo(json.dumps(doc, indent=2))
        return
    out = console()
    size = f", file {_mib(file_bytes)}" if file_bytes is not None else ""
    out.print(f"store {where}{size}", markup=False, soft_wrap=True)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for name, justify in (
        ("tier", "left"),
        ("series", "right"),
        ("points", "right"),
        ("stored", "right"),
        ("B/point", "right"),
        ("oldest", "left"),
        ("newest", "left"),
        ("kept", "right"),
    ):
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for s, row in zip(stats, tiers, strict=True):
        per = row["bytes_per_point"]
        table.add_row(
            s.tier if s.width_ms != RAW else "raw",
            f"{s.series:,}",
            f"{s.points:,}",
            _mib(s.bytes),
            "-" if per is None else f"{per:.2f}",
            "-" if s.oldest_ms is None else iso_date(s.oldest_ms),
            "-" if s.newest_ms is None else iso_date(s.newest_ms),
            format_duration_ms(retention.of(s.width_ms)),
        )
    out.print(table)
    out.print("points: raw samples, or buckets of min/max/sum/count; days in UTC", markup=False)


def _mib(size: int | None) -> str:
    if size is None:
        return "-"
    if size < 1_048_576:
        return f"{size / 1024:.1f} KiB"
    return f"{size / 1_048_576:.1f} MiB"
