"""Schema migrations: fresh databases, upgrades that keep rows, newer databases refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from secperf.model import BenchmarkResult, Sample
from secperf.store import LATEST_VERSION, SchemaVersionError, Store, migrations
from secperf.store.engine import create_store_engine

T0 = 1_700_000_000_000


def versions(path: Path) -> list[int]:
    with sqlite3.connect(path) as conn:
        return [r[0] for r in conn.execute("select version from schema_version order by 1")]


def test_fresh_database_gets_every_migration(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    Store.open(path).close()
    assert versions(path) == [m.version for m in migrations.MIGRATIONS]
    assert versions(path)[-1] == LATEST_VERSION
    Store.open(path).close()  # opening again applies nothing twice
    assert versions(path) == [m.version for m in migrations.MIGRATIONS]


def test_v1_database_is_upgraded_without_losing_rows(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    engine = create_store_engine(path)
    assert migrations.migrate(engine, target=1) == 1
    old = Store(engine)  # a v1 store: samples and scans exist, benchmark results do not
    samples = [Sample("cpu_percent", {"host": "a"}, T0 + i * 1000, i / 2) for i in range(50)]
    assert old.write_samples(samples, now_ms=T0 + 60_000).accepted == 50
    old.record_scan_started("s1", "/repo", T0, ["bandit"])
    old.save_baseline("main", ["fp1", "fp2"], T0)
    old.close()
    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}
    assert "benchmark_results" not in tables
    assert versions(path) == [1]

    with Store.open(path) as store:
        assert versions(path) == [m.version for m in migrations.MIGRATIONS]
        points = store.query("cpu_percent", {"host": "a"}, T0, T0 + 60_000)[0]
        assert points.values.tolist() == [i / 2 for i in range(50)]
        assert store.scan("s1") is not None
        assert store.baseline("main") == {"fp1", "fp2"}
        bench = BenchmarkResult("b", "command", T0, "m1", stats={"median": 1.0})
        assert store.add_benchmark_results([bench]) == 1
        assert store.benchmark_results() == [bench]


def test_a_newer_database_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    Store.open(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("insert into schema_version values (99, 'from the future', 0)")
    with pytest.raises(
        SchemaVersionError, match=rf"schema version 99, newer than .* \({LATEST_VERSION}\)"
    ):
        Store.open(path)


def test_a_failing_step_leaves_the_previous_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "broken.db"
    Store.open(path).close()

    def create_then_fail(conn: Connection) -> None:
        conn.execute(text("CREATE TABLE half_done (x INTEGER)"))
        raise RuntimeError("the next step failed")

    before = [m.version for m in migrations.MIGRATIONS]
    step = migrations.Migration(LATEST_VERSION + 1, "broken", create_then_fail)
    monkeypatch.setattr(migrations, "MIGRATIONS", (*migrations.MIGRATIONS, step))
    monkeypatch.setattr(migrations, "LATEST_VERSION", LATEST_VERSION + 1)
    with pytest.raises(RuntimeError, match="the next step failed"):
        Store.open(path)
    assert versions(path) == before
    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}
    assert "half_done" not in tables  # DDL rolled back with the transaction
