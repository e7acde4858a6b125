"""Scans whose process died are closed as abandoned by the next process that opens the store.

Real processes and real signals: a `secperf scan` and a scanning script are
killed with SIGKILL while their scan is running; a live one is left alone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from secperf.alerts.context import ScanTracker
from secperf.bus.memory import AsyncEventBus
from secperf.events import ScanStarted, decode_event, encode_event, local_host, now_ms
from secperf.model import SecurityMetrics
from secperf.store import Store, migrations
from secperf.store import engine as engine_module
from secperf.store.engine import create_store_engine
from secperf.store.scan_records import ABANDONED_AFTER_MS
from secperf.store.schema import scans
from secperf.web import create_app

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")

#: Records a scan through the runtime (bus + store writer) like `secperf scan`
#: does, then waits for a release file; heartbeats are refreshed quickly.
SCANNER = textwrap.dedent(
    """
    import asyncio, os, sys, time
    from pathlib import Path
    import secperf.store.writer as writer_module
    from secperf.config import load_config
    from secperf.events import ScanCompleted, ScanStarted
    from secperf.model import SecurityMetrics
    from secperf.runtime import Runtime

    writer_module.HEARTBEAT_INTERVAL_S = 0.2
    store_url, release = sys.argv[1], sys.argv[2]

    async def main() -> None:
        config = load_config(None, Path.cwd()).config
        async with Runtime(config, store_url=store_url) as runtime:
            runtime.writer.flush_interval_s = 0.1
            start = time.time_ns() // 1_000_000
            await runtime.bus.publish(ScanStarted(scan_id="held", target="/repo", ts_ms=start))
            while not os.path.exists(release):
                await asyncio.sleep(0.05)
            end = time.time_ns() // 1_000_000
            metrics = SecurityMetrics("held", "/repo", start, end, end - start, 0, 0.0, {}, 100.0)
            await runtime.bus.publish(ScanCompleted(metrics=metrics))

    asyncio.run(main())
    """
)

DEADLINE_S = 120.0


def wait_for(
    condition: Callable[[], Any], what: str, proc: subprocess.Popen[str] | None = None
) -> Any:
    """Poll until ``condition()`` is truthy and return its value; fail if ``proc`` ends."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"exit {proc.returncode} before {what}:\n{out}\n{err}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def raw_scan_rows(db: Path) -> list[tuple[Any, ...]]:
    """The scan rows, read without Store.open (which would sweep)."""
    if not db.exists():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
            return conn.execute(
                "SELECT scan_id, status, owner_pid, owner_host, heartbeat_ms, started_ms FROM scans"
            ).fetchall()
    except sqlite3.OperationalError:  # the table is not created yet
        return []


def running_row(db: Path) -> tuple[Any, ...] | None:
    return next((r for r in raw_scan_rows(db) if r[1] == "running"), None)


