"""What the quality gate adds to the scan it runs, on the standard library.

Target: with a warm cache, ``secperf gate`` takes at most 0.5 s longer than
``secperf scan`` on the same tree. Both are run as the CLI (subprocesses, so
interpreter start-up counts on both sides), alternately, in the same run, on
the same copy of the running interpreter's ``Lib/`` (``site-packages`` and
test folders left out; a spread of a few hundred files in quick mode), with
the bandit and secrets scanners. A first scan fills the cache and
``secperf baseline update`` accepts the findings, so both sides are warm and
the gate has its baseline, as in CI with a cached ``.secperf/``.
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
from pathlib import Path

from benchmarks.common import Figure

AREA = "gate"
QUICK_FILES = 200
TARGET_S = 0.5
_TEST_DIRS = frozenset({"test", "tests", "idle_test"})


def stdlib_tree(quick: bool) -> tuple[Path, list[str]]:
    """The stdlib root and the ``.py`` files to copy (relative POSIX paths)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*.py")
        if p.is_file()
        and not {"site-packages", "__pycache__"} & set(p.parts)
        and not _TEST_DIRS & set(p.relative_to(root).parts[:-1])
    )
    if quick:
        step = max(1, len(files) // QUICK_FILES)
        files = files[::step][:QUICK_FILES]
    return root, files


def _copy(root: Path, files: list[str], dest: Path) -> int:
    lines = 0
    for rel in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / rel, target)
        lines += (root / rel).read_bytes().count(b"\n")
    (dest / "secperf.toml").write_text('[scan]\nscanners = ["bandit", "secrets"]\n')
    return lines


def _cli(project: Path, *args: str) -> tuple[float, int]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(project.parent)}
    start = time.perf_counter()
    # Run from outside the copied tree: with it as the working directory, its
    # copies of stdlib modules would shadow the interpreter's own.
    done = subprocess.run(
        [sys.executable, "-m", "secperf", "--project-dir", str(project), *args],
        cwd=project.parent,
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1, 3) or "Traceback" in done.stderr:
        raise RuntimeError(f"secperf {' '.join(args)} failed ({done.returncode}): {done.stderr}")
    return elapsed, done.returncode


def run(quick: bool) -> list[Figure]:
    """Median wall time of ``secperf gate`` minus that of ``secperf scan``, both warm."""
    root, files = stdlib_tree(quick)
    runs = 3 if quick else 5
    with tempfile.TemporaryDirectory(prefix="secperf-bench-gate-") as tmp:
        project = Path(tmp) / "Lib"
        lines = _copy(root, files, project)
        _cli(project, "scan")  # cold: fills the cache
        _cli(project, "baseline", "update")
        scans: list[float] = []
        gates: list[float] = []
        verdicts: set[int] = set()
        for _ in range(runs):
            scans.append(_cli(project, "scan")[0])
            elapsed, code = _cli(project, "gate")
            gates.append(elapsed)
            verdicts.add(code)
    scan_s = statistics.median(scans)
    gate_s = statistics.median(gates)
    added = gate_s - scan_s
    note = (
        f"{len(files)} files, {lines:,} lines of {root.name}/ "
        f"({'quick spread' if quick else 'all, no tests'}); medians of {runs} alternating "
        f"warm runs; gate {gate_s:.2f} s vs scan {scan_s:.2f} s; "
        f"gate exit codes {sorted(verdicts)}; `scan` prints its findings table, `gate` its "
        "conditions table"
    )
    return [
        Figure(
            area=AREA,
            name="gate time added to a warm scan",
            value=added,
            unit="s",
            target=f"<= {TARGET_S} s",
            met=added <= TARGET_S,
            anchor_name="secperf scan (warm), s",
            anchor_value=scan_s,
            note=note,
        )
    ]
