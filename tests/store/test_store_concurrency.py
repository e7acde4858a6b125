"""Several processes share one store: migrations and writes started together.

Real processes wait on a barrier (a file that appears) so that they open a
brand-new store at the same moment: every one must exit 0, nothing written may
be lost and no "database is locked" may reach stderr.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import event, func, select

from secperf.store import LATEST_VERSION, Store
from secperf.store.schema import chunks, scans, schema_version
from support.paths import REPO

DEADLINE_S = 180.0

#: Imports the store, says it is ready, then waits for the barrier file.
BARRIER = textwrap.dedent(
    """
    import os, sys, time
    from secperf.store import Store  # the store and SQLAlchemy load before the barrier
    barrier = sys.argv[1]
    open(f"{barrier}.ready.{os.getpid()}", "w").close()
    deadline = time.monotonic() + 120
    while not os.path.exists(barrier):
        if time.monotonic() > deadline:
            sys.exit("barrier never opened")
        time.sleep(0.005)
    """
)

WRITER = BARRIER + textwrap.dedent(
    """
    from secperf.model import Finding, Sample, Severity
    from secperf.store import Store

    target, who, rounds = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    store = Store.open(target)
    base = time.time_ns() // 1_000_000 - 3_600_000
    for r in range(rounds):
        store.write_samples(
            [Sample("stress", {"proc": str(who), "k": str(k)}, base + r * 1000, float(r))
             for k in range(20)]
        )
        scan_id = f"p{who}-r{r}"
        store.record_scan_started(scan_id, "/repo", base + r, ["bandit"])
        store.add_findings(scan_id, [
            Finding(rule_id="B101", scanner="bandit", severity=Severity.LOW, path="a.py",
                    line=1, message="assert", fingerprint=f"{scan_id}-fp")
        ])
        store.set_triage(f"{scan_id}-fp", "false_positive", f"proc{who}")
    store.close()
    """
)

MIGRATE = BARRIER + textwrap.dedent(
    """
    from secperf.store import Store
    Store.open(sys.argv[2]).close()
    """
)

# Runs the real CLI once the barrier opens (the same interpreter, same env).
CLI = BARRIER + textwrap.dedent(
    """
    os.execv(sys.executable, [sys.executable, "-m", "secperf", *sys.argv[2:]])
    """
)


def _start(script: Path, args: list[str], cwd: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, str(script), *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _run_together(
    tmp_path: Path, code: str, argvs: list[list[str]], cwd: Path | None = None
) -> list[tuple[int, str, str]]:
    """Start one process per argv, open the barrier, and collect (rc, stdout, stderr)."""
    script = tmp_path / f"proc_{abs(hash(code))}.py"
    script.write_text(code)
    barrier = tmp_path / f"go_{abs(hash(code))}"
    procs = [_start(script, [str(barrier), *argv], cwd or tmp_path) for argv in argvs]
    try:
        # Every interpreter has imported the store before they race for it.
        deadline = time.monotonic() + DEADLINE_S
        while len(list(tmp_path.glob(f"{barrier.name}.ready.*"))) < len(procs):
            assert time.monotonic() < deadline, "the processes never got ready"
            assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
            time.sleep(0.01)
        barrier.touch()
        return [(p.wait(timeout=DEADLINE_S), *p.communicate()) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def _assert_clean(results: list[tuple[int, str, str]]) -> None:
    for rc, out, err in results:
        assert rc == 0, f"exit {rc}\n{out}\n{err}"
        assert "database is locked" not in err, err
        assert "Traceback" not in err, err


@pytest.mark.slow
def test_four_processes_write_to_a_new_sqlite_store_at_once(tmp_path: Path) -> None:
    db = tmp_path / "fresh" / "secperf.db"
    procs, rounds = 4, 25
    results = _run_together(
        tmp_path, WRITER, [[str(db), str(who), str(rounds)] for who in range(procs)]
    )
    _assert_clean(results)
    with Store.open(db) as store:
        with store.engine.connect() as conn:
            versions = conn.execute(select(func.count()).select_from(schema_version)).scalar()
            stored_scans = conn.execute(select(func.count()).select_from(scans)).scalar()
        assert versions == LATEST_VERSION
        assert stored_scans == procs * rounds
        points = store.query("stress", {}, 0, time.time_ns() // 1_000_000)
        assert sum(len(p.timestamps) for p in points) == procs * rounds * 20
        assert len(store.findings(limit=None)) == procs * rounds
        assert len(store.triage_all()) == procs * rounds


@pytest.mark.slow
def test_several_processes_migrate_one_new_postgresql_schema_at_once(
    tmp_path: Path, postgres_url: str
) -> None:
    results = _run_together(tmp_path, MIGRATE, [[postgres_url] for _ in range(6)])
    _assert_clean(results)
    with Store.open(postgres_url) as store, store.engine.connect() as conn:
        rows = conn.execute(select(schema_version.c.version)).scalars().all()
    assert sorted(rows) == list(range(1, LATEST_VERSION + 1))


@pytest.mark.slow
def test_four_processes_write_to_a_new_postgresql_schema_at_once(
    tmp_path: Path, postgres_url: str
) -> None:
    procs, rounds = 4, 10
    results = _run_together(
        tmp_path, WRITER, [[postgres_url, str(who), str(rounds)] for who in range(procs)]
    )
    _assert_clean(results)
    with Store.open(postgres_url) as store:
        assert len(store.scans(limit=1000)) == procs * rounds
        assert len(store.findings(limit=None)) == procs * rounds


@pytest.mark.slow
def test_monitor_and_three_scans_started_together_on_a_fresh_project(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "app").mkdir(parents=True)
    for i in range(30):
        (project / "app" / f"mod{i}.py").write_text(
            f"def handler_{i}(items):\n    return sorted(items)[:{i + 1}]\n"
        )
    (project / "secperf.toml").write_text(
        '[scan]\nscanners = ["bandit", "secrets"]\n[monitor]\ninterval = "200ms"\n'
    )
    argvs = [
        ["monitor", "--duration", "4s", "--no-prometheus"],
        *[["scan", "--no-cache", "--jobs", "1"] for _ in range(3)],
    ]
    results = _run_together(tmp_path, CLI, argvs, cwd=project)
    _assert_clean(results)
    with Store.open(project / ".secperf" / "secperf.db") as store:
        done = store.scans(limit=10)
        assert len(done) == 3
        assert {s.status for s in done} == {"ok"}
        assert all(s.metrics is not None and s.metrics.files_scanned >= 30 for s in done)
        assert store.list_metric_names(), "the monitor stored nothing"
        with store.engine.connect() as conn:
            stored = conn.execute(select(func.sum(chunks.c.count))).scalar()
        assert stored and stored > 0


def test_a_write_waits_for_the_lock_instead_of_failing_on_a_stale_read(tmp_path: Path) -> None:
    """A store write that starts while another connection holds the write lock and
    then commits waits for it (BEGIN IMMEDIATE) rather than failing on upgrade."""
    db = tmp_path / "secperf.db"
    store = Store.open(db)
    store.record_scan_started("before", "/repo", 1, [])
    seen: list[str] = []
    reached = threading.Event()

    @event.listens_for(store.engine, "before_cursor_execute")
    def watch(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        text = statement.strip().upper()
        seen.append(text)
        # Either the write transaction is taking its lock up front, or a
        # deferred transaction has read and is about to upgrade: both must wait.
        if text.startswith("BEGIN IMMEDIATE") or text.startswith(("INSERT", "UPDATE")):
            reached.set()

    other = sqlite3.connect(db, isolation_level=None, timeout=30)
    other.execute("BEGIN IMMEDIATE")
    other.execute(
        "INSERT INTO scans (scan_id, target, started_ms, status, scanners)"
        " VALUES ('other', '/repo', 2, 'ok', '[]')"
    )
    errors: list[BaseException] = []

    def write() -> None:
        try:
            store.record_scan_started("mine", "/repo", 3, [])
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    thread = threading.Thread(target=write)
    thread.start()
    try:
        assert reached.wait(timeout=30), seen
        other.execute("COMMIT")
        thread.join(timeout=60)
        assert not thread.is_alive()
    finally:
        other.close()
    assert errors == [], errors
    assert {s.scan_id for s in store.scans()} == {"before", "other", "mine"}
    store.close()


@pytest.mark.slow
@pytest.mark.parametrize("procs", [6])
def test_many_processes_create_one_sqlite_store_at_once(tmp_path: Path, procs: int) -> None:
    db = tmp_path / "new" / "secperf.db"
    results = _run_together(tmp_path, MIGRATE, [[str(db)] for _ in range(procs)])
    _assert_clean(results)
    with Store.open(db) as store, store.engine.connect() as conn:
        rows = conn.execute(select(schema_version.c.version)).scalars().all()
    assert sorted(rows) == list(range(1, LATEST_VERSION + 1))


def test_every_write_transaction_in_the_store_takes_the_lock_up_front() -> None:
    """A new write path must use the writer engine: a deferred `engine.begin()` that
    reads, then writes, fails at once when another process wrote meanwhile."""
    store_dir = Path(Store.__module__.replace(".", "/")).parent
    sources = sorted((REPO / "src" / store_dir).glob("*.py"))
    assert sources
    deferred = [
        f"{path.name}:{number}"
        for path in sources
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "_engine.begin(" in line
    ]
    assert deferred == [], f"use self._writer.begin() for writes: {deferred}"
