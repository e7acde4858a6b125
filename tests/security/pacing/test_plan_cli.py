"""``secperf scan --plan`` and ``--when-quiet`` as a user runs them, and ``/api/v1/schedule``.

The plan is drawn on a real 80-column pseudo-terminal; ``--when-quiet`` runs
as a real process while the test drives the host CPU series in the project's
real SQLite store (a week of history at chosen times, then busy or quiet
samples every few tenths of a second), polling its output, never sleeping a
fixed time.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from secperf.bus.memory import AsyncEventBus
from secperf.events import local_host
from secperf.model import Sample
from secperf.security.pacing.schedule import (
    HOUR_MS,
    PeriodicScans,
    Settings,
    host_cpu_guard,
    hour_of_week,
)
from secperf.store import Store
from secperf.web import create_app
from secperf.web.routes_schedule import attach_schedule
from support.cli import clean_env, run_cli
from support.terminal import Terminal

CLEAN = "def add(a, b):\n    return a + b\n"


def _project(tmp_path: Path, extra: str = "") -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    for i in range(5):
        (root / f"mod{i}.py").write_text(CLEAN * (i + 1), encoding="utf-8")
    (root / "secperf.toml").write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "store.db"}"\n'
        '[scan]\nscanners = ["bandit", "secrets"]\njobs = 1\n' + extra,
        encoding="utf-8",
    )
    return root


def _env(tmp_path: Path) -> dict[str, str]:
    env = clean_env({"HOME": str(tmp_path), "TERM": "xterm-256color"})
    env.pop("COLUMNS", None)
    return env


def test_plan_fits_80_columns_on_a_terminal_and_scans_nothing(tmp_path: Path) -> None:
    root = _project(tmp_path)
    term = Terminal([sys.executable, "-m", "secperf", "scan", "--plan"], root, _env(tmp_path))
    shown = term.close()
    assert term.proc.returncode == 0, shown
    lines = shown.splitlines()
    assert max(len(line) for line in lines) <= 80, shown
    assert any(line.startswith("bandit ") for line in lines), shown
    assert any(line.startswith("total ") for line in lines), shown
    assert "basis: built-in throughputs" in shown
    assert "schedule: now:" in shown
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    assert store.scans() == []  # planned, not scanned
    store.close()


def test_plan_says_an_unmatched_guard_falls_back_to_host_cpu_and_leaves_no_budget(
    tmp_path: Path,
) -> None:
    root = _project(
        tmp_path, '[scan.impact]\npriority = "low"\nguard = ["nothing_here{job=\\"x\\"}"]\n'
    )
    term = Terminal([sys.executable, "-m", "secperf", "scan", "--plan"], root, _env(tmp_path))
    shown = term.close()
    assert term.proc.returncode == 0, shown
    assert max(len(line) for line in shown.splitlines()) <= 80, shown
    text = " ".join(shown.split())  # the terminal wraps the note
    assert 'guard nothing_here{job="x"} matches no series: scheduling falls back to host CPU' in (
        text
    ), shown
    # The scan records the same: "impact budget off: guard ... matches no series".
    assert "impact budget will be off (the guard matches no series)" in text, shown


def test_plan_as_json_follows_the_scan_history(tmp_path: Path) -> None:
    root = _project(tmp_path)
    first = run_cli(["scan", "--plan", "-f", "json"], cwd=root)
    assert first.returncode == 0, first.stderr
    doc = json.loads(first.stdout)
    assert doc["prediction"]["basis"] == "builtin"
    assert doc["prediction"]["inputs"]["expected_misses"] == 11  # 5 by two scanners, the toml
    assert set(doc["prediction"]["per_scanner"]) == {"bandit", "secrets"}
    assert {"next_scan_ms", "reason", "quiet_now", "profile"} <= set(doc["schedule"])

    scanned = run_cli(["scan", "-f", "json"], cwd=root)
    assert scanned.returncode == 0, scanned.stderr
    after = json.loads(run_cli(["scan", "--plan", "-f", "json"], cwd=root).stdout)
    assert after["prediction"]["basis"] == "history"
    assert after["prediction"]["history_scans"] == 1
    assert after["prediction"]["inputs"]["expected_misses"] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--when-quiet", "--max-wait", "ten minutes"], "--max-wait: invalid duration"),
        (["--max-wait", "10m"], "--max-wait: only with --when-quiet"),
    ],
)
def test_bad_wait_options_exit_2_naming_the_option(
    tmp_path: Path, args: list[str], message: str
) -> None:
    root = _project(tmp_path)
    result = run_cli(["scan", *args], cwd=root)
    assert result.returncode == 2
    assert message in result.stderr


def test_a_bad_schedule_setting_exits_2_naming_the_key(tmp_path: Path) -> None:
    root = _project(tmp_path, '[scan.schedule]\nmax_delay = "soon"\n')
    result = run_cli(["scan", "--plan"], cwd=root)
    assert result.returncode == 2
    assert "max_delay" in result.stderr


def _week_of_history(store: Store, now: int, level: float) -> None:
    """Host CPU at ``level`` every 10 minutes over the last eight days."""
    host = local_host()
    start = now - 8 * 24 * HOUR_MS
    store.write_samples(
        [
            Sample("cpu_percent", {"host": host}, t, level)
            for t in range(start, now - 5 * 60_000, 10 * 60_000)
        ]
    )


class GuardDriver:
    """Writes host CPU samples at ``level`` every 0.2 s until stopped (the test's "load")."""

    def __init__(self, store: Store, level: float) -> None:
        self.store = store
        self.level = level
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        host = local_host()
        while not self._stop.is_set():
            now = time.time_ns() // 1_000_000
            self.store.write_samples([Sample("cpu_percent", {"host": host}, now, self.level)])
            self._stop.wait(0.2)

    def __enter__(self) -> GuardDriver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


@pytest.fixture
def waiting_project(tmp_path: Path) -> Iterator[tuple[Path, Store]]:
    root = _project(tmp_path, '[scan.schedule]\nwindow = "1s"\n')
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    _week_of_history(store, time.time_ns() // 1_000_000, 10.0)
    yield root, store
    store.close()


def _read_until(proc: subprocess.Popen[str], lines: list[str], wanted: str, limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if any(wanted in line for line in lines):
            return
        if proc.poll() is not None and not any(wanted in line for line in lines):
            break
        time.sleep(0.05)
    raise AssertionError(f"{wanted!r} not shown; output so far: {lines}")


def _start(root: Path, *args: str) -> tuple[subprocess.Popen[str], list[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "secperf", "scan", "--when-quiet", *args],
        cwd=root,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)

    threading.Thread(target=read, daemon=True).start()
    return proc, lines


def test_when_quiet_waits_while_the_host_is_busy_then_scans(
    waiting_project: tuple[Path, Store],
) -> None:
    root, store = waiting_project
    with GuardDriver(store, 95.0) as load:
        proc, lines = _start(root, "--max-wait", "10m")
        try:
            _read_until(proc, lines, "waiting: waiting for a quiet moment (host CPU 95 now", 60)
            assert any("at the latest" in line for line in lines)
            assert proc.poll() is None  # still waiting, nothing scanned
            assert store.scans() == []
            load.level = 4.0
            proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, lines
    assert any(line.startswith("scanning: quiet now (host CPU 4") for line in lines), lines
    assert len(store.scans()) == 1


def test_when_quiet_scans_anyway_after_max_wait(waiting_project: tuple[Path, Store]) -> None:
    root, store = waiting_project
    with GuardDriver(store, 95.0):
        proc, lines = _start(root, "--max-wait", "3s")
        try:
            proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, lines
    assert any("scanning: max delay 3 s reached: scanning anyway" in line for line in lines)
    assert len(store.scans()) == 1


def test_schedule_api_answers_in_its_documented_shape(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    now = time.time_ns() // 1_000_000
    host = local_host()
    _week_of_history(store, now, 30.0)
    app = create_app(store, AsyncEventBus())
    attach_schedule(app, Settings(max_delay_ms=HOUR_MS, every_ms=6 * HOUR_MS))
    with TestClient(app) as client:
        answer = client.get(f"/api/v1/schedule?host={host}")
        too_long = client.get("/api/v1/schedule", params={"target": "x" * 300})
    # Under up with [scan] every: its periodic plan, with the guard's profile.
    periodic = PeriodicScans(store, Settings(every_ms=6 * HOUR_MS), [host_cpu_guard(host)])
    periodic.scanned(now)
    up_app = create_app(store, AsyncEventBus())
    attach_schedule(up_app, periodic.settings, periodic, target="/srv/app")
    with TestClient(up_app) as client:
        planned = client.get("/api/v1/schedule").json()
    store.close()
    assert planned["next_scan_ms"] == now + 6 * HOUR_MS
    assert planned["reason"].startswith("next periodic scan due at")
    assert planned["profile"] and planned["profile"][0]["level"] == 30.0
    assert answer.status_code == 200
    doc = answer.json()
    assert doc["every_ms"] == 6 * HOUR_MS
    assert doc["max_delay_ms"] == HOUR_MS
    assert isinstance(doc["next_scan_ms"], int)
    assert isinstance(doc["quiet_now"], bool)
    assert isinstance(doc["reason"], str) and doc["reason"]
    hours = {bucket["hour_of_week"] for bucket in doc["profile"]}
    assert hour_of_week(now - HOUR_MS) in hours
    assert all(b["level"] == 30.0 and b["samples"] > 0 for b in doc["profile"])
    assert too_long.status_code == 422
