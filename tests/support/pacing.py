"""Helpers for the scan pacing tests: a slow scanner, a project, process states."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

import psutil

from secperf.events import MetricsRecorded
from secperf.model import Sample
from secperf.security.scanners.interface import FileResult, Scanner, SourceFile, stable_hash

GUARD_NAME = "response_time_ms"
GUARD_LABELS = {"job": "api", "quantile": "0.95"}
GUARD_SELECTOR = 'response_time_ms{job="api",quantile="0.95"}'


class SlowScanner(Scanner):
    """Takes ``per_file_s`` of wall time per file (sleeping) and finds nothing."""

    id = "slow"

    def __init__(self, per_file_s: float = 0.05) -> None:
        self.per_file_s = per_file_s

    def version(self) -> str:
        return "1"

    def config_hash(self) -> str:
        return stable_hash(str(self.per_file_s))

    def applies_to(self, relpath: str) -> bool:
        return relpath.endswith(".py")

    def scan_file(self, root: Path, source: SourceFile) -> FileResult:
        time.sleep(self.per_file_s)
        return FileResult(source.relpath, [])


def write_project(root: Path, files: int) -> Path:
    """``files`` small Python files under ``root`` (created)."""
    root.mkdir(parents=True, exist_ok=True)
    for index in range(files):
        (root / f"module_{index:03d}.py").write_text(f"VALUE_{index} = {index}\n")
    return root


def guard_batch(value: float, ts_ms: int, labels: dict[str, str] | None = None) -> MetricsRecorded:
    """One sample of the test's guard series, as the bus carries it."""
    sample = Sample(GUARD_NAME, dict(labels or GUARD_LABELS), ts_ms, value)
    return MetricsRecorded(samples=(sample,))


def stopped(pids: Iterable[int]) -> list[int]:
    """The pids among ``pids`` whose process is stopped (SIGSTOP) now."""
    found = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_STOPPED:
                found.append(pid)
        except psutil.NoSuchProcess:
            continue
    return found


def alive(pids: Iterable[int]) -> list[int]:
    """The pids among ``pids`` that still run (zombies count as gone)."""
    found = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                found.append(pid)
        except psutil.NoSuchProcess:
            continue
    return found