def kill_group(proc: subprocess.Popen[str]) -> None:
    """SIGKILL what is left of the process's session (scan workers) and reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=60)
    return proc.pid


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "app").mkdir(parents=True)
    body = "".join(f"def f{j}(x):\n    return x * {j} + len(str(x))\n" for j in range(60))
    for i in range(600):
        (root / "app" / f"m{i}.py").write_text(body)
    (root / "secperf.toml").write_text('[scan]\nscanners = ["bandit", "secrets"]\n')
    return root


@pytest.mark.slow
def test_a_killed_secperf_scan_is_closed_as_abandoned_by_the_next_open(project: Path) -> None:
    db = project / ".secperf" / "secperf.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "secperf", "scan", "--no-cache", "--jobs", "1"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        row = wait_for(lambda: running_row(db), "the scan's running row", proc)
        assert proc.poll() is None, "the scan finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        kill_group(proc)
    scan_id, _, owner_pid, owner_host, heartbeat, _ = row
    assert (owner_pid, owner_host) == (proc.pid, local_host())
    assert running_row(db) is not None  # nothing closed it yet

    with Store.open(db) as store:
        closed = store.scan(scan_id)
    assert closed is not None
    assert closed.status == "abandoned"
    assert closed.finished_ms is not None and closed.finished_ms >= heartbeat
    assert closed.error is not None and f"process {proc.pid}" in closed.error


@pytest.mark.slow
def test_a_live_scan_is_kept_and_a_killed_one_abandoned(tmp_path: Path) -> None:
    db = tmp_path / "store" / "secperf.db"
    script = tmp_path / "scanner.py"
    script.write_text(SCANNER)
    release = tmp_path / "release"

    def start() -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, str(script), str(db), str(release)],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    live = start()
    try:
        first = wait_for(lambda: running_row(db), "the running row", live)
        # The owner refreshes its heartbeat while the scan runs.
        wait_for(
            lambda: (r := running_row(db)) is not None and r[4] > first[4],
            "a newer heartbeat",
            live,
        )
        with Store.open(db) as store:  # another process opens the store meanwhile
            record = store.scan("held")
            assert record is not None and record.status == "running"
            assert record.owner_pid == live.pid
        release.touch()
        assert live.wait(timeout=DEADLINE_S) == 0, live.communicate()
    finally:
        kill_group(live)
    with Store.open(db) as store:
        done = store.scan("held")
        assert done is not None and done.status == "ok"

    release.unlink()
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM scans")
    doomed = start()
    try:
        wait_for(
            lambda: (r := running_row(db)) is not None and r[4] > r[5],
            "a heartbeat after start",
            doomed,
        )
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.wait(timeout=30)
    finally:
        kill_group(doomed)
    last_beat = running_row(db)
    assert last_beat is not None
    with Store.open(db) as store:
        record = store.scan("held")
    assert record is not None and record.status == "abandoned"
    assert record.finished_ms == last_beat[4]


def _row(store: Store, scan_id: str, **values: Any) -> None:
    store.record_scan_started(scan_id, "/repo", values.pop("started_ms"), ["bandit"])
    with store.engine.begin() as conn:
        conn.execute(update(scans).where(scans.c.scan_id == scan_id).values(**values))


def test_owners_on_other_hosts_are_judged_by_their_heartbeat(tmp_path: Path) -> None:
    db = tmp_path / "secperf.db"
    now = now_ms()
    old = now - ABANDONED_AFTER_MS - 60_000
    with Store.open(db) as store:
        _row(
            store,
            "quiet",
            started_ms=old - 1000,
            owner_pid=4242,
            owner_host="elsewhere",
            heartbeat_ms=old,
        )
        _row(
            store,
            "beating",
            started_ms=old,
            owner_pid=4242,
            owner_host="elsewhere",
            heartbeat_ms=now - 1000,
        )
        # Recorded before scans had owners (an older secperf): judged by its start.
        _row(store, "legacy", started_ms=old, owner_pid=None, owner_host=None, heartbeat_ms=None)
    with Store.open(db) as store:
        quiet, beating, legacy = (store.scan(s) for s in ("quiet", "beating", "legacy"))
    assert quiet is not None and quiet.status == "abandoned"
    assert quiet.finished_ms == old
    assert quiet.error is not None
    assert quiet.error.startswith("abandoned: no heartbeat from process 4242 on elsewhere for")
    assert beating is not None and beating.status == "running"
    assert legacy is not None and legacy.status == "abandoned"
    assert legacy.finished_ms == old


def test_owners_on_this_host_are_judged_by_their_process(tmp_path: Path) -> None:
    db = tmp_path / "secperf.db"
    here = local_host()
    now = now_ms()
    me = psutil.Process()
    born_ms = int(me.create_time() * 1000)
    with Store.open(db) as store:
        _row(
            store,
            "dead",
            started_ms=now - 5000,
            owner_pid=dead_pid(),
            owner_host=here,
            heartbeat_ms=now - 4000,
        )
        # This process started after the scan did: the pid was reused.
        _row(
            store,
            "reused",
            started_ms=born_ms - 3_600_000,
            owner_pid=me.pid,
            owner_host=here,
            heartbeat_ms=born_ms - 3_500_000,
        )
        # This process, now: alive, even with an old heartbeat.
        _row(
            store,
            "mine",
            started_ms=now,
            owner_pid=me.pid,
            owner_host=here,
            heartbeat_ms=now - 10 * ABANDONED_AFTER_MS,
        )
    with Store.open(db) as store:
        dead, reused, mine = (store.scan(s) for s in ("dead", "reused", "mine"))
    assert dead is not None and dead.status == "abandoned" and dead.finished_ms == now - 4000
    assert reused is not None and reused.status == "abandoned"
    assert reused.error is not None and "later process" in reused.error
    assert mine is not None and mine.status == "running" and mine.finished_ms is None


def test_an_abandoned_scan_that_reports_after_all_gets_its_outcome(tmp_path: Path) -> None:
    db = tmp_path / "secperf.db"
    now = now_ms()
    with Store.open(db) as store:
        _row(
            store,
            "late",
            started_ms=now - 5000,
            owner_pid=dead_pid(),
            owner_host=local_host(),
            heartbeat_ms=now - 5000,
        )
    with Store.open(db) as store:
        record = store.scan("late")
        assert record is not None and record.status == "abandoned"
        metrics = SecurityMetrics("late", "/repo", now - 5000, now, 5000.0, 0, 0.0, {}, 100.0)
        store.record_scan_completed(metrics, "ok")
        record = store.scan("late")
        assert record is not None and (record.status, record.finished_ms) == ("ok", now)
        for status in ("interrupted", "abandoned", "partial", "failed"):
            store.record_scan_completed(metrics, status)
            record = store.scan("late")
            assert record is not None and record.status == status
        with pytest.raises(ValueError, match="not a scan outcome"):
            store.record_scan_completed(metrics, "running")
        with pytest.raises(ValueError, match="not a scan outcome"):
            store.record_scan_completed(metrics, "finished-ish")


def test_a_stuck_scan_in_an_older_store_is_closed_when_it_is_upgraded(tmp_path: Path) -> None:
    db = tmp_path / "v3.db"
    engine = create_store_engine(db)
    assert migrations.migrate(engine, target=3) == 3
    old = Store(engine)
    long_ago = now_ms() - 24 * 3_600_000
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO scans (scan_id, target, started_ms, status, scanners)"
            f" VALUES ('stuck', '/repo', {long_ago}, 'running', '[]')"
        )
    old.close()
    with Store.open(db) as store:
        stuck = store.scan("stuck")
    assert stuck is not None and stuck.status == "abandoned"
    assert stuck.finished_ms == long_ago


def test_a_locked_store_postpones_the_sweep_instead_of_failing_to_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "secperf.db"
    now = now_ms()
    with Store.open(db) as store:
        _row(
            store,
            "gone",
            started_ms=now - 5000,
            owner_pid=dead_pid(),
            owner_host=local_host(),
            heartbeat_ms=now - 4000,
        )
    monkeypatch.setattr(engine_module, "BUSY_TIMEOUT_MS", 50)
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process is writing, for long
    try:
        with caplog.at_level(logging.WARNING), Store.open(db) as store:
            record = store.scan("gone")
            assert record is not None and record.status == "running"
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert any("abandoned scans not closed this time" in r.getMessage() for r in caplog.records)
    with Store.open(db) as store:
        record = store.scan("gone")
        assert record is not None and record.status == "abandoned"


def test_the_overview_does_not_show_an_abandoned_scan_as_running(tmp_path: Path) -> None:
    db = tmp_path / "secperf.db"
    now = now_ms()
    with Store.open(db) as store:
        _row(
            store,
            "gone",
            started_ms=now - 1000,
            owner_pid=dead_pid(),
            owner_host=local_host(),
            heartbeat_ms=now - 500,
        )
        _row(
            store,
            "alive",
            started_ms=now - 3000,
            owner_pid=os.getpid(),
            owner_host=local_host(),
            heartbeat_ms=now - 2000,
        )
    store = Store.open(db)  # a restarted server
    try:
        app = create_app(store, AsyncEventBus())
        with TestClient(app) as client:
            body = client.get("/api/v1/overview").json()
        assert body["scan_running"] is not None
        assert body["scan_running"]["scan_id"] == "alive"
        with store.engine.begin() as conn:
            conn.execute(
                update(scans)
                .where(scans.c.scan_id == "alive")
                .values(status="interrupted", finished_ms=now - 1000)
            )
        with TestClient(create_app(store, AsyncEventBus())) as client:
            body = client.get("/api/v1/overview").json()
        assert body["scan_running"] is None
    finally:
        store.close()


def test_partial_scans_are_not_the_last_scan_of_the_overview_or_the_alert_context(
    tmp_path: Path,
) -> None:
    now = now_ms()

    def metrics(scan_id: str, end: int, found: int) -> SecurityMetrics:
        return SecurityMetrics(scan_id, "/repo", end - 900, end, 900.0, found, 0.0, {}, 100.0)

    with Store.open(tmp_path / "secperf.db") as store:
        store.record_scan_started("whole", "/repo", now - 10_000, ["bandit"])
        store.record_scan_completed(metrics("whole", now - 9000, 7), "ok")
        store.record_scan_started("cut", "/repo", now - 5000, ["bandit"])
        store.record_scan_completed(metrics("cut", now - 4000, 1), "interrupted")
        records = store.scans()
        with TestClient(create_app(store, AsyncEventBus())) as client:
            security = client.get("/api/v1/overview").json()["security"]
    assert security["last_scan"]["scan_id"] == "whole"
    assert security["violations"] == 7
    tracker = ScanTracker()
    tracker.seed(records)
    latest = tracker.latest_finished()
    assert latest is not None and latest.scan_id == "whole"


def test_scan_started_names_its_owner_and_old_messages_decode_without_one() -> None:
    event = ScanStarted(scan_id="s", target="/r")
    assert (event.owner_pid, event.owner_host) == (os.getpid(), local_host())
    assert decode_event(encode_event(event)) == event
    old = (
        b'{"type":"ScanStarted","topic":"security.scan.started","event":{"id":"x",'
        b'"ts_ms":1,"host":"h","scan_id":"s","target":"/r","scanners":[],"files_total":0}}'
    )
    decoded = decode_event(old)
    assert isinstance(decoded, ScanStarted)
    assert (decoded.owner_pid, decoded.owner_host) == (None, None)
