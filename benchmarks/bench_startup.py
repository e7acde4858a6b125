"""Start-up: whole ``secperf`` processes, as a pre-commit hook or an editor runs them.

Each figure is the median wall-clock time of one complete process (start,
import, work, exit), measured in rounds that interleave every command with
its anchors, ``python -c pass`` and ``bandit --version``, so that a busy
machine slows all of them alike:

- ``secperf --version`` and ``secperf --help`` (target 100 ms each);
- a warm ``secperf scan`` of a copy of the standard library with nothing
  changed since the previous scan, its tables printed to a pipe (target 0.5 s):
  the findings table lists its default 50 findings (``--limit``) and says how
  many more there are; a cold scan first fills the cache and the store;
- ``secperf findings list`` on that store (target 0.3 s).

The console script is run (not ``python -m secperf``, which would put the
scanned copy of the standard library first on ``sys.path``). ``--quick`` runs
3 rounds instead of 10 and scans only the standard library's top-level
modules, so that the cold scan stays short.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.common import Figure

AREA = "startup"
#: Parts of the standard library's directory that are not the standard library.
NOT_STDLIB = {"site-packages", "dist-packages", "__pycache__", "lib-dynload", "idlelib"}


def _bin(name: str) -> Path | None:
    """A console script of this environment (beside the interpreter), or None."""
    path = Path(sys.executable).parent / name
    return path if path.exists() else None


def _env() -> dict[str, str]:
    """The commands' environment: the caller's, less what would change the measurement.

    A developer's own ``SECPERF_*`` settings are dropped, and so is
    ``PYTHONDONTWRITEBYTECODE``: an installed secperf has compiled bytecode (pip
    compiles it), and an editable install writes it on its first run; with the
    variable set, every measured process would compile secperf's sources again.
    The unmeasured run of each command writes the bytecode.
    """
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SECPERF_") and k != "PYTHONDONTWRITEBYTECODE"
    }


def _run(argv: Sequence[str], cwd: Path, *, check: bool = True) -> float:
    """Seconds one process takes from start to exit (its output goes to a pipe)."""
    start = time.perf_counter()
    proc = subprocess.run(
        list(argv), cwd=cwd, env=_env(), capture_output=True, timeout=3600, check=False
    )
    elapsed = time.perf_counter() - start
    # 1: the scan found new findings at or above its threshold; still a finished run.
    if check and proc.returncode not in (0, 1):
        raise RuntimeError(
            f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.decode()[-2000:]}"
        )
    return elapsed


def _copy_stdlib(dest: Path, quick: bool) -> int:
    """Copy the standard library's sources into ``dest``; the number of .py files."""
    source = Path(sysconfig.get_paths()["stdlib"])
    dest.mkdir(parents=True)
    for entry in source.iterdir():
        if entry.name in NOT_STDLIB or entry.name.startswith(("config-", ".")):
            continue
        if entry.is_file() and entry.suffix == ".py":
            shutil.copy2(entry, dest / entry.name)
        elif entry.is_dir() and not quick:
            shutil.copytree(
                entry, dest / entry.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )
    return sum(1 for _ in dest.rglob("*.py"))


def run(quick: bool) -> list[Figure]:
    """Time every command in interleaved rounds; one figure per command and per anchor."""
    secperf = _bin("secperf")
    if secperf is None:
        raise RuntimeError("the secperf console script is not installed beside this Python")
    rounds = 3 if quick else 10
    bandit = _bin("bandit")
    with tempfile.TemporaryDirectory(prefix="secperf-startup-") as tmp:
        root = Path(tmp) / "stdlib"
        files = _copy_stdlib(root, quick)
        cold = _run(
            [str(secperf), "scan", "--format", "json", "-o", str(Path(tmp) / "cold.json")], root
        )
        commands: dict[str, list[str]] = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "secperf --version": [str(secperf), "--version"],
            "secperf --help": [str(secperf), "--help"],
            "secperf scan (warm, nothing changed)": [str(secperf), "scan"],
            "secperf findings list": [str(secperf), "findings", "list"],
        }
        if bandit is not None:
            commands["bandit --version"] = [str(bandit), "--version"]
        times: dict[str, list[float]] = {name: [] for name in commands}
        for argv in commands.values():
            _run(argv, root)  # one unmeasured run: the page cache holds every file
        for _ in range(rounds):
            for name, argv in commands.items():
                times[name].append(_run(argv, root))
    ms = {name: statistics.median(values) * 1000 for name, values in times.items()}
    python = ms["python -c pass"]
    bandit_ms = ms.get("bandit --version")
    where = "top-level modules" if quick else "all"
    scanned = (
        f"{files} .py files of the standard library ({where}); cold scan {cold:.1f} s;"
        " table of the first 50 findings"
    )

    def figure(name: str, target_ms: float, note: str = "") -> Figure:
        value = ms[name]
        return Figure(
            AREA,
            f"{name}, whole process (median of {rounds})",
            value,
            "ms",
            f"<= {target_ms:.0f} ms",
            value <= target_ms,
            "python -c pass",
            python,
            note,
        )

    figures = [
        Figure(AREA, f"python -c pass (median of {rounds})", python, "ms", "", None),
    ]
    if bandit_ms is not None:
        figures.append(
            Figure(AREA, f"bandit --version (median of {rounds})", bandit_ms, "ms", "", None)
        )
    figures += [
        figure("secperf --version", 100, "answered before Typer loads"),
        figure("secperf --help", 100, "Typer's help; no command module imported"),
        figure("secperf scan (warm, nothing changed)", 500, scanned),
        figure("secperf findings list", 300, "the findings of that scan, first 200"),
    ]
    return figures
