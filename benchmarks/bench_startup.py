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

Beside them, without targets, the floor under two of those figures on this
machine: one process that only imports the modules the command imported (read
from ``PYTHONPROFILEIMPORTTIME``) and does nothing else, for the warm scan
once without the store's libraries (SQLAlchemy, numpy and secperf's store,
runtime and bus, which a scan needs only to record itself) and for
``findings list`` with all of them.

The console script is run (not ``python -m secperf``, which would put the
scanned copy of the standard library first on ``sys.path``). ``--quick`` runs
3 rounds instead of 10 and scans only the standard library's top-level
modules, so that the cold scan stays short.
"""

from __future__ import annotations

import os
import re
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


def _run(
    argv: Sequence[str], cwd: Path, *, check: bool = True, ok: tuple[int, ...] = (0, 1)
) -> float:
    """Seconds one process takes from start to exit (its output goes to a pipe).

    ``ok``: the exit codes of a finished run (1: a scan found new findings at
    or above its threshold).
    """
    start = time.perf_counter()
    proc = subprocess.run(
        list(argv), cwd=cwd, env=_env(), capture_output=True, timeout=3600, check=False
    )
    elapsed = time.perf_counter() - start
    if check and proc.returncode not in ok:
        raise RuntimeError(
            f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.decode()[-2000:]}"
        )
    return elapsed


#: What a warm scan imports only to record itself: the store's libraries and modules.
RECORDING = (
    "sqlalchemy",
    "numpy",
    "secperf.store",
    "secperf.runtime",
    "secperf.bus",
    "secperf.commands.pacing",
    # The use case that opens the store (the modules it uses are imported on their own).
    "secperf.commands.scanning",
    "secperf.security.pacing",
    "secperf.perf",
)
_IMPORTED = re.compile(r"import time:\s+\d+ \|\s+\d+ \|\s*(\S+)")


def _imported_modules(argv: Sequence[str], cwd: Path) -> list[str]:
    """The modules one run of ``argv`` imports, in the order their imports ended."""
    env = {**_env(), "PYTHONPROFILEIMPORTTIME": "1"}
    proc = subprocess.run(
        list(argv), cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    return [m.group(1) for line in proc.stderr.splitlines() if (m := _IMPORTED.match(line))]


def _import_script(path: Path, modules: Sequence[str], leave_out: Sequence[str] = ()) -> int:
    """Write a script that imports ``modules`` (less ``leave_out`` and its submodules).

    Returns how many modules it imports. The script fails if any of them
    cannot be imported, so the floor never leaves one out, and if one of them
    imported a module of ``leave_out`` after all.
    """
    kept = [
        m
        for m in dict.fromkeys(modules)
        if m != "__main__" and not any(m == o or m.startswith(o + ".") for o in leave_out)
    ]
    # A module the command tried and did without (site's sitecustomize, optional
    # imports) is missing here too; any other failure ends the script with 3.
    path.write_text(
        "import importlib, sys\n"
        f"for name in {kept!r}:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ModuleNotFoundError as exc:\n"
        "        if not (name == exc.name or name.startswith(f'{exc.name}.')):\n"
        "            print(name, exc, file=sys.stderr)\n"
        "            sys.exit(3)\n"
        "    except Exception as exc:\n"
        "        print(name, exc, file=sys.stderr)\n"
        "        sys.exit(3)\n"
        f"left_out = {tuple(leave_out)!r}\n"
        "if any(m == o or m.startswith(o + '.') for m in sys.modules for o in left_out):\n"
        "    print('a module left out was imported after all', file=sys.stderr)\n"
        "    sys.exit(3)\n",
        encoding="utf-8",
    )
    return len(kept)


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
        floors = Path(tmp) / "floors"
        floors.mkdir()
        scan_floor, list_floor = floors / "scan_floor.py", floors / "list_floor.py"
        _run([str(secperf), "scan"], root)  # the first warm scan compiles and fills the store
        scan_modules = _import_script(
            scan_floor, _imported_modules([str(secperf), "scan"], root), RECORDING
        )
        list_modules = _import_script(
            list_floor, _imported_modules([str(secperf), "findings", "list"], root)
        )
        commands: dict[str, list[str]] = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "secperf --version": [str(secperf), "--version"],
            "secperf --help": [str(secperf), "--help"],
            "secperf scan (warm, nothing changed)": [str(secperf), "scan"],
            "secperf findings list": [str(secperf), "findings", "list"],
            "imports of the warm scan, less recording": [sys.executable, str(scan_floor)],
            "imports of findings list": [sys.executable, str(list_floor)],
        }
        if bandit is not None:
            commands["bandit --version"] = [str(bandit), "--version"]
        times: dict[str, list[float]] = {name: [] for name in commands}
        # The import floors must import every module: they exit 0 or fail the benchmark.
        codes = {
            name: (0,) if argv[0] == sys.executable else (0, 1) for name, argv in commands.items()
        }
        for name, argv in commands.items():
            _run(argv, root, ok=codes[name])  # one unmeasured run: the page cache holds every file
        for _ in range(rounds):
            for name, argv in commands.items():
                times[name].append(_run(argv, root, ok=codes[name]))
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
        Figure(
            AREA,
            f"floor: imports of the warm scan less recording, no work (median of {rounds})",
            ms["imports of the warm scan, less recording"],
            "ms",
            "",
            None,
            "python -c pass",
            python,
            f"{scan_modules} modules: what the warm scan imported, less SQLAlchemy, numpy and"
            " secperf's store, runtime, bus, pacing, perf and scanning use case",
        ),
        Figure(
            AREA,
            f"floor: imports of findings list, no work (median of {rounds})",
            ms["imports of findings list"],
            "ms",
            "",
            None,
            "python -c pass",
            python,
            f"{list_modules} modules: everything that command imported",
        ),
    ]
    return figures
