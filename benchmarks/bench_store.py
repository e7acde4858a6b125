"""The store: ingest from the bus to disk, bytes per sample on disk, downsampled queries.

Each figure is measured beside a plain-SQLite anchor in the same run:
* ingest: MetricsRecorded batches on the real AsyncEventBus, a StoreWriter
  attached, timed until every sample is committed; anchor: ``sqlite3.executemany``
  of the same (series_id, ts, value) rows into a plain WAL table;
* disk: database file size / samples after compaction, for regular 1 s series
  (a noisy CPU percentage with one decimal, a growing byte counter); anchor:
  the same samples as plain rows;
* query: 24 h of one 1 s series downsampled to 1,000 points; anchor: the same
  min / max / avg by SQL GROUP BY over an indexed plain table.
"""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import Figure
from secperf.bus.memory import AsyncEventBus
from secperf.events import MetricsRecorded
from secperf.model import Sample
from secperf.store import Store, StoreWriter

AREA = "store"
DAY_S = 86_400


def _start_ms() -> int:
    now = time.time_ns() // 1_000_000
    return now - now % 3_600_000 - 2 * DAY_S * 1000


def _plain_db(path: Path, *, index: bool = False) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE samples (series_id INTEGER, ts INTEGER, value REAL)")
    if index:
        conn.execute("CREATE INDEX ix_samples ON samples (series_id, ts)")
    return conn


def _plain_insert(conn: sqlite3.Connection, rows: list[tuple[int, int, float]], batch: int) -> None:
    for i in range(0, len(rows), batch):
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO samples VALUES (?, ?, ?)", rows[i : i + batch])
        conn.execute("COMMIT")


def _file_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


# ---------------------------------------------------------------------- ingest


def _ingest(tmp: Path, total: int, series_count: int = 100, per_event: int = 1000) -> Figure:
    start = _start_ms()
    per_series = total // series_count
    samples = [
        Sample("bench_ingest", {"host": "h1", "series": str(s)}, start + i * 1000, (i % 1000) / 10)
        for i in range(per_series)
        for s in range(series_count)
    ]
    events = [
        MetricsRecorded(samples=tuple(samples[i : i + per_event]))
        for i in range(0, len(samples), per_event)
    ]
    max_batch = 50_000

    async def through_bus(path: Path) -> tuple[float, int, int]:
        store = Store.open(path)
        bus = AsyncEventBus()
        writer = StoreWriter(store, flush_interval_s=1.0, max_batch=max_batch)
        await writer.attach(bus)
        began = time.perf_counter()
        for event in events:
            await bus.publish(event)
        await writer.close()  # drains the subscription and commits the rest
        elapsed = time.perf_counter() - began
        await bus.close()
        store.close()
        return elapsed, writer.samples_written, bus.stats().dropped

    def anchor(path: Path) -> float:
        # Row i of series s gets id s + 1, as the store's first series would.
        rows = [(j % series_count + 1, s.timestamp_ms, s.value) for j, s in enumerate(samples)]
        conn = _plain_db(path)
        began = time.perf_counter()
        _plain_insert(conn, rows, max_batch)
        elapsed = time.perf_counter() - began
        conn.close()
        return elapsed

    store_rates: list[float] = []
    anchor_rates: list[float] = []
    for run in range(3):
        elapsed, written, dropped = asyncio.run(through_bus(tmp / f"ingest{run}" / "s.db"))
        if written != len(samples) or dropped:
            raise RuntimeError(f"ingest lost samples: wrote {written}, bus dropped {dropped}")
        store_rates.append(len(samples) / elapsed)
        anchor_rates.append(len(samples) / anchor(tmp / f"plain{run}.db"))
    rate = statistics.median(store_rates)
    anchor_rate = statistics.median(anchor_rates)
    return Figure(
        AREA,
        "ingest, bus to disk",
        rate,
        "samples/s",
        ">= 300,000 samples/s and >= 0.5x anchor",
        rate >= 300_000 and rate >= 0.5 * anchor_rate,
        "sqlite3.executemany, plain WAL table",
        anchor_rate,
        f"{len(samples):,} samples, {series_count} series, {per_event} per event,"
        " validated, compressed; median of 3",
    )


# ---------------------------------------------------------------------- disk


