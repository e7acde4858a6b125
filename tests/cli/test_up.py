"""`secperf up` end to end: a real process scans, watches, monitors and serves (slow)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from support.cli import run_cli

T = TypeVar("T")


def get(url: str) -> Any:
    """The JSON answer of a GET (untyped: the API's documents)."""
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.loads(answer.read())


def wait_for(predicate: Callable[[], T], timeout: float = 30.0) -> T:
    """The predicate's first truthy value, polled until ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("condition not reached in time")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "run.py").write_text("import subprocess\nsubprocess.call('ls', shell=True)\n")
    (root / "secperf.toml").write_text(
        '[scan]\nscanners = ["bandit", "secrets"]\n[monitor.system]\ninterval = "500ms"\n'
    )
    return root


@pytest.mark.slow
def test_up_scans_watches_monitors_and_serves(project: Path, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "secperf", "up", "--port", "0"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    try:
        assert proc.stdout is not None
        url = None
        lines: list[str] = []
        deadline = time.monotonic() + 60
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            match = re.search(r"dashboard (http://127\.0\.0\.1:\d+)/", line)
            if match:
                url = match.group(1)
        assert url is not None, "".join(lines)
        assert get(f"{url}/healthz")["status"] == "ok"

        def first_scan() -> Any:
            scans = get(f"{url}/api/v1/scans")["scans"]
            done = [s for s in scans if s["metrics"]]
            return done or None

        scans = wait_for(first_scan)
        assert scans[0]["metrics"]["violations_found"] >= 1

        def costed() -> Any:
            found = get(f"{url}/api/v1/scans")["scans"]
            return [s for s in found if s["cost"]] or None

        cost = wait_for(costed)[0]["cost"]
        assert cost["cpu_seconds"] >= 0 and cost["peak_rss_bytes"] > 0

        findings = get(f"{url}/api/v1/findings")["findings"]
        assert any(f["rule_id"] == "B602" for f in findings)

        # An edit is rescanned: a new finding appears without restarting.
        (project / "more.py").write_text("import os\nos.system(input())\n")

        def rescanned() -> bool:
            found = get(f"{url}/api/v1/findings")["findings"]
            return any(f["path"] == "more.py" for f in found)

        wait_for(rescanned, timeout=20)

        # System metrics flow into the store and out through the API.
        def cpu() -> bool:
            names = get(f"{url}/api/v1/metrics/names")["names"]
            return "cpu_percent" in names

        wait_for(cpu)
        assert (project / ".secperf" / "secperf.db").exists()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0


@pytest.mark.slow
def test_sigterm_stops_up_cleanly_with_its_workers(project: Path, tmp_path: Path) -> None:
    import psutil

    for i in range(40):  # enough files for the scan to use worker processes
        (project / f"m{i}.py").write_text(f"import os\nos.system('echo {i}')\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "secperf", "up", "--port", "0", "--no-monitor"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert proc.stdout is not None
    url = None
    while url is None:
        line = proc.stdout.readline()
        assert line, "secperf up ended before serving"
        match = re.search(r"dashboard (http://127\.0\.0\.1:\d+)/", line)
        url = match.group(1) if match else None
    wait_for(lambda: [s for s in get(f"{url}/api/v1/scans")["scans"] if s["metrics"]])
    children = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    _gone, alive = psutil.wait_procs(children, timeout=10)
    assert alive == [], f"left running: {[p.pid for p in alive]}"


def test_up_refuses_a_public_bind_without_a_token(project: Path, tmp_path: Path) -> None:
    result = run_cli(
        ["up", "--host", "0.0.0.0", "--port", "0"],
        cwd=project,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert result.returncode == 2
    assert "token" in result.stderr
