"""Downsampling tiers: exact rollups, queries across tiers, idempotence, retention."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select

from secperf.model import GateResult, GateVerdict, Sample
from secperf.store import Store, codec
from secperf.store.maintenance import StoreMaintenance
from secperf.store.schema import rollup_state, rollups
from secperf.store.tiers import (
    GRACE_MS,
    HOUR_MS,
    MINUTE_MS,
    Buckets,
    TierRetention,
    coarsen,
    decode_buckets,
)

DAY = 24 * HOUR_MS
T0 = 1_700_000_000_000 - 1_700_000_000_000 % DAY  # midnight UTC
NAME = "cpu_percent"
SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = Store.open(store_url)
    yield s
    s.close()


def irregular(hours: int, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Samples every 1-9 s with one-decimal values, from T0 for ``hours`` hours."""
    rng = np.random.default_rng(seed)
    steps = rng.integers(1_000, 9_000, hours * 3600)
    ts = T0 + np.cumsum(steps)
    ts = ts[ts < T0 + hours * HOUR_MS]
    vals = np.round(rng.normal(40, 15, ts.size), 1)
    return ts.astype(np.int64), vals


def write(store: Store, ts: np.ndarray, vals: np.ndarray, host: str = "a", now: int = 0) -> None:
    result = store.write_series_arrays(NAME, {"host": host}, ts, vals, now_ms=now or int(ts[-1]))
    assert result.rejected == 0


def stored(store: Store, tier: int) -> Buckets:
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(rollups.c.data).where(rollups.c.tier_ms == tier).order_by(rollups.c.block_ms)
        ).scalars()
        return Buckets.concat([decode_buckets(r) for r in rows])


def direct(
    ts: np.ndarray, vals: np.ndarray, width: int
) -> dict[int, tuple[float, float, float, int]]:
    out: dict[int, tuple[float, float, float, int]] = {}
    keys = ts - ts % width
    for key in np.unique(keys).tolist():
        part = vals[keys == key]
        out[key] = (float(part.min()), float(part.max()), math.fsum(part), int(part.size))
    return out


def assert_exact(b: Buckets, expected: dict[int, tuple[float, float, float, int]]) -> None:
    assert b.ts.tolist() == sorted(expected)
    for i, key in enumerate(b.ts.tolist()):
        mn, mx, sm, n = expected[key]
        assert (b.min[i], b.max[i], int(b.count[i])) == (mn, mx, n)
        assert b.sum[i] == pytest.approx(sm, rel=1e-12)


# --------------------------------------------------------------------------- codec


def test_column_chunks_round_trip_bit_for_bit() -> None:
    ts = np.array([0, 60_000, 120_000, 300_000], dtype=np.int64) + T0
    cols = [
        np.array([1.5, -0.0, 2.25, 5e-324]),
        np.array([np.inf, 1e308, -1e308, 3.0]),
        np.array([0.1, 0.2, 0.3, 0.4]),
        np.array([60.0, 59.0, 1.0, 60.0]),
    ]
    back_ts, back = codec.decode_columns(codec.encode_columns(ts, cols))
    assert back_ts.tolist() == ts.tolist()
    for got, want in zip(back, cols, strict=True):
        assert got.view(np.uint64).tolist() == want.view(np.uint64).tolist()
    empty_ts, empty = codec.decode_columns(codec.encode_columns(ts[:0], [c[:0] for c in cols]))
    assert empty_ts.size == 0 and len(empty) == 4
    with pytest.raises(ValueError, match="sorted"):
        codec.encode_columns(ts[::-1].copy(), [c[::-1].copy() for c in cols])
    with pytest.raises(codec.ChunkDecodeError, match="version"):
        codec.decode_columns(b"\x09" + codec.encode_columns(ts, cols)[1:])


def test_sums_of_short_decimals_are_exact() -> None:
    values = np.array([0.1, 0.2, 0.1, 0.2])
    assert 0.1 + 0.2 != 0.3  # what float addition gives
    sums = codec.decimal_sums(values, np.array([0, 2]))
    assert sums is not None and sums.tolist() == [0.3, 0.3]
    assert codec.decimal_sums(np.array([0.1, 1 / 3]), np.array([0])) is None
    samples = Buckets.from_samples(T0 + np.arange(4, dtype=np.int64) * 1000, values)
    assert coarsen(samples, MINUTE_MS).sum.tolist() == [0.6]


