"""Samples: series identities, compressed chunks, compaction, queries, retention.

A series is a metric name plus a label set. Its samples are kept in chunks per
aligned time block (two hours by default). Every write appends one small chunk
per series and block, so a committed write is durable at once; when a block
holds ``compact_after`` chunks, or when a series moves on to a later block, the
block's chunks are merged into one. Merging and reading resolve repeated
timestamps by the last write (chunk id order), so re-delivered samples are
never counted twice.

One idea, kept whole though it runs past 600 lines: the sample half of the
store (series identities, chunk writes, compaction, queries, retention) works
on one table pair and one chunk codec; its parts share the series cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Connection,
    cast,
    delete,
    exists,
    func,
    literal,
    select,
    update,
)

from secperf.events import now_ms as _now_ms
from secperf.model import LABEL_NAME_RE, MAX_FUTURE_SKEW_MS, Sample, sample_problem
from secperf.store import codec
from secperf.store.lazy_numpy import np
from secperf.store.record_base import RecordMixin
from secperf.store.schema import chunks, dumps_json, rollup_state, rollups, series

if TYPE_CHECKING:
    from secperf.store.codec import F64Array, I64Array

log = logging.getLogger(__name__)

BLOCK_MS = 2 * 60 * 60 * 1000
COMPACT_AFTER = 16
MAX_ERRORS_REPORTED = 10
_IN_BATCH = 500  # bound on IN (...) list sizes, well under every engine's limit
_FAST_CACHE_LIMIT = 1_000_000
_INT_LIMIT = 2**1023  # ints beyond float64's range cannot be stored


SeriesKey = tuple[str, tuple[tuple[str, str], ...]]
_TIMESTAMP = attrgetter("timestamp_ms")
_VALUE = attrgetter("value")
_NUMBER = frozenset({int, float})
#: The tier rolled up from raw samples (store/tiers.py): raw retention waits for it.
ROLLUP_SOURCE_TIER_MS = 60_000
_NEW_SERIES = -2  # placeholder ids of new series count down from here (-1 means unknown)


def _insert_ignoring_duplicates(conn: Connection) -> Any:
    """``INSERT INTO series ... ON CONFLICT DO NOTHING`` in the connection's dialect."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(series).on_conflict_do_nothing(index_elements=["key_hash"])
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(series).on_conflict_do_nothing(index_elements=["key_hash"])


def _series_key(sample: Sample) -> SeriesKey:
    """The cache key of a sample's series, in the caller's label order."""
    return (sample.name, tuple(sample.labels.items()))


