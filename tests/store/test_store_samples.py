"""Samples in the store: round trip, validation, compaction, downsampling, retention."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from secperf.model import Sample, sample_problem
from secperf.store import Store, StoreTargetError
from secperf.store.samples import downsample
from secperf.store.schema import chunks

HOUR = 3_600_000
T0 = 1_700_000_000_000 - 1_700_000_000_000 % (2 * HOUR)  # start of a block
NOW = T0 + 48 * HOUR


def cpu(ts: int, value: float, host: str = "a") -> Sample:
    return Sample("cpu_percent", {"host": host, "mode": "user"}, ts, value)


def chunk_rows(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(chunks)).scalar_one())


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = Store.open(store_url, compact_after=4)
    yield s
    s.close()


def test_open_creates_parent_directories_and_sqlite_settings(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "x.db"
    with Store.open(path) as s:
        assert path.exists()
        with s.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL


def test_open_accepts_an_sqlalchemy_url(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'u' / 'x.db'}"
    with Store.open(url) as s:
        assert s.write_samples([cpu(T0, 1.0)]).accepted == 1
    with Store.open(tmp_path / "u" / "x.db") as s:
        assert s.latest("cpu_percent")[0].value == 1.0


@pytest.mark.parametrize(
    ("target", "message"),
    [("mysql://u@h/db", "not supported"), ("", "empty")],
)
def test_bad_targets_are_named(target: str, message: str) -> None:
    with pytest.raises(StoreTargetError, match=message):
        Store.open(target)


def test_a_directory_is_not_a_database(tmp_path: Path) -> None:
    with pytest.raises(StoreTargetError, match="is a directory"):
        Store.open(tmp_path)


def test_round_trip_of_several_series(store: Store) -> None:
    samples = [cpu(T0 + i * 1000, i / 10, host) for i in range(100) for host in ("a", "b")]
    result = store.write_samples(samples, now_ms=NOW)
    assert (result.accepted, result.rejected, result.errors) == (200, 0, ())
    got = store.query("cpu_percent", {"host": "b"}, T0, T0 + 99_000)
    assert len(got) == 1
    assert got[0].labels == {"host": "b", "mode": "user"}
    assert got[0].timestamps.tolist() == [T0 + i * 1000 for i in range(100)]
    assert got[0].values.tolist() == [i / 10 for i in range(100)]
    both = store.query("cpu_percent", None, T0, T0 + 10_000)
    assert sorted(p.labels["host"] for p in both) == ["a", "b"]
    assert all(p.timestamps.size == 11 for p in both)  # range ends are inclusive


def test_label_order_does_not_create_a_new_series(store: Store, store_url: str) -> None:
    store.write_samples([Sample("m", {"a": "1", "b": "2"}, T0, 1.0)], now_ms=NOW)
    store.write_samples([Sample("m", {"b": "2", "a": "1"}, T0 + 1, 2.0)], now_ms=NOW)
    reopened = Store.open(store_url)
    reopened.write_samples([Sample("m", {"b": "2", "a": "1"}, T0 + 2, 3.0)], now_ms=NOW)
    assert len(store.series("m")) == 1
    assert store.query("m", None, T0, T0 + 2)[0].values.tolist() == [1.0, 2.0, 3.0]
    reopened.close()


def test_invalid_samples_are_rejected_with_reasons_and_never_stored(store: Store) -> None:
    good = cpu(T0, 5.0)
    bad: list[object] = [
        cpu(T0 + 1, float("nan")),
        cpu(T0 + 2, float("inf")),
        cpu(NOW + 3_600_000, 1.0),
        Sample("cpu_percent", {"host": 1}, T0, 1.0),  # type: ignore[dict-item]
        Sample("cpu_percent", {"host": ["x"]}, T0, 1.0),  # type: ignore[dict-item]
        Sample("cpu percent", {}, T0, 1.0),
        Sample("m", {}, "yesterday", 1.0),  # type: ignore[arg-type]
        Sample("m", {}, T0, "high"),  # type: ignore[arg-type]
        Sample("m", {}, T0, True),
        Sample("m", {}, T0, 10**400),
        Sample("m", "host=a", T0, 1.0),  # type: ignore[arg-type]
        {"name": "m"},
        None,
    ]
    result = store.write_samples([good, *bad], now_ms=NOW)  # type: ignore[list-item]
    assert result.accepted == 1
    assert result.rejected == len(bad)
    assert len(result.errors) == 10
    assert result.errors[0] == "sample 1: cpu_percent: value nan is not finite"
    assert "more than 10 minutes in the future" in result.errors[2]
    assert "label 'host' must be a string, got int" in result.errors[3]
    assert store.sample_count() == 1
    assert store.list_metric_names() == ["cpu_percent"]


def test_cached_series_still_validates_values(store: Store) -> None:
    store.write_samples([cpu(T0, 1.0)], now_ms=NOW)
    result = store.write_samples([cpu(T0 + 1, float("nan")), cpu(T0 + 2, 2)], now_ms=NOW)
    assert (result.accepted, result.rejected) == (1, 1)
    assert store.query("cpu_percent", None, T0, T0 + 2)[0].values.tolist() == [1.0, 2.0]


def test_redelivered_samples_are_stored_once_last_write_wins(store: Store) -> None:
    batch = [cpu(T0 + i * 1000, float(i)) for i in range(10)]
    store.write_samples(batch, now_ms=NOW)
    store.write_samples(batch[5:], now_ms=NOW)  # re-delivery
    store.write_samples([cpu(T0 + 9000, 99.5)], now_ms=NOW)  # a correction
    points = store.query("cpu_percent", None, T0, NOW)[0]
    assert points.timestamps.tolist() == [T0 + i * 1000 for i in range(10)]
    assert points.values.tolist() == [*map(float, range(9)), 99.5]
    assert store.latest("cpu_percent")[0].value == 99.5
    store.compact()
    assert chunk_rows(store) == 1
    assert store.sample_count() == 10
    assert store.query("cpu_percent", None, T0, NOW)[0].values.tolist()[-1] == 99.5


def test_full_blocks_and_closed_blocks_are_compacted(store: Store) -> None:
    for i in range(3):
        store.write_samples([cpu(T0 + i * 1000, float(i))], now_ms=NOW)
    assert chunk_rows(store) == 3
    store.write_samples([cpu(T0 + 3000, 3.0)], now_ms=NOW)  # 4th chunk: compact_after
    assert chunk_rows(store) == 1
    store.write_samples([cpu(T0 + 4000, 4.0)], now_ms=NOW)
    assert chunk_rows(store) == 2
    store.write_samples([cpu(T0 + 2 * HOUR, 5.0)], now_ms=NOW)  # next block closes the first
    assert chunk_rows(store) == 2
    points = store.query("cpu_percent", None, T0, NOW)[0]
    assert points.values.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]


def test_one_write_spanning_blocks_and_out_of_order(store: Store) -> None:
    samples = [cpu(T0 + 3 * HOUR - i * 60_000, float(i)) for i in range(180)]
    store.write_samples(samples, now_ms=NOW)
    assert chunk_rows(store) == 2
    points = store.query("cpu_percent", None, T0, NOW)[0]
    assert np.all(np.diff(points.timestamps) == 60_000)
    assert points.values[0] == 179.0 and points.values[-1] == 0.0


def test_downsampling_matches_a_plain_computation(store: Store) -> None:
    rng = np.random.default_rng(3)
    n = 5000
    values = np.round(rng.uniform(0, 100, n), 1)
    store.write_samples([cpu(T0 + i * 1000, float(v)) for i, v in enumerate(values)], now_ms=NOW)
    got = store.query("cpu_percent", None, T0, T0 + n * 1000 - 1, max_points=100)[0]
    assert got.step_ms == 50_000 and got.timestamps.size == 100
    assert got.count is not None and got.min is not None and got.max is not None
    for k in (0, 37, 99):
        chunk = values[k * 50 : (k + 1) * 50]
        assert got.timestamps[k] == T0 + k * 50_000
        assert got.count[k] == 50
        assert got.min[k] == chunk.min() and got.max[k] == chunk.max()
        assert got.values[k] == pytest.approx(chunk.mean())
    stepped = store.query("cpu_percent", None, T0, T0 + 9_999, step_ms=5_000)[0]
    assert stepped.timestamps.tolist() == [T0, T0 + 5_000]


def test_downsample_keeps_huge_averages_finite() -> None:
    ts = np.array([0, 1], dtype=np.int64)
    vals = np.array([1.7e308, 1.7e308])
    _, avg, _, _, counts = downsample(ts, vals, 0, 10)
    assert counts.tolist() == [2] and np.isfinite(avg[0])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start_ms": 10, "end_ms": 5}, "range is empty"),
        ({"start_ms": 0, "end_ms": 5, "step_ms": 0}, "step_ms"),
        ({"start_ms": 0, "end_ms": 5, "max_points": -1}, "max_points"),
    ],
)
def test_bad_query_arguments(store: Store, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        store.query("cpu_percent", None, **kwargs)


def test_series_matchers_latest_and_names(store: Store) -> None:
    store.write_samples(
        [cpu(T0, 1.0, "a"), cpu(T0 + 5, 2.0, "b"), Sample("load_1m", {}, T0, 0.5)], now_ms=NOW
    )
    assert store.list_metric_names() == ["cpu_percent", "load_1m"]
    assert [s.labels["host"] for s in store.series("cpu_percent", {"mode": "user"})] == ["a", "b"]
    assert store.series("cpu_percent", {"host": "zzz"}) == []
    assert len(store.series()) == 3
    latest = store.latest("cpu_percent", {"host": "b"})
    assert [(x.timestamp_ms, x.value) for x in latest] == [(T0 + 5, 2.0)]
    assert store.query("nothing", None, 0, NOW) == []


def test_retention_drops_old_chunks_and_trims_the_boundary(store: Store) -> None:
    samples = [cpu(T0 + i * 60_000, float(i)) for i in range(6 * 60)]  # 6 hours, 3 blocks
    samples.append(Sample("old_metric", {}, T0, 1.0))
    store.write_samples(samples, now_ms=NOW)
    cutoff = T0 + 3 * HOUR + 30 * 60_000
    result = store.apply_retention(now_ms=cutoff + HOUR, max_age_ms=HOUR)
    assert result.cutoff_ms == cutoff
    assert result.chunks.chunks_deleted == 2  # first block of cpu, and old_metric
    assert result.chunks.chunks_trimmed == 1
    assert result.chunks.series_deleted == 1
    points = store.query("cpu_percent", None, 0, NOW)[0]
    assert points.timestamps[0] == cutoff
    assert points.timestamps.size == 6 * 60 - 210
    assert store.list_metric_names() == ["cpu_percent"]
    # Writing after retention works with the reloaded caches.
    store.write_samples([Sample("old_metric", {}, NOW, 2.0)], now_ms=NOW)
    assert store.latest("old_metric")[0].value == 2.0
    with pytest.raises(ValueError, match="max_age_ms"):
        store.apply_retention(NOW, 0)


def test_new_series_in_a_batch_are_checked_once_per_series(store: Store) -> None:
    batch = [
        Sample("fresh", {"k": "a"}, T0, 1.0),
        Sample("fresh", {"k": 7}, T0, 1.0),  # type: ignore[dict-item]
        Sample("fresh", {"k": "a"}, T0 + 1, float("nan")),
        Sample("fresh", {"k": "b"}, T0, 2.0),
        Sample("fresh", {"k": 7}, T0 + 1, 1.0),  # type: ignore[dict-item]
        Sample("fresh", {"k": "a"}, T0, 3.0),  # same timestamp again: last write wins
    ]
    result = store.write_samples(batch, now_ms=NOW)
    assert (result.accepted, result.rejected) == (3, 3)
    assert sorted(result.errors) == [
        "sample 1: fresh: label 'k' must be a string, got int",
        "sample 2: fresh: value nan is not finite",
        "sample 4: fresh: label 'k' must be a string, got int",
    ]
    a = store.query("fresh", {"k": "a"}, T0, NOW)[0]
    assert (a.timestamps.tolist(), a.values.tolist()) == ([T0], [3.0])
    assert store.latest("fresh", {"k": "b"})[0].value == 2.0


_names = iter(range(10**9))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c"]),
            st.one_of(st.integers(-5, 5), st.sampled_from([NOW + HOUR, 2**70, "x"])),
            st.one_of(
                st.floats(allow_nan=True, allow_infinity=True),
                st.integers(-(2**70), 2**70),
                st.sampled_from([True, "1", 10**400]),
            ),
            st.booleans(),
        ),
        max_size=40,
    )
)
def test_writes_accept_exactly_what_sample_problem_accepts(
    store: Store, rows: list[tuple[str, object, object, bool]]
) -> None:
    name = f"prop_{next(_names)}"
    batch = [
        Sample(name, {"s": key} if good_labels else {"s": 1}, ts, value)  # type: ignore[arg-type, dict-item]
        for key, ts, value, good_labels in [
            (k, T0 + t if isinstance(t, int) and abs(t) < 10 else t, v, g) for k, t, v, g in rows
        ]
    ]
    expected: dict[tuple[str, int], float] = {}
    for sample in batch:
        try:
            ok = sample_problem(sample, NOW) is None and math.isfinite(float(sample.value))
        except OverflowError:
            ok = False
        if ok:
            expected[(sample.labels["s"], sample.timestamp_ms)] = float(sample.value)
    result = store.write_samples(batch, now_ms=NOW)
    assert result.accepted + result.rejected == len(batch)
    stored: dict[tuple[str, int], float] = {}
    for points in store.query(name, None, 0, NOW + 2 * HOUR):
        for t, v in zip(points.timestamps.tolist(), points.values.tolist(), strict=True):
            stored[(points.labels["s"], t)] = v
    assert stored == expected
