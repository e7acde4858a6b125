"""``secperf bench``: time a command, import pytest-benchmark and asv results, list them.

Every result is stored as a ``BenchmarkResult`` keyed by name, commit and
machine fingerprint, so that the gate and the regression analysis compare a
measurement only with earlier ones from a comparable machine.

An import reads and checks every given file before it stores anything: a
malformed file stops the whole import with an error naming the file and the
JSON path of the bad value, and nothing of it (nor of the other files) is
stored.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from secperf.model import BenchmarkResult
from secperf.perf.benchmarks import (
    BenchmarkImportError,
    load_asv_results,
    load_pytest_benchmark,
)
from secperf.perf.command_timing import CommandTiming, time_command, to_benchmark_result

if TYPE_CHECKING:  # the store is heavy to import
    from secperf.store import Store

__all__ = [
    "ImportedFile",
    "git_commit",
    "load_benchmark_file",
    "load_benchmark_files",
    "run_benchmark",
]

#: The longest benchmark name made from a command line.
_MAX_NAME = 200
_ASV_SIDE_FILES = {
    "machine.json": "asv's machine.json",
    "benchmarks.json": "asv's benchmarks.json",
}


def git_commit(root: Path) -> str | None:
    """The commit checked out in ``root`` (``git rev-parse HEAD``), or None.

    None when git is missing, ``root`` is not in a repository, or the
    repository has no commit yet. Runs git directly, never through a shell.
    """
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    if done.returncode != 0 or len(commit) not in (40, 64):
        return None
    return commit


def default_name(argv: Sequence[str]) -> str:
    """A benchmark name from a command line (shortened when very long)."""
    text = " ".join(argv)
    return text if len(text) <= _MAX_NAME else text[: _MAX_NAME - 3] + "..."


def run_benchmark(
    argv: Sequence[str],
    *,
    runs: int,
    warmup: int,
    name: str | None,
    root: Path,
    timeout_s: float | None = None,
) -> tuple[CommandTiming, BenchmarkResult]:
    """Time ``argv`` (in ``root``) and describe it as a result of this machine and commit.

    Raises ``CommandTimingError`` when the command cannot run, fails or times
    out, and ValueError for invalid counts.
    """
    if name is not None and not name.strip():
        raise ValueError("--name must not be empty")
    timing = time_command(argv, runs=runs, warmup=warmup, timeout_s=timeout_s, cwd=root)
    result = to_benchmark_result(timing, name or default_name(timing.argv), git_commit(root))
    return timing, result


# --------------------------------------------------------------------------- import


@dataclass(frozen=True, slots=True)
class ImportedFile:
    """One file (or asv directory) read for import, and what it held."""

    path: Path
    kind: str  # pytest-benchmark | asv
    results: list[BenchmarkResult]


def _detect(path: Path) -> str:
    """``pytest-benchmark`` or ``asv``, from the content; raises BenchmarkImportError."""
    if path.is_dir():
        return "asv"
    if not path.exists():
        raise BenchmarkImportError(path, "", "no such file or directory")
    if path.name in _ASV_SIDE_FILES:
        raise BenchmarkImportError(
            path,
            "",
            f"this is {_ASV_SIDE_FILES[path.name]}, not a results file; "
            "give the results directory or a results file",
        )
    try:
        doc: Any = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise BenchmarkImportError(path, "", f"not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise BenchmarkImportError(path, "", f"cannot read: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise BenchmarkImportError(
            path, "", f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    if isinstance(doc, dict):
        if "benchmarks" in doc:
            return "pytest-benchmark"
        if "results" in doc:
            return "asv"
    raise BenchmarkImportError(
        path,
        "",
        "neither a pytest-benchmark file (no 'benchmarks' key) "
        "nor an asv results file (no 'results' key)",
    )


def load_benchmark_file(path: Path) -> ImportedFile:
    """Read one pytest-benchmark JSON file, asv results file or asv results directory.

    Every entry must be valid: the first bad one raises ``BenchmarkImportError``
    naming the file and the JSON path of the bad value.
    """
    kind = _detect(path)
    if kind == "pytest-benchmark":
        results = load_pytest_benchmark(path, strict=True)
    else:
        results = load_asv_results(path, strict=True)
    return ImportedFile(path, kind, results)


def load_benchmark_files(paths: Sequence[Path]) -> list[ImportedFile]:
    """Read every file first, so that one bad file means nothing is stored."""
    return [load_benchmark_file(path) for path in paths]


def status_counts(results: Sequence[BenchmarkResult]) -> str:
    """``"12 ok, 2 skipped, 1 failed"``: how many results have each status."""
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no results"


def store_results(store: Store, results: Sequence[BenchmarkResult]) -> int:
    """Store results in one transaction; returns how many were new."""
    return store.add_benchmark_results(results)
