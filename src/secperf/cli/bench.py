"""``secperf bench``: time a command, import benchmark results, list them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from secperf.cli.common import console, duration_option, fail, load_or_exit, open_store

if TYPE_CHECKING:
    from rich.table import Table

    from secperf.model import BenchmarkResult
    from secperf.perf.command_timing import CommandTiming


class DefaultRunGroup(TyperGroup):
    """A command group whose first argument, when not a subcommand, means ``run``.

    So ``secperf bench -n 5 -- CMD`` is ``secperf bench run -n 5 -- CMD``, while
    ``secperf bench import FILE`` and ``secperf bench list`` stay subcommands.
    """

    default_command = "run"

    # ctx is Typer's own click Context (a vendored copy), typed loosely on purpose.
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        """Insert the default command when the first argument names no subcommand."""
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=DefaultRunGroup,
    help="Time a command (bench run, or just bench -- CMD), import and list benchmark results.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command(
    "run", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False}
)
def bench_run(
    ctx: typer.Context,
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
    # The store loads only when a command writes to it.
    from rich.markup import escape

    from secperf.commands.bench import run_benchmark, store_results
    from secperf.perf.command_timing import CommandTimingError

    timeout_s = duration_option(timeout, "--timeout")
    loaded = load_or_exit(ctx)
    try:
        timing, result = run_benchmark(
            command, runs=runs, warmup=warmup, name=name, root=loaded.root, timeout_s=timeout_s
        )
    except (CommandTimingError, ValueError) as exc:
        fail(f"secperf bench: {exc}")
    with open_store(loaded) as store:
        store_results(store, [result])
    out = console()
    out.print(timing_table(result.name, timing))
    commit = (result.commit or "no commit")[:12]
    out.print(f"stored as {escape(result.name)!r} ({commit}, machine {result.machine})")


@app.command("import")
def bench_import(
    ctx: typer.Context,
    files: Annotated[
        list[Path],
        typer.Argument(help="pytest-benchmark JSON files, asv results files or directories."),
    ],
) -> None:
    """Store pytest-benchmark or asv results (detected by content); all or nothing."""
    from rich.markup import escape

    from secperf.commands.bench import load_benchmark_files, status_counts, store_results
    from secperf.perf.benchmarks import BenchmarkImportError

    loaded = load_or_exit(ctx)
    try:
        imported = load_benchmark_files(files)
    except BenchmarkImportError as exc:
        fail(f"cannot import: {exc}; nothing was stored")
    every = [r for item in imported for r in item.results]
    with open_store(loaded) as store:
        added = store_results(store, every)
    out = console()
    for item in imported:
        out.print(
            f"{escape(str(item.path))}: {item.kind}, {status_counts(item.results)}", soft_wrap=True
        )
    out.print(f"{added} new results stored ({len(every) - added} already stored)")


@app.command("list")
def bench_list(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Option("--name", help="Only this benchmark.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Stored benchmark results, oldest first: name, commit, machine, median, rounds."""
    from secperf.model import ExitCode

    loaded = load_or_exit(ctx)
    with open_store(loaded) as store:
        results = store.benchmark_results(name=name, limit=limit)
    if as_json:
        import json
        from dataclasses import asdict

        typer.echo(json.dumps({"results": [asdict(r) for r in results]}, indent=2))
        return
    if not results:
        fail(
            f"no stored results{f' named {name!r}' if name else ''}: "
            "run `secperf bench run -- CMD` or `secperf bench import FILE`",
            ExitCode.OK,
        )
    console().print(results_table(results))


# --------------------------------------------------------------------------- display


def seconds(value: float | None) -> str:
    """A duration in seconds shown with a readable unit."""
    if value is None:
        return "-"
    size = abs(value)
    if size >= 1:
        return f"{value:.3f} s"
    if size >= 1e-3:
        return f"{value * 1e3:.3f} ms"
    if size >= 1e-6:
        return f"{value * 1e6:.3f} µs"
    return f"{value * 1e9:.1f} ns"


def _size(value: float) -> str:
    for unit in ("B", "KiB"):
        if abs(value) < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} MiB"


def timing_table(name: str, timing: CommandTiming) -> Table:
    """The measured runs of one command: median, MAD, min, max, max RSS."""
    from rich.table import Table
    from rich.text import Text

    # Text, not markup: a command line may hold square brackets.
    table = Table(title=Text(f"{name} ({timing.runs} runs after {timing.warmup} warm-up)"))
    for column in ("median", "MAD", "min", "max", "mean", "max RSS"):
        table.add_column(column, justify="right")
    table.add_row(
        seconds(timing.median_s),
        seconds(timing.mad_s),
        seconds(timing.min_s),
        seconds(timing.max_s),
        seconds(timing.mean_s),
        _size(timing.peak_rss_bytes),
    )
    return table


def _value(value: float | None, unit: Any) -> str:
    if value is None:
        return "-"
    if unit in (None, "seconds"):
        return seconds(value)
    if unit == "bytes":
        return _size(value)
    return f"{value:g} {unit}" if isinstance(unit, str) else f"{value:g}"


def results_table(results: Sequence[BenchmarkResult], title: str = "benchmark results") -> Table:
    """Stored results: name, commit, machine, median, rounds and status."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    # Light rules and one space between columns leave the name most of 80 columns.
    table = Table(
        title=Text(title),
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
    )
    # Only the name may wrap: the other columns are short and read best whole.
    table.add_column("name", overflow="fold", ratio=1, min_width=16)
    table.add_column("commit", no_wrap=True)
    table.add_column("machine", no_wrap=True)
    table.add_column("median", justify="right", no_wrap=True)
    table.add_column("rounds", justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    for r in results:
        params = ", ".join(f"{k}={v}" for k, v in r.params.items())
        rounds = r.stats.get("rounds")
        unit = r.extra.get("unit")
        median = r.stats.get("median", r.stats.get("result"))
        table.add_row(
            # Text, not markup: pytest's parametrised names hold square brackets.
            Text(f"{r.name} [{params}]" if params else r.name),
            (r.commit or "-")[:8],
            r.machine[:8],
            _value(median, unit),
            "-" if rounds is None else f"{rounds:g}",
            Text(r.status),
        )
    return table
