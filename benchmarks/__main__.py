"""Run every benchmark and write docs/performance.md.

Usage: ``python -m benchmarks [--quick] [--only AREA ...] [--output PATH] [--update]``.

``--update`` (with ``--only``) replaces only the rows of the areas it ran in an
existing output file: every other row keeps the run that measured it, and the
header gains a line naming this run, its areas and its commit, so a reader
knows which rows came from which run. ``--only`` without ``--update`` or
``--output`` prints its table and leaves docs/performance.md as it is.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import platform
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import Figure

ROOT = Path(__file__).resolve().parent.parent


def _machine() -> str:
    cpus = os.cpu_count() or 0
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        first = meminfo.read_text().splitlines()[0].split()
        mem = f", {int(first[1]) / 1024 / 1024:.0f} GiB RAM"
    return (
        f"{platform.system()} {platform.machine()}, {cpus} CPUs ({model or 'unknown CPU'}){mem},"
        f" Python {platform.python_version()}"
    )


def _fmt(value: float | None) -> str:
    if value is None:
        return ""
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


TABLE_HEADER = "| area | figure | value | target | met | anchor | anchor value | ratio | note |"
#: How a line of the header names the areas an ``--update`` run measured again.
UPDATE_PREFIX = "Rows of "


def _commit() -> str:
    """The checkout's short commit id, or "unknown" outside a git checkout."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return "unknown"
    return done.stdout.strip() or "unknown"


def _row(f: Figure) -> str:
    met = {True: "yes", False: "**no**", None: ""}[f.met]
    ratio = f"{f.ratio:.3g}x" if f.ratio is not None else ""
    return (
        f"| {f.area} | {f.name} | {_fmt(f.value)} {f.unit} | {f.target} | {met} | "
        f"{f.anchor_name or ''} | {_fmt(f.anchor_value)} | {ratio} | {f.note} |"
    )


def _still_current(line: str, areas: set[str]) -> str | None:
    """A header line of an earlier ``--update`` run, less the areas measured again now.

    ``Rows of A, B: measured by ...`` names the areas that run replaced; an
    area measured again now is no longer from that run. None when none is left.
    """
    if not line.startswith(UPDATE_PREFIX) or ": " not in line:
        return line
    named, rest = line[len(UPDATE_PREFIX) :].split(": ", 1)
    left = [area for area in named.split(", ") if area not in areas]
    if not left:
        return None
    return f"{UPDATE_PREFIX}{', '.join(left)}: {rest}"


def _update(existing: str, figures: list[Figure], areas: set[str], line: str) -> str:
    """``existing`` with the rows of ``areas`` replaced by ``figures`` and ``line`` added."""
    lines = existing.rstrip("\n").split("\n")
    if TABLE_HEADER not in lines:
        raise ValueError("no figures table to update (run without --update first)")
    at = lines.index(TABLE_HEADER)
    header, rows = lines[:at], lines[at + 2 :]
    while header and not header[-1].strip():
        header.pop()
    header = [c for h in header if (c := _still_current(h, areas)) is not None]
    kept = [r for r in rows if r.startswith("| ") and r.split(" | ")[0][2:] not in areas]
    # Areas stay in alphabetical order (as a full run writes them); a stable sort
    # keeps each area's own rows in the order its benchmark gave them.
    merged = sorted(kept + [_row(f) for f in figures], key=lambda r: r.split(" | ")[0])
    return "\n".join([*header, line, "", TABLE_HEADER, lines[at + 1], *merged]) + "\n"


def _render(figures: list[Figure], quick: bool, command: str, elapsed: float) -> str:
    lines = [
        "# Performance",
        "",
        f"Measured by `{command}` on {time.strftime('%Y-%m-%d', time.gmtime())}"
        f" in {elapsed:.0f} s, on {_machine()}.",
        "Each anchor was measured in the same run, on the same machine; ratios compare the two.",
        "Figures are medians of repeated runs where the benchmark repeats.",
    ]
    if quick:
        lines.append("")
        lines.append(
            "**Quick run** (`--quick`): short runs to keep the benchmarks working; "
            "the figures are indicative only."
        )
    lines += ["", TABLE_HEADER, "|---|---|---|---|---|---|---|---|---|"]
    lines += [_row(f) for f in figures]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="run each benchmark briefly")
    parser.add_argument("--only", nargs="*", default=None, help="areas (module suffixes) to run")
    parser.add_argument("--output", type=Path, default=None, help="default: docs/performance.md")
    parser.add_argument(
        "--update",
        action="store_true",
        help="with --only: replace only these areas' rows in the existing output file",
    )
    args = parser.parse_args(argv)
    if args.update and not args.only:
        parser.error("--update needs --only: a full run rewrites the whole file")
    # A partial run never replaces the whole page with a few areas' rows: without
    # --update or --output it prints its table instead.
    to_stdout = bool(args.only) and not args.update and args.output is None
    if args.output is None:
        args.output = ROOT / "docs" / "performance.md"
    if args.update and not args.output.is_file():
        parser.error(f"--update: {args.output} does not exist yet")

    names = sorted(
        m.name
        for m in pkgutil.iter_modules([str(Path(__file__).parent)])
        if m.name.startswith("bench_")
    )
    if args.only:
        known = {n.removeprefix("bench_") for n in names}
        if unknown := [area for area in args.only if area not in known]:
            parser.error(f"--only: unknown area {unknown[0]!r}; known: {', '.join(sorted(known))}")
        names = [n for n in names if n.removeprefix("bench_") in args.only]
    figures: list[Figure] = []
    started = time.perf_counter()
    for name in names:
        module = importlib.import_module(f"benchmarks.{name}")
        print(f"running {name} ...", file=sys.stderr, flush=True)
        results: list[Figure] = module.run(args.quick)
        for fig in results:
            print(
                f"  {fig.name}: {_fmt(fig.value)} {fig.unit} (target {fig.target})",
                file=sys.stderr,
                flush=True,
            )
        figures.extend(results)
    elapsed = time.perf_counter() - started
    command = "python -m benchmarks" + (" --quick" if args.quick else "")
    if args.only:
        command += " --only " + " ".join(args.only)
    if to_stdout:
        sys.stdout.write(_render(figures, args.quick, command, elapsed))
        print(
            f"{args.output} left as it is: --update replaces these areas' rows there",
            file=sys.stderr,
        )
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    if args.update:
        areas = {f.area for f in figures} | {n.removeprefix("bench_") for n in names}
        line = (
            f"{UPDATE_PREFIX}{', '.join(sorted({f.area for f in figures}))}:"
            f" measured by `{command}` on"
            f" {time.strftime('%Y-%m-%d', time.gmtime())} in {elapsed:.0f} s on {_machine()},"
            f" commit {_commit()},"
            " replacing that area's rows of the run above; each anchor still from the same run."
        )
        text = _update(args.output.read_text(), figures, areas, line)
    else:
        text = _render(figures, args.quick, command, elapsed)
    args.output.write_text(text)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
