"""A broken store or cache is a clear message, never a traceback, and never silently replaced.

The scan cache is disposable: a damaged one is moved aside and rebuilt with a
warning. A damaged store, a store with a newer schema or a `.secperf` that is
a file is exit 2 with what is wrong and what to do, and the file is left
exactly as it was. `secperf store check` tells a sound store from a broken one.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from secperf.model import Finding, Sample, Severity
from secperf.security.cache import ScanCache
from secperf.store import LATEST_VERSION, Store, StoreCorruptError
from secperf.store.engine import is_corruption

GARBAGE = b"this is not a database\n" * 3


def secperf(cwd: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """The real CLI in a subprocess (so a traceback would show on its stderr)."""
    return subprocess.run(
        [sys.executable, "-m", "secperf", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={"PATH": "/usr/bin:/bin", "HOME": str(cwd)},
    )


def assert_clean_usage_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "app").mkdir(parents=True)
    for i in range(5):
        (root / "app" / f"m{i}.py").write_text(f"def f(x):\n    return x + {i}\n")
    (root / "secperf.toml").write_text('[scan]\nscanners = ["bandit"]\n')
    return root


def fill_store(db: Path, samples: int = 20_000) -> None:
    """A real store with enough rows to span many pages."""
    with Store.open(db) as store:
        base = 1_700_000_000_000
        store.write_samples(
            [
                Sample("load", {"k": str(k)}, base + i * 1000, float(i))
                for k in range(20)
                for i in range(samples // 20)
            ],
            now_ms=base + samples * 1000,
        )
        for i in range(50):
            store.record_scan_started(f"scan-{i}", "/repo" * 20, base + i, ["bandit"])


def root_page_offset(db: Path, table: str) -> int:
    with sqlite3.connect(db) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        root = conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).fetchone()[0]
    return int((root - 1) * page_size)


def smash(path: Path, offset: int, length: int = 512) -> None:
    with path.open("r+b") as handle:
        handle.seek(offset)
        handle.write(b"\xa5" * length)


# --------------------------------------------------------------------------- the cache


def test_a_garbage_cache_is_moved_aside_with_a_warning_and_rebuilt(project: Path) -> None:
    first = secperf(project, "scan", "--format", "json")
    assert first.returncode == 0, first.stderr
    cache = project / ".secperf" / "cache.db"
    for extra in (".secperf/cache.db-wal", ".secperf/cache.db-shm"):
        (project / extra).unlink(missing_ok=True)
    cache.write_bytes(GARBAGE)

    again = secperf(project, "scan", "--format", "json")
    assert again.returncode == 0, again.stderr
    assert "Traceback" not in again.stderr
    assert f"scan cache {cache} was damaged" in again.stderr
    assert "started an empty cache" in again.stderr
    aside = list(cache.parent.glob("cache.db.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == GARBAGE
    assert json.loads(again.stdout)["metrics"]["files_scanned"] == 5

    # The rebuilt cache works: the next scan is served from it, without a warning.
    warm = secperf(project, "scan", "--format", "json")
    assert warm.returncode == 0, warm.stderr
    assert "scan cache" not in warm.stderr
    assert json.loads(warm.stdout)["metrics"]["cache_hits"] > 0


def test_a_cache_damaged_during_a_scan_is_rebuilt(tmp_path: Path) -> None:
    path = tmp_path / ".secperf" / "cache.db"
    cache = ScanCache(path)
    cache.remember_files((f"src/file_{i:05d}.py", i, i, "0" * 64, i) for i in range(3000))
    finding = Finding("fp", "B101", "bandit", Severity.LOW, "assert", "a.py", line=1)
    cache.put_many([("key-1", [finding], None)])
    cache.close()
    # The file_state table's root page: opening the cache does not read it, a scan does.
    smash(path, root_page_offset(path, "file_state"))

    warnings: list[str] = []
    cache = ScanCache(path, warn=warnings.append)
    assert cache.usable and warnings == []
    assert cache.known_files() == {}  # damaged: nothing known, every file is read again
    assert len(warnings) == 1 and "was damaged" in warnings[0], warnings
    aside = [
        p for p in path.parent.glob("cache.db.corrupt-*") if p.name[-4:] not in ("-wal", "-shm")
    ]
    assert len(aside) == 1, aside
    cache.put_many([("key-2", [finding], None)])  # the new cache takes writes
    assert set(cache.get_many(["key-1", "key-2"])) == {"key-2"}
    cache.close()


def test_a_cache_that_cannot_exist_lets_the_scan_go_on(tmp_path: Path) -> None:
    (tmp_path / ".secperf").write_text("a file in the way\n")
    warnings: list[str] = []
    cache = ScanCache(tmp_path / ".secperf" / "cache.db", warn=warnings.append)
    assert not cache.usable
    assert cache.get_many(["k"]) == {} and cache.known_files() == {}
    cache.put_many([("k", [], None)])
    assert len(warnings) == 1 and "scanning without it" in warnings[0]
    assert (tmp_path / ".secperf").read_text() == "a file in the way\n"


# --------------------------------------------------------------------------- the store


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_store_is_exit_2_naming_it_and_left_unchanged(project: Path, damage: str) -> None:
    db = project / ".secperf" / "secperf.db"
    if damage == "garbage":
        db.parent.mkdir(parents=True)
        db.write_bytes(GARBAGE)
    else:
        fill_store(db)
        with db.open("r+b") as handle:
            handle.truncate(db.stat().st_size // 3)
    before = db.read_bytes()
    commands = [
        ["scan"],
        ["gate"],
        ["findings", "list"],
        ["monitor", "--duration", "1s"],
        ["up", "--port", "0", "--no-monitor"],
        ["serve", "--port", "0"],
    ]
    for command in commands:
        result = secperf(project, *command)
        assert_clean_usage_error(result, str(db), "is damaged", "secperf store check")
    checked = secperf(project, "store", "check")
    assert_clean_usage_error(checked, "problem:", "restore the file from a backup")
    assert db.read_bytes() == before
    assert sorted(p.name for p in db.parent.iterdir() if p.name.startswith("secperf.db")) == [
        "secperf.db"
    ]


def test_damage_found_in_the_middle_of_a_command_is_a_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "store" / "secperf.db"
    fill_store(db)
    smash(db, root_page_offset(db, "chunks"))
    # Opening reads neither samples nor their chunks; a query does.
    with Store.open(db) as store, pytest.raises(StoreCorruptError, match=rf"store {db} is damaged"):
        store.query("load", {}, 0, 2_000_000_000_000)
    (tmp_path / "secperf.toml").write_text(f'[store]\nurl = "{db}"\n')
    result = secperf(tmp_path, "metrics", "query", "load", "--since", "100000d")
    assert_clean_usage_error(result, str(db), "secperf store check")


def test_a_store_with_a_newer_schema_is_exit_2(project: Path) -> None:
    db = project / ".secperf" / "secperf.db"
    Store.open(db).close()
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("INSERT INTO schema_version VALUES (99, 'from the future', 0)")
    conn.close()  # the last connection out folds the WAL into the file
    before = db.read_bytes()
    for command in (["scan"], ["up", "--port", "0"], ["alerts", "list"]):
        result = secperf(project, *command)
        assert_clean_usage_error(
            result,
            str(db),
            f"schema version 99, newer than this secperf supports ({LATEST_VERSION})",
        )
    checked = secperf(project, "store", "check")
    assert_clean_usage_error(checked, "schema version 99 is newer", "upgrade secperf")
    assert "schema version 99 (this secperf" in checked.stdout
    assert db.read_bytes() == before


def test_a_secperf_file_where_its_directory_belongs_is_exit_2(project: Path) -> None:
    blocker = project / ".secperf"
    blocker.write_text("not a directory\n")
    for command in (["scan"], ["baseline", "update"], ["gate"], ["up", "--port", "0"]):
        result = secperf(project, *command)
        assert_clean_usage_error(result, f"{blocker} is a file, not a directory")
    checked = secperf(project, "store", "check")
    assert_clean_usage_error(checked, f"{blocker} is a file, not a directory")
    assert blocker.read_text() == "not a directory\n"


# --------------------------------------------------------------------------- store check


def test_store_check_passes_a_sound_store_without_changing_it(project: Path) -> None:
    assert secperf(project, "scan").returncode == 0
    db = project / ".secperf" / "secperf.db"
    before = db.read_bytes()
    for args in ([], ["--quick"]):
        result = secperf(project, "store", "check", *args)
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"store {db} (sqlite" in result.stdout
        assert f"schema version {LATEST_VERSION} (this secperf: {LATEST_VERSION})" in result.stdout
        assert result.stdout.rstrip().endswith("store ok")
    assert db.read_bytes() == before
    assert not db.with_name("secperf.db-wal").exists()

    missing = secperf(project, "store", "check", "--store", str(project / "none.db"))
    assert_clean_usage_error(missing, "does not exist")
    assert not (project / "none.db").exists()


def test_store_check_on_postgresql(project: Path, postgres_url: str) -> None:
    fresh = secperf(project, "store", "check", "--store", postgres_url)
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    assert "no secperf tables yet" in fresh.stdout
    Store.open(postgres_url).close()
    ready = secperf(project, "store", "check", "--store", postgres_url)
    assert ready.returncode == 0, ready.stdout + ready.stderr
    assert f"schema version {LATEST_VERSION}" in ready.stdout
    down = secperf(project, "store", "check", "--store", "postgresql://root@127.0.0.1:1/test")
    assert_clean_usage_error(down, "cannot query the database")


def test_only_a_damaged_file_counts_as_corruption(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    db.write_bytes(GARBAGE)
    with pytest.raises(sqlite3.DatabaseError) as damaged:
        sqlite3.connect(db).execute("SELECT 1 FROM sqlite_master").fetchall()
    assert is_corruption(damaged.value)
    good = tmp_path / "good.db"
    holder = sqlite3.connect(good, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(sqlite3.OperationalError) as locked:
            sqlite3.connect(good, timeout=0).execute("SELECT * FROM t").fetchall()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert not is_corruption(locked.value)


def test_a_store_with_foreign_tables_only_is_not_touched_by_check(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE notes (x)")
    before = other.read_bytes()
    result = secperf(tmp_path, "store", "check", "--store", str(other))
    assert result.returncode == 0, result.stderr
    assert "no secperf tables yet" in result.stdout
    assert other.read_bytes() == before
