"""The deadline of a low-priority scan on a host kept busy by other processes.

Real busy-loop processes take every core; the scan's real niced workers then
barely progress. Whatever the budget's state, once the deadline passes the
record says so and when, the workers' priority is raised as far as the OS
allows, and the scan's output says it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from secperf.commands.pacing import ScanPacing
from secperf.config.sections.impact import ImpactConfig
from secperf.security.pacing.controller import DEADLINE_FLOOR_MS
from secperf.security.pacing.document import PacingDocument
from secperf.security.scanners.interface import FileResult, Scanner, SourceFile, stable_hash
from secperf.security.validator import ScanReport, SecurityValidator
from support.pacing import write_project

FILES = 30


class CpuScanner(Scanner):
    """Burns ``per_file`` loop iterations of CPU per file and finds nothing."""

    id = "cpu"

    def __init__(self, per_file: int = 300_000) -> None:
        self.per_file = per_file

    def version(self) -> str:
        return "1"

    def config_hash(self) -> str:
        return stable_hash(str(self.per_file))

    def applies_to(self, relpath: str) -> bool:
        return relpath.endswith(".py")

    def scan_file(self, root: Path, source: SourceFile) -> FileResult:
        total = 0
        for index in range(self.per_file):
            total += index
        return FileResult(source.relpath, [])


@contextlib.contextmanager
def busy_cores() -> Iterator[None]:
    """One busy loop per core, at the normal priority; killed at the end."""
    loops = [
        subprocess.Popen([sys.executable, "-c", "while 1: pass"])
        for _ in range(os.cpu_count() or 2)
    ]
    try:
        yield
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()


def _scan(project: Path) -> ScanReport:
    async def main() -> ScanReport:
        validator = SecurityValidator([CpuScanner()], jobs=2)
        # No guard: the budget is not configured, yet the deadline still holds.
        pacing = ScanPacing(ImpactConfig(guard=[]), priority="low", store=None, bus=None)
        pacing.configure(validator)
        try:
            # A tiny prediction: the deadline is the floor, not 4 x 50 ms.
            return await pacing.scan(validator, project, ["."], predicted_ms=50)
        finally:
            validator.close()

    return asyncio.run(main())


def test_a_starved_low_priority_scan_passes_its_deadline_and_says_so(tmp_path: Path) -> None:
    project = write_project(tmp_path / "project", FILES)
    with busy_cores():
        report = _scan(project)
    assert report.status == "ok" and report.metrics.files_scanned == FILES
    assert report.pacing is not None
    pacing = report.pacing
    assert pacing["budget"]["state"] == "not_configured"
    assert pacing["deadline_reached"] is True
    assert pacing["deadline_ms"] is not None
    assert pacing["deadline_reached_ms"] >= pacing["deadline_ms"]
    assert pacing["deadline_after_ms"] >= DEADLINE_FLOOR_MS
    assert pacing["throttled_ms"] == 0
    applied = pacing["priority_applied"]
    if os.geteuid() == 0:  # CAP_SYS_NICE: the workers are raised back to nice 0
        assert applied["nice"] == 0
        assert pacing["deadline_action"] == (
            "throttling stopped, workers raised to nice 0 and best-effort I/O"
        )
    else:  # unprivileged: nice stays 19, and the record says why
        assert applied["nice"] == 19
        assert "CAP_SYS_NICE" in pacing["deadline_action"]
    summary = PacingDocument.from_document(pacing).summary()
    assert "; deadline passed after " in summary
    assert "(predicted 0.1 s): throttling stopped" in summary
    assert PacingDocument.from_document(pacing).to_document() == pacing
