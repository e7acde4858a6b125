"""``secperf import pytest-benchmark`` and ``secperf import asv``: store benchmark results.

(The module name has an underscore because ``import`` is a keyword.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from secperf.cli.common import console, fail, load_or_exit, open_store

app = typer.Typer(
    help="Import benchmark results: pytest-benchmark JSON or asv results.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _import_kind(ctx: typer.Context, files: list[Path], kind: str) -> None:
    # The store loads only when a command writes to it.
    from rich.markup import escape

    from secperf.commands.bench import load_benchmark_files, status_counts, store_results
    from secperf.perf.benchmarks import BenchmarkImportError

    loaded = load_or_exit(ctx)
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
    out = console()
    for item in imported:
        out.print(f"{escape(str(item.path))}: {status_counts(item.results)}", soft_wrap=True)
    out.print(f"{added} new results stored ({len(every) - added} already stored)")


@app.command("pytest-benchmark")
def import_pytest_benchmark(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(help="pytest-benchmark JSON files.")],
) -> None:
    """Store pytest-benchmark results (all or nothing)."""
    _import_kind(ctx, files, "pytest-benchmark")


@app.command("asv")
def import_asv(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="asv results directories or files.")],
) -> None:
    """Store asv results (all or nothing)."""
    _import_kind(ctx, paths, "asv")