# --------------------------------------------------------------------------- rollups


def test_rollup_min_max_sum_count_are_exact(store: Store) -> None:
    ts, vals = irregular(5)
    write(store, ts, vals)
    now = T0 + 5 * HOUR_MS + GRACE_MS
    result = store.rollup(now)
    assert result.buckets[MINUTE_MS] == 5 * 60
    assert result.buckets[HOUR_MS] == 5
    assert_exact(stored(store, MINUTE_MS), direct(ts, vals, MINUTE_MS))
    assert_exact(stored(store, HOUR_MS), direct(ts, vals, HOUR_MS))


def test_only_complete_buckets_are_rolled_up(store: Store) -> None:
    ts, vals = irregular(2)
    write(store, ts, vals)
    # 30 s after the last sample: its minute (and the previous, inside the grace) wait.
    now = int(ts[-1]) + 30_000
    store.rollup(now)
    minutes = stored(store, MINUTE_MS)
    assert int(minutes.ts[-1]) + MINUTE_MS <= now - GRACE_MS
    assert stored(store, HOUR_MS).ts.tolist() == [T0]  # the second hour is not complete
    store.rollup(now + 10 * MINUTE_MS)
    assert_exact(stored(store, MINUTE_MS), direct(ts, vals, MINUTE_MS))


def test_rollup_twice_adds_nothing(store: Store) -> None:
    ts, vals = irregular(3)
    write(store, ts, vals)
    now = T0 + 3 * HOUR_MS + GRACE_MS
    store.rollup(now)
    before = [stored(store, t).ts.tolist() for t in (MINUTE_MS, HOUR_MS)]
    sums = stored(store, MINUTE_MS).sum.tolist()
    again = store.rollup(now)
    assert again.total_buckets == 0 and again.transactions == 0
    assert [stored(store, t).ts.tolist() for t in (MINUTE_MS, HOUR_MS)] == before
    assert stored(store, MINUTE_MS).sum.tolist() == sums
    # Re-delivered samples (same timestamps) change nothing either.
    write(store, ts[:100], vals[:100], now=now)
    store.rollup(now)
    assert_exact(stored(store, MINUTE_MS), direct(ts, vals, MINUTE_MS))


def test_a_late_sample_rerolls_its_minute_and_hour(store: Store) -> None:
    ts, vals = irregular(3)
    write(store, ts, vals)
    now = T0 + 3 * HOUR_MS + GRACE_MS
    store.rollup(now)
    late_ts = T0 + 30 * MINUTE_MS + 123  # long rolled up
    store.write_samples([Sample(NAME, {"host": "a"}, late_ts, 1000.0)], now_ms=now)
    result = store.rollup(now)
    assert result.rerolled >= 1
    all_ts = np.append(ts, late_ts)
    all_vals = np.append(vals, 1000.0)
    order = np.argsort(all_ts)
    assert_exact(stored(store, MINUTE_MS), direct(all_ts[order], all_vals[order], MINUTE_MS))
    assert_exact(stored(store, HOUR_MS), direct(all_ts[order], all_vals[order], HOUR_MS))
    with store.engine.connect() as conn:
        dirty = conn.execute(select(rollup_state.c.dirty_ms)).scalars().all()
    assert set(dirty) == {None}


def test_limited_passes_resume_where_they_stopped(store: Store) -> None:
    for host in "abc":
        ts, vals = irregular(50, seed=ord(host))
        write(store, ts, vals, host=host)
    now = T0 + 50 * HOUR_MS + GRACE_MS
    first = store.rollup(now, max_transactions=1)
    assert first.transactions == 1
    while store.rollup(now, max_transactions=1).transactions:
        pass
    for host in "abc":
        ts, vals = irregular(50, seed=ord(host))
        found = store.query(NAME, {"host": host}, T0, now, step_ms=HOUR_MS)[0]
        assert found.count is not None and int(found.count.sum()) == ts.size
    ts, vals = irregular(50, seed=ord("a"))
    found = store.query(NAME, {"host": "a"}, T0, now, step_ms=HOUR_MS)[0]
    expected = direct(ts, vals, HOUR_MS)
    assert found.min is not None and found.max is not None
    assert found.min.tolist() == [expected[k][0] for k in sorted(expected)]
    assert found.max.tolist() == [expected[k][1] for k in sorted(expected)]


# --------------------------------------------------------------------------- queries


