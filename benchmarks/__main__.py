"""Run every benchmark and write docs/performance.md.

Usage: ``python -m benchmarks [--quick] [--only AREA ...] [--output PATH]``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import platform
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
    lines += [
        "",
        "| area | figure | value | target | met | anchor | anchor value | ratio | note |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for f in figures:
        met = {True: "yes", False: "**no**", None: ""}[f.met]
        ratio = f"{f.ratio:.3g}x" if f.ratio is not None else ""
        lines.append(
            f"| {f.area} | {f.name} | {_fmt(f.value)} {f.unit} | {f.target} | {met} | "
            f"{f.anchor_name or ''} | {_fmt(f.anchor_value)} | {ratio} | {f.note} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="run each benchmark briefly")
    parser.add_argument("--only", nargs="*", default=None, help="areas (module suffixes) to run")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "performance.md")
    args = parser.parse_args(argv)

    names = sorted(
        m.name
        for m in pkgutil.iter_modules([str(Path(__file__).parent)])
        if m.name.startswith("bench_")
    )
    if args.only:
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
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(_render(figures, args.quick, command, elapsed))
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