@dataclass(slots=True)
class _Checked:
    """A checked batch: accepted samples of known series as arrays, the rest by position."""

    sids: I64Array
    ts: I64Array
    vals: F64Array
    pos: I64Array | None = None  # batch positions of the arrays' samples (None: 0..n-1)
    unresolved: list[tuple[int, Sample]] = field(default_factory=list)  # valid, new series
    # Valid samples of new series: ``sids`` holds _NEW_SERIES - k for new_series[k].
    new_series: list[Sample] = field(default_factory=list)
    rejected: int = 0
    rejected_at: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def reject(self, index: int, problem: str) -> None:
        self.rejected += 1
        self.rejected_at.append(index)
        if len(self.errors) < MAX_ERRORS_REPORTED:
            self.errors.append(f"sample {index}: {problem}")

    @classmethod
    def empty(cls) -> _Checked:
        return cls(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64))


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What ``write_samples`` did: counts and the first few reasons for rejections."""

    accepted: int
    rejected: int
    errors: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SeriesInfo:
    """One stored series."""

    id: int
    name: str
    labels: dict[str, str]


@dataclass(frozen=True, slots=True)
class SeriesPoints:
    """One series' points in a time range.

    Raw (no step): ``values`` are the samples and min / max / count are None.
    Downsampled: ``timestamps`` are the step starts, ``values`` the average in
    each step, and ``min`` / ``max`` / ``count`` the other aggregates. Steps
    without samples are left out.
    """

    series_id: int
    name: str
    labels: dict[str, str]
    timestamps: I64Array
    values: F64Array
    min: F64Array | None = None
    max: F64Array | None = None
    count: I64Array | None = None
    step_ms: int | None = None


@dataclass(frozen=True, slots=True)
class LatestSample:
    """The most recent sample of one series."""

    series_id: int
    name: str
    labels: dict[str, str]
    timestamp_ms: int
    value: float


@dataclass(frozen=True, slots=True)
class ChunkRetention:
    """How many chunks retention deleted and trimmed, and series it emptied."""

    chunks_deleted: int
    chunks_trimmed: int
    series_deleted: int


def _nothing() -> None:
    """Nothing to fill in (a write that stored no sample)."""


def series_key_hash(name: str, canonical_labels: str) -> str:
    """The unique identity of a series in the database."""
    return hashlib.sha256(f"{name}\x00{canonical_labels}".encode()).hexdigest()


def downsample(
    timestamps: I64Array, values: F64Array, start_ms: int, step_ms: int
) -> tuple[I64Array, F64Array, F64Array, F64Array, I64Array]:
    """Per step from ``start_ms``: step start, average, min, max and count (sorted input)."""
    if timestamps.size == 0:
        empty_f = np.empty(0, np.float64)
        return np.empty(0, np.int64), empty_f, empty_f, empty_f, np.empty(0, np.int64)
    bucket = (timestamps - start_ms) // step_ms
    starts = np.flatnonzero(np.concatenate(([True], bucket[1:] != bucket[:-1])))
    counts = np.diff(np.append(starts, timestamps.size)).astype(np.int64)
    # Dividing before summing keeps the average finite for values near float64's max.
    avg = np.add.reduceat(values / np.repeat(counts, counts), starts)
    mins = np.minimum.reduceat(values, starts)
    maxs = np.maximum.reduceat(values, starts)
    step_starts = (start_ms + bucket[starts] * step_ms).astype(np.int64)
    return step_starts, avg, mins, maxs, counts


class SampleStoreMixin(RecordMixin):
    """The sample half of ``Store``; expects ``_engine`` and ``_lock`` from it."""

    block_ms: int
    compact_after: int

    def _init_samples(self, *, block_ms: int, compact_after: int) -> None:
        if block_ms <= 0:
            raise ValueError(f"block_ms must be positive, got {block_ms}")
        if compact_after < 2:
            raise ValueError(f"compact_after must be at least 2, got {compact_after}")
        self.block_ms = block_ms
        self.compact_after = compact_after
        # (name, label items in the caller's order) -> id: one dict lookup per sample.
        self._series_fast: dict[SeriesKey, int] = {}
        # (name, canonical labels JSON) -> id: the order-independent fallback.
        self._series_canon: dict[tuple[str, str], int] = {}
        # (series id, block start) -> chunks in that block, loaded lazily.
        self._block_chunks: dict[tuple[int, int], int] = {}
        self._open_block: dict[int, int] = {}

    def _forget_sample_caches(self) -> None:
        self._series_fast.clear()
        self._series_canon.clear()
        self._block_chunks.clear()
        self._open_block.clear()

    # ------------------------------------------------------------------ writing

    def write_samples(self, samples: Iterable[Sample], *, now_ms: int | None = None) -> WriteResult:
        """Validate and store samples in one transaction.

        Invalid samples (NaN, infinity, far-future timestamps, wrong types,
        non-string labels) are rejected and counted, never stored; the result
        carries the first few reasons, each naming the sample's position.
        """
        now = _now_ms() if now_ms is None else now_ms
        batch = samples if isinstance(samples, list) else list(samples)
        checked = self._check_vectorised(batch, now)
        if checked is None:
            checked = self._check_each(batch, now)
        accepted = int(checked.sids.size) + len(checked.unresolved)
        if accepted:
            with self._lock:
                self._write_checked(checked, now, live_clock=now_ms is None)
        return WriteResult(accepted, checked.rejected, tuple(checked.errors))

    def write_samples_in(
        self, conn: Connection, samples: Iterable[Sample], *, now_ms: int | None = None
    ) -> tuple[WriteResult, Callable[[], None]]:
        """``write_samples`` inside the caller's write transaction ``conn``.

        So a record and its samples commit together. Returns the result and a
        function to call once ``conn`` committed: only committed series enter
        the caches.
        """
        now = _now_ms() if now_ms is None else now_ms
        batch = samples if isinstance(samples, list) else list(samples)
        checked = self._check_vectorised(batch, now)
        if checked is None:
            checked = self._check_each(batch, now)
        accepted = int(checked.sids.size) + len(checked.unresolved)
        committed = self._write_checked(checked, now, conn) if accepted else _nothing
        return WriteResult(accepted, checked.rejected, tuple(checked.errors)), committed

    def write_series_arrays(
        self,
        name: str,
        labels: dict[str, str],
        timestamps: Any,
        values: Any,
        *,
        now_ms: int | None = None,
    ) -> WriteResult:
        """Store many samples of one series given as arrays (imports, backfills).

        The same checks as ``write_samples`` without a ``Sample`` per value:
        the series' name and labels once, then timestamps and values as arrays;
        rejected samples are counted and the first few named by position.
        """
        now = _now_ms() if now_ms is None else now_ms
        ts = np.asarray(timestamps, dtype=np.int64)
        vals = np.asarray(values, dtype=np.float64)
        if ts.ndim != 1 or ts.shape != vals.shape:
            raise ValueError(
                f"timestamps {ts.shape} and values {vals.shape} must be 1-d and equally long"
            )
        if ts.size == 0:
            return WriteResult(0, 0)
        problem = self._sample_problem(Sample(name, labels, int(ts[0]), 0.0), now)
        if problem is not None and not problem.startswith(f"{name}: timestamp_ms"):
            return WriteResult(0, int(ts.size), (f"series: {problem}",))
        ok = (ts >= 0) & (ts <= now + MAX_FUTURE_SKEW_MS) & np.isfinite(vals)
        checked = _Checked.empty()
        for index in np.flatnonzero(~ok)[:MAX_ERRORS_REPORTED].tolist():
            checked.errors.append(
                f"sample {index}: {name}: timestamp_ms {int(ts[index])} or value"
                f" {float(vals[index])!r} cannot be stored (before 1970, over 10 minutes"
                " ahead, or not finite)"
            )
        rejected = int(ts.size - int(ok.sum()))
        keep = np.flatnonzero(ok)
        if keep.size:
            key: SeriesKey = (name, tuple(labels.items()))
            sid = self._series_fast.get(key)
            with self._lock:
                if sid is None:
                    checked.new_series = [Sample(name, labels, int(ts[keep[0]]), 0.0)]
                    sid = _NEW_SERIES
                checked.sids = np.full(keep.size, sid, dtype=np.int64)
                checked.ts, checked.vals = ts[keep], vals[keep]
                self._write_checked(checked, now, live_clock=now_ms is None)
        return WriteResult(int(keep.size), rejected, tuple(checked.errors))

    def _check_vectorised(self, batch: list[Any], now: int) -> _Checked | None:
        """Check a batch of well-typed samples of known series with numpy.

        Returns None when the batch holds anything unusual (another type, odd
        labels, huge numbers); ``_check_each`` then looks at every sample.
        """
        if not batch:
            return _Checked.empty()
        try:
            if set(map(type, batch)) != {Sample}:
                return None
            ts_list = list(map(_TIMESTAMP, batch))
            val_list = list(map(_VALUE, batch))
            if not set(map(type, ts_list)) <= {int} or not set(map(type, val_list)) <= _NUMBER:
                return None
            ts_arr = np.array(ts_list, dtype=np.int64)
            val_arr = np.array(val_list, dtype=np.float64)
            # Keys stay transient: holding 50,000 tuples would wake the garbage collector.
            sid_arr = np.fromiter(
                map(self._series_fast.get, map(_series_key, batch), repeat(-1)),
                dtype=np.int64,
                count=len(batch),
            )
        except (AttributeError, TypeError, OverflowError):
            return None
        limit = now + MAX_FUTURE_SKEW_MS
        sound = (ts_arr >= 0) & (ts_arr <= limit) & np.isfinite(val_arr)
        # A cached key means name and labels were validated when it was added.
        ok = (sid_arr >= 0) & sound
        if bool(ok.all()):
            return _Checked(sid_arr, ts_arr, val_arr)
        new_series: list[Sample] = []
        rejected_keys: dict[SeriesKey, str] = {}
        placeholders: dict[SeriesKey, int] = {}
        checked = _Checked.empty()
        # Unknown series: validate name and labels once per series, not per sample.
        for index in np.flatnonzero((sid_arr < 0) & sound).tolist():
            sample = batch[index]
            key = _series_key(sample)
            placeholder = placeholders.get(key)
            if placeholder is None:
                problem = rejected_keys.get(key) or self._sample_problem(sample, now)
                if problem is not None:
                    rejected_keys[key] = problem
                    checked.reject(index, problem)
                    continue
                placeholder = placeholders[key] = _NEW_SERIES - len(new_series)
                new_series.append(sample)
            sid_arr[index] = placeholder
        ok = (sid_arr != -1) & sound
        pos = np.flatnonzero(ok)
        checked.sids, checked.ts, checked.vals, checked.pos = (
            sid_arr[pos],
            ts_arr[pos],
            val_arr[pos],
            pos,
        )
        checked.new_series = new_series
        rest = ~ok
        rest[checked.rejected_at] = False  # already rejected with their series
        for index in np.flatnonzero(rest).tolist():
            self._check_one(batch[index], index, now, checked)
        return checked

    def _check_each(self, batch: list[Any], now: int) -> _Checked:
        """Check sample by sample (batches with unusual members)."""
        limit = now + MAX_FUTURE_SKEW_MS
        fast = self._series_fast
        sids: list[int] = []
        tss: list[int] = []
        vals: list[float] = []
        positions: list[int] = []
        checked = _Checked.empty()
        for index, sample in enumerate(batch):
            try:
                sid = fast.get(_series_key(sample))
                ts = sample.timestamp_ms
                value = sample.value
            except Exception:  # not a Sample, unhashable labels ...: _check_one says why
                sid = None
            else:
                if (
                    sid is not None
                    and type(sample) is Sample
                    and type(ts) is int
                    and 0 <= ts <= limit
                    and (
                        (type(value) is float and value - value == 0.0)
                        or (type(value) is int and -_INT_LIMIT < value < _INT_LIMIT)
                    )
                ):
                    sids.append(sid)
                    tss.append(ts)
                    vals.append(value)
                    positions.append(index)
                    continue
            self._check_one(sample, index, now, checked)
        checked.sids = np.array(sids, dtype=np.int64)
        checked.ts = np.array(tss, dtype=np.int64)
        checked.vals = np.array(vals, dtype=np.float64)
        checked.pos = np.array(positions, dtype=np.int64)
        return checked

    def _check_one(self, sample: Any, index: int, now: int, checked: _Checked) -> None:
        problem = self._sample_problem(sample, now)
        if problem is None:
            checked.unresolved.append((index, sample))
        else:
            checked.reject(index, problem)

    @staticmethod
    def _sample_problem(sample: Any, now_ms: int) -> str | None:
        try:
            problem = sample_problem(sample, now_ms)
            if problem is None:
                float(sample.value)
        except OverflowError:
            return f"{sample.name}: value is too large for a float64"
        except Exception as exc:
            return f"sample cannot be checked: {type(exc).__name__}: {exc}"
        return problem

    def _write_checked(
        self,
        checked: _Checked,
        now: int,
        in_tx: Connection | None = None,
        *,
        live_clock: bool = False,
    ) -> Callable[[], None]:
        """Write in a transaction of its own, or in ``in_tx`` (the caller commits it).

        In ``in_tx`` the caches are filled by the returned function, which the
        caller calls once it committed.
        """
        new_fast: dict[SeriesKey, int] = {}
        new_canon: dict[tuple[str, str], int] = {}
        block_updates: dict[tuple[int, int], int] = {}
        open_updates: dict[int, int] = {}
        tx = self._write_tx() if in_tx is None else contextlib.nullcontext(in_tx)
        with tx as conn:
            sids, tss, vals, pos = checked.sids, checked.ts, checked.vals, checked.pos
            if checked.new_series or checked.unresolved:
                self._prefetch_series(
                    conn,
                    [*checked.new_series, *(sample for _, sample in checked.unresolved)],
                    new_canon,
                )
            if checked.new_series:
                created = np.array(
                    [
                        self._resolve_series(conn, sample, new_fast, new_canon)
                        for sample in checked.new_series
                    ],
                    dtype=np.int64,
                )
                fresh = sids <= _NEW_SERIES
                sids = sids.copy()
                sids[fresh] = created[_NEW_SERIES - sids[fresh]]
            if checked.unresolved:
                more = [
                    self._resolve_series(conn, sample, new_fast, new_canon)
                    for _, sample in checked.unresolved
                ]
                sids = np.concatenate((sids, np.array(more, dtype=np.int64)))
                tss = np.concatenate(
                    (tss, np.array([s.timestamp_ms for _, s in checked.unresolved], np.int64))
                )
                vals = np.concatenate(
                    (vals, np.array([float(s.value) for _, s in checked.unresolved], np.float64))
                )
                if pos is None:
                    pos = np.arange(checked.sids.size, dtype=np.int64)
                pos = np.concatenate(
                    (pos, np.array([i for i, _ in checked.unresolved], dtype=np.int64))
                )
            rows, groups = self._encode_groups(sids, tss, vals, pos)
            conn.execute(chunks.insert(), rows)
            self._after_insert(conn, groups, block_updates, open_updates)
            # With the live clock, "late" is judged once the write lock is held: a
            # rollup that committed while this write waited has rolled by a later clock.
            self._after_samples_written(conn, sids, tss, _now_ms() if live_clock else now)

        def committed() -> None:
            # Only committed facts enter the caches: a rollback leaves them as they were.
            if len(self._series_fast) + len(new_fast) > _FAST_CACHE_LIMIT:
                self._series_fast.clear()
            self._series_fast.update(new_fast)
            self._series_canon.update(new_canon)
            if len(self._block_chunks) > 4 * max(len(self._open_block), 1024):
                self._block_chunks.clear()
            self._block_chunks.update(block_updates)
            self._open_block.update(open_updates)

        if in_tx is None:
            committed()
        return committed

    def _after_samples_written(
        self, conn: Connection, sids: I64Array, ts: I64Array, now: int
    ) -> None:
        """Called in the write transaction after samples were stored (tiers mark late ones)."""

    def _prefetch_series(
        self, conn: Connection, samples: list[Sample], new_canon: dict[tuple[str, str], int]
    ) -> None:
        """Find or create the series of ``samples`` in a few set-wise statements.

        One round trip per series would dominate a batch that brings many new
        series (a new host's first collection); this reads the known ones with
        IN lists and inserts the rest in one statement, ignoring rows a
        concurrent writer created first.
        """
        wanted: dict[str, tuple[str, str]] = {}
        for sample in samples:
            canonical = dumps_json(sample.labels)
            key = (sample.name, canonical)
            if key in self._series_canon or key in new_canon:
                continue
            wanted.setdefault(series_key_hash(sample.name, canonical), key)
        if len(wanted) < 2:
            return  # _resolve_series handles one series as cheaply

        def read(hashes: list[str]) -> None:
            for i in range(0, len(hashes), _IN_BATCH):
                stmt = select(series.c.id, series.c.key_hash).where(
                    series.c.key_hash.in_(hashes[i : i + _IN_BATCH])
                )
                for sid, key_hash in conn.execute(stmt):
                    new_canon[wanted[key_hash]] = int(sid)

        read(list(wanted))
        missing = [h for h, key in wanted.items() if key not in new_canon]
        if not missing:
            return
        # Sorted, so concurrent writers take the unique-index locks in one order.
        missing.sort()
        conn.execute(
            _insert_ignoring_duplicates(conn),
            [{"name": wanted[h][0], "labels": wanted[h][1], "key_hash": h} for h in missing],
        )
        read(missing)

    def _resolve_series(
        self,
        conn: Connection,
        sample: Sample,
        new_fast: dict[SeriesKey, int],
        new_canon: dict[tuple[str, str], int],
    ) -> int:
        fast_key = _series_key(sample)
        sid = new_fast.get(fast_key)
        if sid is not None:
            return sid
        canonical = dumps_json(sample.labels)
        canon_key = (sample.name, canonical)
        sid = self._series_canon.get(canon_key) or new_canon.get(canon_key)
        if sid is None:
            key_hash = series_key_hash(sample.name, canonical)
            by_hash = select(series.c.id).where(series.c.key_hash == key_hash)
            found = conn.execute(by_hash).scalar()
            if found is None:
                # Another writer (process or server) may create the same series at
                # the same moment: insert-if-absent, then read whichever row won.
                conn.execute(
                    _insert_ignoring_duplicates(conn).values(
                        name=sample.name, labels=canonical, key_hash=key_hash
                    )
                )
                found = conn.execute(by_hash).scalar_one()
            sid = int(found)
            new_canon[canon_key] = sid
        new_fast[fast_key] = sid
        return sid

    def _encode_groups(
        self, sid_arr: I64Array, ts_arr: I64Array, val_arr: F64Array, pos: I64Array | None
    ) -> tuple[list[dict[str, Any]], list[tuple[int, int]]]:
        """One chunk row per (series, block); within a group samples keep arrival order."""
        block_arr = ts_arr - ts_arr % self.block_ms
        if pos is None:  # already in arrival order; lexsort is stable
            order = np.lexsort((block_arr, sid_arr))
        else:
            order = np.lexsort((pos, block_arr, sid_arr))
        sid_arr, ts_arr, val_arr, block_arr = (
            sid_arr[order],
            ts_arr[order],
            val_arr[order],
            block_arr[order],
        )
        change = (sid_arr[1:] != sid_arr[:-1]) | (block_arr[1:] != block_arr[:-1])
        bounds = np.concatenate(([0], np.flatnonzero(change) + 1, [sid_arr.size]))
        rows: list[dict[str, Any]] = []
        groups: list[tuple[int, int]] = []
        for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
            enc = codec.encode_chunk(ts_arr[lo:hi], val_arr[lo:hi])
            sid = int(sid_arr[lo])
            block = int(block_arr[lo])
            rows.append(
                {
                    "series_id": sid,
                    "block_ms": block,
                    "start_ms": enc.start_ms,
                    "end_ms": enc.end_ms,
                    "count": enc.count,
                    "encoding": codec.FORMAT_VERSION,
                    "data": enc.data,
                }
            )
            groups.append((sid, block))
        return rows, groups

    def _after_insert(
        self,
        conn: Connection,
        groups: list[tuple[int, int]],
        block_updates: dict[tuple[int, int], int],
        open_updates: dict[int, int],
    ) -> None:
        """Count the new chunks per block and compact full or closed blocks."""
        unknown = [g for g in groups if g not in self._block_chunks]
        counts = self._count_chunks(conn, unknown) if unknown else {}
        to_compact: set[tuple[int, int]] = set()
        for key in groups:
            known = self._block_chunks.get(key)
            # Unknown blocks were counted after the insert, so they include the new chunk.
            n = counts.get(key, 1) if known is None else known + 1
            block_updates[key] = n
            if n >= self.compact_after:
                to_compact.add(key)
            sid, block = key
            previous = open_updates.get(sid, self._open_block.get(sid))
            if previous is None or block > previous:
                if previous is not None:
                    closed = (sid, previous)
                    if block_updates.get(closed, self._block_chunks.get(closed, 2)) > 1:
                        to_compact.add(closed)
                open_updates[sid] = block
        for sid, block in sorted(to_compact):
            block_updates[(sid, block)] = self._compact_block(conn, sid, block)

    def _count_chunks(
        self, conn: Connection, keys: Sequence[tuple[int, int]]
    ) -> dict[tuple[int, int], int]:
        by_block: dict[int, list[int]] = {}
        for sid, block in keys:
            by_block.setdefault(block, []).append(sid)
        counts: dict[tuple[int, int], int] = {}
        for block, block_sids in by_block.items():
            for i in range(0, len(block_sids), _IN_BATCH):
                stmt = (
                    select(chunks.c.series_id, func.count())
                    .where(chunks.c.block_ms == block)
                    .where(chunks.c.series_id.in_(block_sids[i : i + _IN_BATCH]))
                    .group_by(chunks.c.series_id)
                )
                for sid, n in conn.execute(stmt):
                    counts[(int(sid), block)] = int(n)
        return counts

    def _compact_block(self, conn: Connection, sid: int, block: int) -> int:
        """Merge one block's chunks into one (last write wins); returns the chunk count."""
        rows = conn.execute(
            select(chunks.c.id, chunks.c.data)
            .where(chunks.c.series_id == sid)
            .where(chunks.c.block_ms == block)
            .order_by(chunks.c.id)
        ).all()
        if len(rows) <= 1:
            return len(rows)
        parts = [codec.decode_chunk(row.data) for row in rows]
        enc = codec.encode_chunk(
            np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        )
        ids = [row.id for row in rows]
        for i in range(0, len(ids), _IN_BATCH):
            conn.execute(delete(chunks).where(chunks.c.id.in_(ids[i : i + _IN_BATCH])))
        conn.execute(
            chunks.insert().values(
                series_id=sid,
                block_ms=block,
                start_ms=enc.start_ms,
                end_ms=enc.end_ms,
                count=enc.count,
                encoding=codec.FORMAT_VERSION,
                data=enc.data,
            )
        )
        return 1

    def compact(self) -> int:
        """Merge every block that holds more than one chunk; returns blocks merged."""
        with self._lock:
            with self._engine.connect() as conn:
                keys = [
                    (int(r.series_id), int(r.block_ms))
                    for r in conn.execute(
                        select(chunks.c.series_id, chunks.c.block_ms)
                        .group_by(chunks.c.series_id, chunks.c.block_ms)
                        .having(func.count() > 1)
                    )
                ]
            for i in range(0, len(keys), 100):  # short transactions: readers are not held up
                with self._write_tx() as conn:
                    for sid, block in keys[i : i + 100]:
                        self._compact_block(conn, sid, block)
            self._block_chunks.clear()
        return len(keys)

    # ------------------------------------------------------------------ reading

    def series(
        self, name: str | None = None, matchers: dict[str, str] | None = None
    ) -> list[SeriesInfo]:
        """Stored series, optionally of one metric and with labels equal to ``matchers``."""
        with self._engine.connect() as conn:
            return self._find_series(conn, name, matchers)

    @staticmethod
    def _find_series(
        conn: Connection, name: str | None, matchers: dict[str, str] | None
    ) -> list[SeriesInfo]:
        """``series()`` on a connection the caller holds (so it never asks for a second)."""
        stmt = select(series.c.id, series.c.name, series.c.labels).order_by(series.c.id)
        if name is not None:
            stmt = stmt.where(series.c.name == name)
        wanted = dict(matchers or {})
        found: list[SeriesInfo] = []
        for row in conn.execute(stmt):
            labels: dict[str, str] = json.loads(row.labels)
            if all(labels.get(k) == v for k, v in wanted.items()):
                found.append(SeriesInfo(int(row.id), row.name, labels))
        return found

    def label_values(self, label: str) -> list[str]:
        """Every value ``label`` takes in a stored series, sorted (the database reads the JSON)."""
        if not LABEL_NAME_RE.match(label):
            raise ValueError(f"label name {label!r} does not match {LABEL_NAME_RE.pattern}")
        with self._engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                value = func.json_extract_path_text(cast(series.c.labels, JSON), label)
            else:
                value = func.json_extract(series.c.labels, f'$."{label}"')
            stmt = select(value).where(value.is_not(None)).distinct()
            return sorted(str(v) for v in conn.execute(stmt).scalars())

    def list_metric_names(self) -> list[str]:
        """Every metric name that has a series, sorted."""
        with self._engine.connect() as conn:
            return list(
                conn.execute(select(series.c.name).distinct().order_by(series.c.name)).scalars()
            )

    def _read_points(
        self, conn: Connection, sids: list[int], start_ms: int, end_ms: int
    ) -> dict[int, tuple[I64Array, F64Array]]:
        parts: dict[int, list[tuple[I64Array, F64Array]]] = {}
        for i in range(0, len(sids), _IN_BATCH):
            stmt = (
                select(chunks.c.series_id, chunks.c.data)
                .where(chunks.c.series_id.in_(sids[i : i + _IN_BATCH]))
                .where(chunks.c.start_ms <= end_ms)
                .where(chunks.c.end_ms >= start_ms)
                .order_by(chunks.c.series_id, chunks.c.id)
            )
            for sid, data in conn.execute(stmt):
                parts.setdefault(int(sid), []).append(codec.decode_chunk(data))
        points: dict[int, tuple[I64Array, F64Array]] = {}
        for sid, chunk_parts in parts.items():
            if len(chunk_parts) == 1:
                ts, vals = chunk_parts[0]
            else:
                ts, vals = codec.sort_dedupe(
                    np.concatenate([p[0] for p in chunk_parts]),
                    np.concatenate([p[1] for p in chunk_parts]),
                )
            lo = int(np.searchsorted(ts, start_ms, side="left"))
            hi = int(np.searchsorted(ts, end_ms, side="right"))
            if hi > lo:
                points[sid] = (ts[lo:hi], vals[lo:hi])
        return points

    def query(
        self,
        name: str,
        matchers: dict[str, str] | None,
        start_ms: int,
        end_ms: int,
        *,
        step_ms: int | None = None,
        max_points: int | None = None,
    ) -> list[SeriesPoints]:
        """Points of every matching series in ``[start_ms, end_ms]`` (both inclusive).

        With ``step_ms`` or ``max_points`` the points are downsampled to min /
        max / avg / count per step; ``max_points`` widens the step so that at
        most that many steps cover the range.
        """
        if end_ms < start_ms:
            raise ValueError(f"query range is empty: end_ms {end_ms} < start_ms {start_ms}")
        if step_ms is not None and step_ms <= 0:
            raise ValueError(f"step_ms must be positive, got {step_ms}")
        if max_points is not None and max_points <= 0:
            raise ValueError(f"max_points must be positive, got {max_points}")
        step = step_ms
        if max_points is not None:
            fitted = math.ceil((end_ms - start_ms + 1) / max_points)
            step = max(step or 1, fitted)
        # One connection for both reads: a caller never holds one while asking for another.
        with self._engine.connect() as conn:
            infos = self._find_series(conn, name, matchers)
            if not infos:
                return []
            points = self._read_points(conn, [s.id for s in infos], start_ms, end_ms)
        result: list[SeriesPoints] = []
        for info in infos:
            if info.id not in points:
                continue
            ts, vals = points[info.id]
            if step is None:
                result.append(SeriesPoints(info.id, info.name, info.labels, ts, vals))
                continue
            step_ts, avg, mins, maxs, counts = downsample(ts, vals, start_ms, step)
            result.append(
                SeriesPoints(
                    info.id, info.name, info.labels, step_ts, avg, mins, maxs, counts, step
                )
            )
        return result

    def latest(self, name: str, matchers: dict[str, str] | None = None) -> list[LatestSample]:
        """The newest sample of every matching series."""
        found: list[LatestSample] = []
        # The series are looked up on the same connection: asking the pool for a
        # second one while holding this one deadlocks a busy server (every thread
        # holds one and waits for another until the pool times out).
        with self._engine.connect() as conn:
            infos = self._find_series(conn, name, matchers)
            newest: dict[int, bytes] = {}
            for i in range(0, len(infos), _IN_BATCH):
                # One statement per batch of series, not one per series: each
                # picks its chunk reaching furthest (the newest timestamp); of
                # equal reach, the later write wins.
                pick = (
                    select(chunks.c.data)
                    .where(chunks.c.series_id == series.c.id)
                    .order_by(chunks.c.end_ms.desc(), chunks.c.id.desc())
                    .limit(1)
                    .scalar_subquery()
                )
                stmt = select(series.c.id, pick).where(
                    series.c.id.in_([info.id for info in infos[i : i + _IN_BATCH]])
                )
                for sid, data in conn.execute(stmt):
                    if data is not None:
                        newest[int(sid)] = data
        for info in infos:
            data = newest.get(info.id)
            if data is None:
                continue
            ts, vals = codec.decode_chunk(data)
            if ts.size:
                found.append(
                    LatestSample(info.id, info.name, info.labels, int(ts[-1]), float(vals[-1]))
                )
        return found

    def sample_count(self) -> int:
        """Samples stored, counting each chunk's samples (uncompacted repeats included)."""
        with self._engine.connect() as conn:
            total = conn.execute(select(func.coalesce(func.sum(chunks.c.count), 0))).scalar()
        return int(total or 0)

    # ------------------------------------------------------------------ retention

    def _retain_chunks(
        self, conn: Connection, cutoff_ms: int, *, rolled_only: bool = False
    ) -> ChunkRetention:
        """Delete samples before the cutoff; ``rolled_only`` keeps those not rolled up yet."""
        limit: Any = literal(cutoff_ms, BigInteger)
        if rolled_only:
            # Per series: no further than its 1-minute tier's watermark (none: keep all).
            rolled = (
                select(rollup_state.c.rolled_ms)
                .where(rollup_state.c.series_id == chunks.c.series_id)
                .where(rollup_state.c.tier_ms == ROLLUP_SOURCE_TIER_MS)
                .scalar_subquery()
            )
            smaller = func.least if conn.dialect.name == "postgresql" else func.min
            limit = smaller(limit, func.coalesce(rolled, 0))
        deleted = conn.execute(delete(chunks).where(chunks.c.end_ms < limit)).rowcount
        boundary = conn.execute(
            select(chunks.c.id, chunks.c.data, limit.label("limit")).where(
                chunks.c.start_ms < limit
            )
        ).all()
        for row in boundary:
            ts, vals = codec.decode_chunk(row.data)
            keep = ts >= int(row.limit)
            enc = codec.encode_chunk(ts[keep], vals[keep])
            conn.execute(
                update(chunks)
                .where(chunks.c.id == row.id)
                .values(start_ms=enc.start_ms, end_ms=enc.end_ms, count=enc.count, data=enc.data)
            )
        orphan = ~exists().where(chunks.c.series_id == series.c.id) & ~exists().where(
            rollups.c.series_id == series.c.id
        )
        emptied = conn.execute(delete(series).where(orphan)).rowcount
        return ChunkRetention(int(deleted), len(boundary), int(emptied))