def test_query_where_raw_was_dropped_returns_the_rollups_averages(store: Store) -> None:
    ts, vals = irregular(72)
    write(store, ts, vals)
    now = T0 + 72 * HOUR_MS
    retention = TierRetention(DAY, 10 * DAY, 100 * DAY)
    store.rollup(now, retention=retention)
    result = store.apply_tiered_retention(now, retention)
    assert result.chunks.chunks_deleted > 0
    assert store.query(NAME, None, T0, T0 + DAY - 1) == []  # no raw sample left there
    found = store.query(NAME, None, T0, now - 1, step_ms=HOUR_MS)[0]
    expected = direct(ts, vals, HOUR_MS)
    complete = [k for k in sorted(expected) if k + HOUR_MS <= now - GRACE_MS]
    assert found.timestamps.tolist()[: len(complete)] == complete
    for i, key in enumerate(complete):
        mn, mx, sm, n = expected[key]
        assert found.values[i] == pytest.approx(sm / n, rel=1e-12)
        assert found.min is not None and found.max is not None and found.count is not None
        assert (found.min[i], found.max[i], int(found.count[i])) == (mn, mx, n)
    assert found.count is not None and int(found.count.sum()) == ts.size  # newest hour: raw


def test_stitched_range_reads_raw_where_kept_and_minutes_before(store: Store) -> None:
    ts, vals = irregular(48)
    write(store, ts, vals)
    now = T0 + 48 * HOUR_MS
    retention = TierRetention(DAY, 10 * DAY, 100 * DAY)
    store.rollup(now, retention=retention)
    store.apply_tiered_retention(now, retention)
    raw_from = T0 + DAY  # the raw cutoff, on an hour boundary
    # A 30 s step prefers raw: raw where kept, whole minutes before it.
    found = store.query(NAME, None, T0, now - 1, step_ms=30_000)[0]
    assert found.count is not None and int(found.count.sum()) == ts.size
    old = found.timestamps < raw_from
    assert bool(np.all(found.timestamps[old] % MINUTE_MS == 0))  # minute buckets
    assert int(found.count[~old].sum()) == int((ts >= raw_from).sum())
    raw_part = found.timestamps[~old]
    assert bool(np.any(raw_part % MINUTE_MS != 0))  # 30 s steps from raw samples
    # A 10 min step reads the 1-minute tier, and raw above its watermark.
    coarse = store.query(NAME, None, T0, now - 1, step_ms=10 * MINUTE_MS)[0]
    assert coarse.step_ms == 10 * MINUTE_MS
    assert coarse.count is not None and int(coarse.count.sum()) == ts.size
    assert coarse.timestamps.size == 48 * 6
    # Raw samples only, when asked.
    raw_only = store.query(NAME, None, T0, now - 1, step_ms=10 * MINUTE_MS, tiers=False)[0]
    assert raw_only.count is not None and int(raw_only.count.sum()) == int((ts >= raw_from).sum())


def test_tier_steps_are_rounded_to_whole_buckets(store: Store) -> None:
    ts, vals = irregular(6)
    write(store, ts, vals)
    now = T0 + 6 * HOUR_MS + GRACE_MS
    store.rollup(now)
    found = store.query(NAME, None, T0, T0 + 6 * HOUR_MS - 1, max_points=100)[0]
    assert found.step_ms == 4 * MINUTE_MS  # 216 s rounded up to whole minutes
    assert found.timestamps.size == 90
    assert found.count is not None and int(found.count.sum()) == ts.size
    # A series without rollups answers as before (raw, the step as asked).
    write(store, ts, vals, host="fresh")
    plain = store.query(NAME, {"host": "fresh"}, T0, T0 + 6 * HOUR_MS - 1, max_points=100)
    assert plain[0].step_ms == 216_000


# --------------------------------------------------------------------------- retention


