"""Across real processes: a ``secperf serve`` hears what other commands store.

On the default install (SQLite store, in-process bus) a ``secperf scan`` run
in a terminal, a triage and an acknowledgement from the CLI reach a running
server through the store's event log: its live stream shows them and its
alert engine evaluates the scan.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from secperf.store import Store
from secperf.store.schema import event_log, event_log_cursors, scans
from support.cli import clean_env, run_cli, run_secperf

pytestmark = pytest.mark.slow

TOKEN = "tok-0123456789abcdef-SECRET"
CONFIG = """\
[alerts]
evaluation_interval = "200ms"
group_wait = "0s"
default_rules = false

[[alerts.rules]]
name = "ScanSeen"
metric = "security_scan_time"
aggregation = "last"
window = "1d"
op = ">"
threshold = -1
severity = "low"
"""


class Stream:
    """The server's SSE stream, read in a thread: every event's type and data."""

    def __init__(self, url: str) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self._answer = urllib.request.urlopen(f"{url}/api/v1/stream", timeout=60)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        kind = ""
        try:
            for raw in self._answer:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    kind = line[len("event: ") :]
                elif line.startswith("data: ") and kind:
                    self.events.append((kind, json.loads(line[len("data: ") :])["event"]))
                    kind = ""
        except (OSError, ValueError, AttributeError):
            return  # closed by the test (http.client drops its file) or the server went away

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [data for k, data in list(self.events) if k == kind]

    def close(self) -> None:
        self._answer.close()


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what}: not reached in {timeout} s")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "secperf.toml").write_text(CONFIG)
    (tmp_path / "app.py").write_text(
        "import subprocess\n\n\ndef run(cmd):\n    return subprocess.call(cmd, shell=True)\n"
    )
    return tmp_path


@pytest.fixture
def server(project: Path) -> Iterator[str]:
    """A real ``secperf serve`` on a free port over the project's store; its URL."""
    with running_server(project) as url:
        yield url


@contextlib.contextmanager
def running_server(project: Path) -> Iterator[str]:
    """Run ``secperf serve`` on a free port over the project's store; its URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "secperf", "serve", "--port", "0"],
        cwd=project,
        env=clean_env({"SECPERF_TOKEN": TOKEN}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert found, line + (proc.stderr.read() if proc.stderr else "")
        yield found.group(0)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.loads(answer.read())


def test_a_scan_in_a_terminal_reaches_a_running_server(project: Path, server: str) -> None:
    stream = Stream(server)
    try:
        scanned = run_secperf("scan", cwd=project)
        assert scanned.returncode in (0, 1), scanned.stderr
        completed = wait_for(lambda: stream.of("ScanCompleted"), "ScanCompleted on the stream")
        assert completed[0]["metrics"]["target"]
        assert stream.of("ScanStarted") and stream.of("ViolationDetected")
        # The server's alert engine evaluated the scan: its alert fires.
        firing = wait_for(
            lambda: [
                a
                for a in get_json(f"{server}/api/v1/alerts")["alerts"]
                if a["rule"] == "ScanSeen" and a["state"] == "firing"
            ],
            "the ScanSeen alert firing",
        )
        fingerprint = firing[0]["fingerprint"]
        wait_for(
            lambda: [
                e for e in stream.of("AlertChanged") if e["alert"]["fingerprint"] == fingerprint
            ],
            "the alert's change on the stream",
        )
        # Other processes act: a triage, an acknowledgement, a silence and its end.
        finding = stream.of("ViolationDetected")[0]["finding"]["fingerprint"]
        triaged = run_cli(
            ["triage", finding, "--false-positive", "--reason", "test code", "--author", "ana"],
            cwd=project,
        )
        assert triaged.returncode == 0, triaged.stderr
        acked = run_cli(
            ["alerts", "ack", fingerprint, "--author", "bo", "--note", "looking"], cwd=project
        )
        assert acked.returncode == 0, acked.stderr
        silenced = run_cli(
            ["alerts", "silence", 'alertname="ScanSeen"', "-d", "1h", "-r", "deploy", "-a", "cy"],
            cwd=project,
        )
        assert silenced.returncode == 0, silenced.stderr
        [triage] = wait_for(lambda: stream.of("FindingTriaged"), "FindingTriaged on the stream")
        assert (triage["fingerprint"], triage["state"], triage["author"]) == (
            finding,
            "false_positive",
            "ana",
        )
        [ack] = wait_for(lambda: stream.of("AlertAcknowledged"), "AlertAcknowledged")
        assert ack["alert"]["fingerprint"] == fingerprint and ack["author"] == "bo"
        [silence] = wait_for(lambda: stream.of("SilenceAdded"), "SilenceAdded")
        assert silence["author"] == "cy" and silence["reason"] == "deploy"
        # Each event once.
        ids = [(k, e["id"]) for k, e in stream.events if k != "MetricsRecorded"]
        assert len(ids) == len(set(ids))
        metrics = urllib.request.urlopen(f"{server}/metrics", timeout=10).read().decode()
        followed = re.search(r"^secperf_event_log_followed_total (\S+)$", metrics, re.M)
        assert followed is not None and float(followed.group(1)) >= 6
    finally:
        stream.close()
    # The server stored nothing twice: one scan, and each event once in the log.
    with Store.open(project / ".secperf" / "secperf.db") as store, store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(scans)).scalar_one() == 1
        ids_logged = list(conn.execute(select(event_log.c.event_id)).scalars())
    assert len(ids_logged) == len(set(ids_logged))


def test_secperf_up_hears_a_silence_added_from_the_cli(project: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "secperf", "up", "--no-scan", "--no-monitor", "--port", "0"],
        cwd=project,
        env=clean_env({"SECPERF_TOKEN": TOKEN, "COLUMNS": "200"}),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        seen: list[str] = []
        url = None
        while url is None:
            line = proc.stdout.readline()
            assert line, "".join(seen)
            seen.append(line)
            found = re.search(r"dashboard (http://127\.0\.0\.1:\d+)", line)
            url = found.group(1) if found else None
        stream = Stream(url)
        try:
            silenced = run_cli(
                ["alerts", "silence", 'alertname="ScanSeen"', "-d", "1h", "-r", "deploy"],
                cwd=project,
            )
            assert silenced.returncode == 0, silenced.stderr
            [added] = wait_for(lambda: stream.of("SilenceAdded"), "SilenceAdded on up's stream")
            assert added["reason"] == "deploy"
        finally:
            stream.close()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_two_servers_on_one_host_follow_with_cursors_of_their_own(project: Path) -> None:
    """Each cursor is named by its server's address: neither moves the other's."""
    with running_server(project) as first, running_server(project) as second:

        def cursors() -> list[str]:
            with (
                Store.open(project / ".secperf" / "secperf.db") as store,
                store.engine.connect() as conn,
            ):
                names = conn.execute(select(event_log_cursors.c.name)).scalars()
                return sorted(n for n in names if n.startswith("serve@"))

        names = wait_for(lambda: len(cursors()) == 2 and cursors(), "two cursors")
    addresses = sorted(url.split("://", 1)[1] for url in (first, second))
    assert [name.rsplit("/", 1)[1] for name in names] == addresses
