"""Low priority: scan workers run niced and in the idle I/O class; the process running
the scan keeps its own priority."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import psutil
import pytest

from secperf.security.pacing.priority import LOW_NICE, PriorityState, read_priority
from secperf.security.validator import SecurityValidator
from support.pacing import SlowScanner, write_project

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux priorities")


def _validator(priority: str, jobs: int = 2) -> SecurityValidator:
    validator = SecurityValidator([SlowScanner(0.0)], jobs=jobs)
    validator.priority = priority
    return validator


def test_low_priority_workers_run_niced_in_the_idle_io_class(tmp_path: Path) -> None:
    project = write_project(tmp_path / "p", 40)
    validator = _validator("low")
    try:
        report = validator.scan(project)
        pids = validator.worker_pids()
        assert report.metrics.files_scanned == 40
        assert pids, "a low-priority scan runs in worker processes"
        for pid in pids:
            state = read_priority(pid)
            assert state.nice == LOW_NICE
            assert state.io_class == "idle"
            assert state.scheduler == "SCHED_OTHER"  # SCHED_IDLE could starve the scan
            assert psutil.Process(pid).ionice().ioclass == psutil.IOPRIO_CLASS_IDLE
    finally:
        validator.close()
    own = read_priority(os.getpid())
    assert own.nice == os.nice(0) and own.scheduler == "SCHED_OTHER"


def test_a_small_low_priority_scan_still_goes_to_a_worker(tmp_path: Path) -> None:
    # Few files would be scanned in this process, which must not be reniced.
    project = write_project(tmp_path / "p", 3)
    own_nice = os.nice(0)
    validator = _validator("low", jobs=1)
    try:
        validator.scan(project)
        pids = validator.worker_pids()
        assert len(pids) == 1
        assert read_priority(pids[0]).nice == LOW_NICE
    finally:
        validator.close()
    assert os.nice(0) == own_nice


def test_normal_priority_workers_keep_the_parents_priority(tmp_path: Path) -> None:
    project = write_project(tmp_path / "p", 40)
    validator = _validator("normal")
    try:
        validator.scan(project)
        pids = validator.worker_pids()
        assert pids
        for pid in pids:
            state = read_priority(pid)
            assert state.nice == os.nice(0)
            assert state.scheduler == "SCHED_OTHER"
    finally:
        validator.close()


def test_priority_state_round_trips() -> None:
    state = PriorityState(19, "idle", "SCHED_IDLE", ("I/O priority",))
    assert PriorityState.from_document(state.to_document()) == state
    assert state.describe() == "nice 19, I/O idle, SCHED_IDLE"