def test_tiered_retention_drops_raw_and_keeps_the_tiers(store: Store) -> None:
    ts, vals = irregular(72)
    write(store, ts, vals)
    write(store, ts, vals, host="unrolled")
    now = T0 + 72 * HOUR_MS
    retention = TierRetention(DAY, 3 * DAY, 100 * DAY)
    # Roll up only host "a": the other keeps its raw samples until it is rolled up.
    a_id = store.series(NAME, {"host": "a"})[0].id
    store.rollup(now, retention=retention)
    with store.engine.begin() as conn:
        conn.execute(rollup_state.delete().where(rollup_state.c.series_id != a_id))
    result = store.apply_tiered_retention(now, retention)
    assert result.cutoff_ms == T0 + 2 * DAY
    assert result.tiers is not None and result.tiers.deleted[MINUTE_MS] == 0
    a = store.query(NAME, {"host": "a"}, T0, now)[0]
    assert int(a.timestamps[0]) >= T0 + 2 * DAY
    unrolled = store.query(NAME, {"host": "unrolled"}, T0, now)[0]
    assert int(unrolled.timestamps[0]) == int(ts[0])
    stats = {s.tier: s for s in store.tier_stats()}
    assert stats["1m"].points == (72 * 60 - 2) * 2  # two series; the newest minutes wait
    # A later pass drops minutes older than their own retention, and keeps the hours.
    later = now + 2 * DAY
    store.apply_tiered_retention(later, retention)
    with store.engine.connect() as conn:
        oldest = dict(
            conn.execute(
                select(rollups.c.series_id, func.min(rollups.c.start_ms))
                .where(rollups.c.tier_ms == MINUTE_MS)
                .group_by(rollups.c.series_id)
            ).all()
        )
    assert oldest[a_id] == T0 + 2 * DAY
    # The other series' hours are not accounted for (no state): its minutes stay.
    assert min(v for k, v in oldest.items() if k != a_id) == T0
    assert stored(store, HOUR_MS).ts.min() == T0
    assert store.series(NAME, {"host": "a"})  # a series with rollups stays


def test_retention_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="must not grow shorter"):
        TierRetention(DAY, HOUR_MS, 100 * DAY)
    with pytest.raises(ValueError, match="raw_ms must be positive"):
        TierRetention(0, DAY, DAY)


def test_maintenance_rolls_up_and_applies_retention(store: Store) -> None:
    ts, vals = irregular(30)
    write(store, ts, vals)
    clock = [T0 + 30 * HOUR_MS]
    maintenance = StoreMaintenance(
        store, TierRetention(DAY, 10 * DAY, 100 * DAY), clock=lambda: clock[0]
    )
    first = maintenance.run_once()
    assert first.rollup.total_buckets > 0 and first.retention is not None
    assert first.retention.chunks.chunks_deleted > 0
    second = maintenance.run_once()
    assert second.retention is None  # not an hour later yet
    clock[0] += HOUR_MS
    assert maintenance.run_once().retention is not None


