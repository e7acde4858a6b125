"""A scan killed or stopped with Ctrl-C while its workers are paused leaves no stopped
(or any) worker behind: real processes, real signals."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support.pacing import alive, stopped, write_project
from support.paths import TESTS

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux signals")


def _start(tmp_path: Path) -> tuple[subprocess.Popen[str], list[int]]:
    project = write_project(tmp_path / "project", 60)
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    child = subprocess.Popen(
        [sys.executable, "-m", "support.paced_scan_child", str(project)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([child.stdout], [], [], 0.2)
        if ready:
            line = child.stdout.readline()
            if line:
                pids: list[int] = json.loads(line)
                return child, pids
        if child.poll() is not None:
            break
    child.kill()
    raise AssertionError("the child never paused its workers")


def _wait_gone(pids: list[int], limit_s: float = 30.0) -> None:
    deadline = time.monotonic() + limit_s
    while alive(pids):
        assert stopped(pids) == [] or time.monotonic() < deadline, "workers left stopped"
        assert time.monotonic() < deadline, f"workers still alive: {alive(pids)}"
        time.sleep(0.05)


def test_a_killed_parent_leaves_no_paused_worker(tmp_path: Path) -> None:
    child, pids = _start(tmp_path)
    assert sorted(stopped(pids)) == sorted(pids)
    child.kill()  # SIGKILL: no cleanup of its own runs
    child.wait(timeout=30)
    _wait_gone(pids)


def test_ctrl_c_during_a_pause_ends_the_scan_and_its_workers(tmp_path: Path) -> None:
    child, pids = _start(tmp_path)
    assert sorted(stopped(pids)) == sorted(pids)
    child.send_signal(signal.SIGINT)
    child.wait(timeout=60)
    _wait_gone(pids)