def _realistic_series(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A noisy CPU percentage (one decimal, as psutil gives it) and a byte counter."""
    level = 25 + 10 * np.sin(np.arange(n) / 900.0) + rng.normal(0, 4, n)
    cpu = np.round(np.clip(level, 0, 100), 1)
    counter = np.cumsum(rng.integers(0, 200_000, n)).astype(np.float64) + 1e9
    return cpu, counter


def _disk(tmp: Path, hours: int, pairs: int) -> list[Figure]:
    rng = np.random.default_rng(42)
    n = hours * 3600
    start = _start_ms()
    ts = start + np.arange(n, dtype=np.int64) * 1000
    columns: list[tuple[str, dict[str, str], np.ndarray]] = []
    for p in range(pairs):
        cpu, counter = _realistic_series(n, rng)
        columns.append(("cpu_percent", {"host": f"h{p}"}, cpu))
        columns.append(("net_sent_bytes_total", {"host": f"h{p}"}, counter))
    total = n * len(columns)

    path = tmp / "disk" / "s.db"
    store = Store.open(path)
    window = 60  # one write per minute of data keeps the benchmark short
    now = start + n * 1000 + 60_000
    ts_list = ts.tolist()
    for lo in range(0, n, window):
        batch = [
            Sample(name, labels, t, v)
            for name, labels, values in columns
            for t, v in zip(
                ts_list[lo : lo + window], values[lo : lo + window].tolist(), strict=True
            )
        ]
        store.write_samples(batch, now_ms=now)
    store.compact()
    with store.engine.connect() as sa_conn:
        blob_bytes = int(
            sa_conn.exec_driver_sql("SELECT sum(length(data)) FROM chunks").scalar() or 0
        )
    store.close()  # the last connection to close checkpoints the WAL into the file
    store_bytes = _file_bytes(path)

    plain_path = tmp / "disk_plain.db"
    conn = _plain_db(plain_path)
    rows = [
        (k + 1, t, v)
        for k, (_, _, values) in enumerate(columns)
        for t, v in zip(ts_list, values.tolist(), strict=True)
    ]
    _plain_insert(conn, rows, 100_000)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    plain_bytes = _file_bytes(plain_path)

    per_sample = store_bytes / total
    note = f"{total:,} samples ({pairs} CPU % + {pairs} byte counters, {hours} h at 1 s)"
    return [
        Figure(
            AREA,
            "disk per sample (database file)",
            per_sample,
            "B/sample",
            "<= 8 B/sample",
            per_sample <= 8,
            "plain row per sample",
            plain_bytes / total,
            note + "; file after compaction, freed pages included",
        ),
        Figure(
            AREA,
            "disk per sample (chunk data only)",
            blob_bytes / total,
            "B/sample",
            "",
            None,
            "plain row per sample",
            plain_bytes / total,
            note,
        ),
    ]


# ---------------------------------------------------------------------- query


def _query(tmp: Path, repeats: int) -> Figure:
    rng = np.random.default_rng(7)
    n = DAY_S
    start = _start_ms()
    ts = start + np.arange(n, dtype=np.int64) * 1000
    cpu, _ = _realistic_series(n, rng)
    path = tmp / "query" / "s.db"
    store = Store.open(path)
    labels = {"host": "h1"}
    ts_list = ts.tolist()
    values = cpu.tolist()
    for lo in range(0, n, 3600):
        store.write_samples(
            [
                Sample("cpu_percent", labels, t, v)
                for t, v in zip(ts_list[lo : lo + 3600], values[lo : lo + 3600], strict=True)
            ],
            now_ms=start + n * 1000,
        )
    store.compact()
    end = start + n * 1000 - 1

    def timed_store() -> float:
        began = time.perf_counter()
        result = store.query("cpu_percent", labels, start, end, max_points=1000)
        elapsed = time.perf_counter() - began
        if len(result) != 1 or result[0].timestamps.size != 1000:
            raise RuntimeError("query returned the wrong shape")
        return elapsed

    conn = _plain_db(tmp / "query_plain.db", index=True)
    _plain_insert(conn, [(1, t, v) for t, v in zip(ts_list, values, strict=True)], 100_000)
    step = -(-(end - start + 1) // 1000)

    def timed_anchor() -> float:
        began = time.perf_counter()
        rows = conn.execute(
            "SELECT (ts - ?) / ?, min(value), max(value), avg(value), count(*) FROM samples"
            " WHERE series_id = 1 AND ts BETWEEN ? AND ? GROUP BY 1 ORDER BY 1",
            (start, step, start, end),
        ).fetchall()
        elapsed = time.perf_counter() - began
        if len(rows) != 1000:
            raise RuntimeError("anchor query returned the wrong shape")
        return elapsed

    timed_store()
    timed_anchor()
    store_ms = statistics.median(timed_store() for _ in range(repeats)) * 1000
    anchor_ms = statistics.median(timed_anchor() for _ in range(repeats)) * 1000
    conn.close()
    store.close()
    return Figure(
        AREA,
        "query 86,400 samples to 1,000 points",
        store_ms,
        "ms",
        "<= 50 ms",
        store_ms <= 50,
        "SQL GROUP BY on an indexed plain table",
        anchor_ms,
        f"min / max / avg per step; median of {repeats}",
    )


def run(quick: bool) -> list[Figure]:
    """Measure the store's figures (``quick``: fewer samples, fewer repeats)."""
    with tempfile.TemporaryDirectory(prefix="secperf-bench-store-") as tmp_name:
        tmp = Path(tmp_name)
        figures = [_ingest(tmp, total=200_000 if quick else 2_000_000)]
        figures += _disk(tmp, hours=6 if quick else 24, pairs=2 if quick else 5)
        figures.append(_query(tmp, repeats=5 if quick else 30))
    return figures