def test_maintenance_works_in_slices_to_the_end(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from secperf.store import maintenance as module

    monkeypatch.setattr(module, "TRANSACTIONS_PER_SLICE", 1)
    ts, vals = irregular(50)
    write(store, ts, vals)
    retention = TierRetention(*[10_000 * DAY] * 3)
    done = StoreMaintenance(store, retention, clock=lambda: T0 + 50 * HOUR_MS + GRACE_MS)
    result = done.run_once()
    assert result.rollup.transactions > 3  # three days of minutes, then the hours
    assert_exact(stored(store, HOUR_MS), direct(ts, vals, HOUR_MS))


def test_records_follow_their_own_retention(store: Store) -> None:
    store.add_gate_run(GateResult("old", "/repo", T0, T0 + 1, GateVerdict.PASS))
    store.add_gate_run(GateResult("new", "/repo", T0 + 20 * DAY, T0 + 20 * DAY, GateVerdict.PASS))
    now = T0 + 25 * DAY
    # Raw samples for a day, records for ten: only the old gate run goes.
    store.apply_tiered_retention(now, TierRetention(DAY, DAY, DAY, records_ms=10 * DAY))
    assert [g.run_id for g in store.gate_runs(10)] == ["new"]
    # Without a records retention (0 in the configuration) records stay.
    store.apply_tiered_retention(now + 100 * DAY, TierRetention(DAY, DAY, DAY))
    assert [g.run_id for g in store.gate_runs(10)] == ["new"]


def test_maintenance_thread_runs_until_stopped(store: Store) -> None:
    ts, vals = irregular(3)
    write(store, ts, vals)
    maintenance = StoreMaintenance(
        store, TierRetention(*[10_000 * DAY] * 3), rollup_every_ms=50
    )  # the real clock: a long retention keeps these old samples
    maintenance.start()
    try:
        deadline = time.monotonic() + 20
        while maintenance.runs < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        maintenance.stop()
    assert maintenance.runs >= 2 and maintenance.failures == 0
    assert_exact(stored(store, HOUR_MS), direct(ts, vals, HOUR_MS))


# --------------------------------------------------------------------------- killed mid-rollup

_CHILD = """
import sys
from secperf.store import Store
store = Store.open(sys.argv[1])
print("start", flush=True)
store.rollup(int(sys.argv[2]))
print("done", flush=True)
"""


@pytest.mark.slow
def test_a_rollup_killed_mid_way_resumes_with_exact_totals(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    hosts = [f"h{i}" for i in range(60)]
    rng = np.random.default_rng(5)
    ts = T0 + np.arange(0, 2 * DAY, 2_000, dtype=np.int64)
    data = {h: np.round(rng.normal(50, 10, ts.size), 1) for h in hosts}
    with Store.open(path) as s:
        for h in hosts:
            write(s, ts, data[h], host=h)
    now = T0 + 2 * DAY + GRACE_MS
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path), str(now)], env=env, stdout=subprocess.PIPE
    )
    try:
        with Store.open(path) as watcher:
            deadline = time.monotonic() + 60
            states = 0
            while time.monotonic() < deadline and child.poll() is None:
                with watcher.engine.connect() as conn:
                    states = conn.execute(
                        select(func.count()).select_from(rollup_state)
                    ).scalar_one()
                if states:
                    break
                time.sleep(0.005)
            assert child.poll() is None, "the rollup finished before it could be killed"
            os.kill(child.pid, signal.SIGKILL)
            child.wait(10)
            assert child.returncode == -signal.SIGKILL
            with watcher.engine.connect() as conn:
                partial = conn.execute(select(func.count()).select_from(rollups)).scalar_one()
            assert states > 0 and partial < 60 * 3  # part of the work, not all
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
    with Store.open(path) as s:
        s.rollup(now)
        minutes = stored(s, MINUTE_MS)
        assert int(minutes.count.sum()) == ts.size * len(hosts)
        for h in ("h0", "h59"):
            found = s.query(NAME, {"host": h}, T0, T0 + 2 * DAY - 1, step_ms=HOUR_MS)[0]
            assert found.count is not None and found.count.tolist() == [1800] * 48
            expected = direct(ts, data[h], HOUR_MS)
            assert found.values.tolist() == pytest.approx(
                [expected[k][2] / expected[k][3] for k in sorted(expected)], rel=1e-12
            )


# --------------------------------------------------------------------------- races


def _minutes(n: int, value: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    ts = T0 + np.arange(n, dtype=np.int64) * MINUTE_MS
    return ts, np.full(n, value)


@pytest.mark.parametrize("state", ["new series", "rolled before"])
def test_a_late_sample_written_during_a_rollup_reaches_the_tiers(
    store_url: str, state: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second store (another process's) writes a late sample while a pass is rolling its span."""
    ts, vals = _minutes(20)
    with Store.open(store_url) as store, Store.open(store_url) as other:
        write(store, ts, vals, now=T0 + 20 * MINUTE_MS)
        if state == "rolled before":
            store.rollup(T0 + 12 * MINUTE_MS)  # watermark at T0 + 10 min
        late_ts = T0 + 15 * MINUTE_MS + 1 if state == "rolled before" else T0 + 5 * MINUTE_MS + 1
        now = T0 + 30 * MINUTE_MS
        writers: list[threading.Thread] = []
        read_sources = store._read_sources

        def racing(*args: Any) -> Any:
            out = read_sources(*args)
            if not writers:
                late = [Sample(NAME, {"host": "a"}, late_ts, 100.0)]
                writer = threading.Thread(
                    target=other.write_samples, args=(late,), kwargs={"now_ms": now}
                )
                writers.append(writer)
                writer.start()
                # Where the source is read under the write lock the writer waits for the
                # pass; elsewhere it commits now, between the read and the write.
                writer.join(2.0)
            return out

        monkeypatch.setattr(store, "_read_sources", racing)
        store.rollup(now)
        monkeypatch.undo()
        writers[0].join(30)
        assert not writers[0].is_alive()
        store.rollup(now + MINUTE_MS)
        all_ts, all_vals = np.append(ts, late_ts), np.append(vals, 100.0)
        order = np.argsort(all_ts)
        assert_exact(stored(store, MINUTE_MS), direct(all_ts[order], all_vals[order], MINUTE_MS))


def test_a_write_judges_lateness_by_the_clock_once_it_holds_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rollup that commits while a write waits for the lock has rolled by a later clock."""
    store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
    ts, vals = _minutes(10)
    write(store, ts, vals, now=T0 + 7 * MINUTE_MS + 40_000)
    clock = {"now": T0 + 9 * MINUTE_MS + 20_000}
    readers: list[str] = []

    def fake_clock() -> int:
        readers.append(threading.current_thread().name)
        return clock["now"]

    monkeypatch.setattr("secperf.store.samples._now_ms", fake_clock)
    late_ts = T0 + 7 * MINUTE_MS + 30_000  # not late by the first clock reading
    sample = [Sample(NAME, {"host": "a"}, late_ts, 50.0)]
    writer = threading.Thread(target=store.write_samples, args=(sample,), name="writer")
    with store._lock:
        writer.start()
        deadline = time.monotonic() + 10
        while "writer" not in readers:  # it read the clock and now waits for the lock
            assert time.monotonic() < deadline, "the writer never read the clock"
            time.sleep(0.005)
        clock["now"] = T0 + 10 * MINUTE_MS
        store.rollup(clock["now"])  # rolls the minutes before T0 + 8 min
    writer.join(30)
    assert not writer.is_alive()
    store.rollup(T0 + 15 * MINUTE_MS)
    all_ts, all_vals = np.append(ts, late_ts), np.append(vals, 50.0)
    order = np.argsort(all_ts)
    expected = direct(all_ts[order], all_vals[order], MINUTE_MS)
    rolled = {k: v for k, v in expected.items() if k < T0 + 13 * MINUTE_MS}
    assert_exact(stored(store, MINUTE_MS), rolled)
    store.close()


def test_two_stores_rolling_up_a_new_series_at_once_on_postgresql(postgres_url: str) -> None:
    """Both find no state row; the second to insert one loses the race instead of failing."""
    ts, vals = _minutes(10)
    with Store.open(postgres_url) as a, Store.open(postgres_url) as b:
        for t, v in zip(ts.tolist(), vals.tolist(), strict=True):  # on time: no state row yet
            a.write_samples([Sample(NAME, {"host": "a"}, t, v)], now_ms=t)
        barrier = threading.Barrier(2, timeout=10)
        results: dict[str, Any] = {}

        def hold_after_lock(s: Store) -> None:
            lock_states = s._lock_states
            calls: list[int] = []

            def wrapped(*args: Any) -> Any:
                found = lock_states(*args)
                if not calls:  # both transactions have looked for the state row
                    calls.append(1)
                    barrier.wait()
                return found

            setattr(s, "_lock_states", wrapped)  # noqa: B010 - a per-instance hook

        def run(name: str, s: Store) -> None:
            try:
                results[name] = s.rollup(T0 + 20 * MINUTE_MS)
            except Exception as exc:  # the failure this test is about
                results[name] = exc

        hold_after_lock(a)
        hold_after_lock(b)
        threads = [threading.Thread(target=run, args=(n, s)) for n, s in (("a", a), ("b", b))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        errors = [r for r in results.values() if isinstance(r, Exception)]
        assert errors == []
        assert sum(r.conflicts for r in results.values()) >= 1
        assert_exact(stored(a, MINUTE_MS), direct(ts, vals, MINUTE_MS))


# --------------------------------------------------------------------------- retention and catch-up


def _four_days(store: Store, series: int) -> tuple[int, int]:
    """A sample every 10 minutes for 4 days per series; returns (start, now)."""
    now = T0 + 10 * DAY
    start = now - 4 * DAY
    for i in range(series):
        ts = np.arange(start, now, 10 * MINUTE_MS, dtype=np.int64)
        write(store, ts, np.ones(ts.size), host=f"h{i}", now=now)
    return start, now


def test_one_minute_retention_keeps_what_the_hours_have_not_rolled(store: Store) -> None:
    start, now = _four_days(store, 1)
    retention = TierRetention(DAY, 2 * DAY, 730 * DAY)
    store.rollup(now, retention=retention, max_transactions=4)  # minutes only, no hours yet
    store.apply_tiered_retention(now, retention)
    store.rollup(now, retention=retention)
    days = store.query(NAME, None, start, now - 1, step_ms=DAY)[0]
    assert days.count is not None and int(days.count.sum()) == 4 * 144
    # Once the hours have them, the minutes past their retention go.
    store.apply_tiered_retention(now, retention)
    assert int(stored(store, MINUTE_MS).ts.min()) >= now - 2 * DAY - HOUR_MS


def test_maintenance_stopped_during_a_catch_up_applies_no_retention(store: Store) -> None:
    start, now = _four_days(store, 150)  # 6 transactions of series x 4 days: over one slice
    retention = TierRetention(DAY, 2 * DAY, 730 * DAY)
    m = StoreMaintenance(store, retention, clock=lambda: now)
    rollup = store.rollup

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        result = rollup(*args, **kwargs)
        m.stop()  # Ctrl-C during the first slice
        return result

    setattr(store, "rollup", interrupted)  # noqa: B010 - a per-instance hook
    first = m.run_once()
    delattr(store, "rollup")
    assert first.retention is None
    assert first.rollup.transactions == 20
    StoreMaintenance(store, retention, clock=lambda: now).run_once()
    days = store.query(NAME, None, start, now - 1, step_ms=DAY)
    assert len(days) == 150
    assert all(d.count is not None and int(d.count.sum()) == 4 * 144 for d in days)


# --------------------------------------------------------------------------- step edges


@pytest.mark.parametrize("rolled_hours", [2, 1])  # all from minutes; minutes then raw
def test_tier_steps_lie_on_the_bucket_grid_for_any_start(store: Store, rolled_hours: int) -> None:
    ts, vals = irregular(2)
    write(store, ts, vals, now=T0 + 2 * HOUR_MS)
    store.rollup(T0 + rolled_hours * HOUR_MS + GRACE_MS)
    start, end, step = T0 + 30_007, T0 + 2 * HOUR_MS - 45_000, 2 * MINUTE_MS
    tiered = store.query(NAME, None, start, end, step_ms=step)[0]
    # The same steps from raw samples over the whole buckets holding the ends.
    lo, hi = T0, end - end % MINUTE_MS + MINUTE_MS - 1
    raw = store.query(NAME, None, lo, hi, step_ms=step, tiers=False)[0]
    assert tiered.step_ms == raw.step_ms == step
    assert tiered.timestamps.tolist() == raw.timestamps.tolist()
    assert tiered.count is not None and raw.count is not None
    assert tiered.count.tolist() == raw.count.tolist()
    assert tiered.min is not None and raw.min is not None
    assert tiered.min.tolist() == raw.min.tolist()
    assert tiered.max is not None and raw.max is not None
    assert tiered.max.tolist() == raw.max.tolist()
    np.testing.assert_allclose(tiered.values, raw.values, rtol=1e-12)
    for t, n in zip(tiered.timestamps.tolist(), tiered.count.tolist(), strict=True):
        assert n == int(((ts >= t) & (ts < t + step)).sum())


def test_hours_rolled_while_another_store_rerolls_their_minutes_are_rolled_again(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ts = T0 + np.arange(120, dtype=np.int64) * MINUTE_MS
    vals = np.ones(ts.size)
    now = T0 + 3 * HOUR_MS
    late_ts = T0 + 30 * MINUTE_MS + 5
    with Store.open(store_url) as store, Store.open(store_url) as other:
        write(store, ts, vals, now=now)
        other.rollup(now, max_transactions=1)  # the minutes, not yet the hours
        workers: list[threading.Thread] = []
        read_sources = store._read_sources

        def racing(*args: Any) -> Any:
            out = read_sources(*args)
            if HOUR_MS in args and not workers:

                def late_and_reroll() -> None:
                    other.write_samples([Sample(NAME, {"host": "a"}, late_ts, 9.0)], now_ms=now)
                    other.rollup(now, max_transactions=1)  # re-rolls the minute only

                worker = threading.Thread(target=late_and_reroll)
                workers.append(worker)
                worker.start()
                worker.join(2.0)  # under the write lock it waits for this pass
            return out

        monkeypatch.setattr(store, "_read_sources", racing)
        store.rollup(now)
        monkeypatch.undo()
        assert workers
        workers[0].join(30)
        assert not workers[0].is_alive()
        store.rollup(now)
        all_ts, all_vals = np.append(ts, late_ts), np.append(vals, 9.0)
        order = np.argsort(all_ts)
        assert_exact(stored(store, MINUTE_MS), direct(all_ts[order], all_vals[order], MINUTE_MS))
        assert_exact(stored(store, HOUR_MS), direct(all_ts[order], all_vals[order], HOUR_MS))
