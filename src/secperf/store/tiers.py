"""Downsampling tiers: 1-minute and 1-hour rollups of the samples, and queries over them.

Raw samples are kept for ``[store] retention``; before they go, they are
rolled up into 1-minute buckets, and those into 1-hour buckets, each holding
min, max, sum and count (so averages, sum / count, and rates stay exact), as
Netdata's tiers or Prometheus recording rules do. A tier is stored like the
raw samples: one row per series and aligned block (a day of minutes, 30 days
of hours) encoded by ``codec.encode_columns``.

Rolling up is incremental: ``rollup_state`` keeps, per series and tier, the
watermark below which every bucket is rolled up; a pass rolls only complete
buckets (ending ``GRACE_MS`` before now) above it. It is idempotent: a bucket
is always recomputed whole from its source and replaces what was there, so
running a pass twice, or resuming one that was killed, adds nothing twice.
Each short write transaction (a few dozen series) checks the watermarks it
planned from (compare-and-set), then reads the source and writes the buckets,
so a pass racing another process only skips what the other did.

Late samples: a write holding samples older than ``GRACE_MS`` (by the clock
read once it holds the write lock) marks ``dirty_ms`` on the series' 1-minute
state, unconditionally and creating the state row if there is none: a pass
that planned before the mark fails its compare-and-set, one that read its
source after the write has the sample. The next pass rolls the buckets from
the mark up to the watermark again from raw (and the hours above them from
minutes). Samples older than the raw retention are not rolled up again: their
raw neighbours are gone, so a bucket recomputed from them would lose data.

Queries (``query`` with a step) read the coarsest tier whose bucket is no
wider than the step, stitching the newest part (above the watermark) from raw
and older parts (where a finer tier was dropped) from the next coarser tier.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, delete, func, select, update

from secperf.store import codec
from secperf.store.lazy_numpy import np
from secperf.store.samples import SampleStoreMixin, SeriesInfo, SeriesPoints, downsample
from secperf.store.schema import chunks, rollup_state, rollups

if TYPE_CHECKING:
    import numpy.typing as npt

    from secperf.store.codec import F64Array, I64Array

log = logging.getLogger(__name__)

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
RAW = 0  # the raw samples' "tier" in stats and plans
TIERS: tuple[int, ...] = (MINUTE_MS, HOUR_MS)
TIER_NAMES = {RAW: "raw", MINUTE_MS: "1m", HOUR_MS: "1h"}
#: Width of the aligned block one rollup row covers, per tier.
TIER_BLOCK_MS = {MINUTE_MS: DAY_MS, HOUR_MS: 30 * DAY_MS}
#: A bucket is rolled up once it ended this long ago; samples written later
#: than this after their timestamp are late (and mark their bucket for a re-roll).
GRACE_MS = 2 * MINUTE_MS
#: Series per write transaction, and the most time one series advances per pass
#: step, so that no transaction holds the write lock for long.
SERIES_PER_TX = 25
SPAN_PER_STEP = {MINUTE_MS: DAY_MS, HOUR_MS: 30 * DAY_MS}
_IN_BATCH = 500


@dataclass(frozen=True, slots=True)
class Buckets:
    """Aggregates per bucket (sorted, unique starts): min, max, sum and count."""

    ts: I64Array
    min: F64Array
    max: F64Array
    sum: F64Array
    count: F64Array  # float64 so it shares the column codec; exact to 2**53

    @classmethod
    def empty(cls) -> Buckets:
        f = np.empty(0, np.float64)
        return cls(np.empty(0, np.int64), f, f, f, f)

    @property
    def size(self) -> int:
        return int(self.ts.size)

    def columns(self) -> list[F64Array]:
        return [self.min, self.max, self.sum, self.count]

    def select(self, mask: npt.NDArray[Any]) -> Buckets:
        return Buckets(
            self.ts[mask], self.min[mask], self.max[mask], self.sum[mask], self.count[mask]
        )

    def between(self, lo: int, hi: int) -> Buckets:
        """The buckets starting in ``[lo, hi)`` (sorted starts: views, no copies)."""
        a = int(np.searchsorted(self.ts, lo, side="left"))
        b = int(np.searchsorted(self.ts, hi, side="left"))
        if a == 0 and b == self.size:
            return self
        return Buckets(self.ts[a:b], self.min[a:b], self.max[a:b], self.sum[a:b], self.count[a:b])

    @classmethod
    def from_samples(cls, ts: I64Array, vals: F64Array) -> Buckets:
        """Each sample as a bucket of one (for stitching raw data into a tier's grid)."""
        return cls(ts, vals, vals, vals, np.ones(ts.size, np.float64))

    @classmethod
    def concat(cls, parts: list[Buckets]) -> Buckets:
        if not parts:
            return cls.empty()
        if len(parts) == 1:
            return parts[0]
        return cls(*(np.concatenate([getattr(p, n) for p in parts]) for n in _FIELDS))


_FIELDS = ("ts", "min", "max", "sum", "count")


def aggregate(
    ts: I64Array,
    mins: F64Array,
    maxs: F64Array,
    sums: F64Array,
    counts: F64Array,
    keys: I64Array,
    *,
    exact_sums: bool = True,
) -> Buckets:
    """Combine rows with equal ``keys`` (sorted) into one bucket each, keyed by ``keys``.

    Sums of short decimals (a CPU percentage, a byte count) are summed as
    scaled integers: exact, and they stay short decimals that encode compactly.
    """
    if ts.size == 0:
        return Buckets.empty()
    starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
    exact = codec.decimal_sums(sums, starts) if exact_sums else None
    with np.errstate(over="ignore", invalid="ignore"):
        return Buckets(
            keys[starts].astype(np.int64),
            np.minimum.reduceat(mins, starts),
            np.maximum.reduceat(maxs, starts),
            np.add.reduceat(sums, starts) if exact is None else exact,
            np.add.reduceat(counts, starts),
        )


def bucketize(ts: I64Array, vals: F64Array, width: int) -> Buckets:
    """Raw samples (sorted) into buckets of ``width`` ms aligned to the epoch."""
    keys = ts - ts % width
    return aggregate(ts, vals, vals, vals, np.ones(ts.size, np.float64), keys)


def coarsen(buckets: Buckets, width: int) -> Buckets:
    """Buckets (sorted) into wider buckets of ``width`` ms aligned to the epoch."""
    b = buckets
    return aggregate(b.ts, b.min, b.max, b.sum, b.count, b.ts - b.ts % width)


def encode_buckets(b: Buckets) -> bytes:
    return codec.encode_columns(b.ts, b.columns())


def decode_buckets(data: bytes | memoryview) -> Buckets:
    ts, cols = codec.decode_columns(data)
    if len(cols) != 4:
        raise codec.ChunkDecodeError(f"rollup row has {len(cols)} columns, expected 4")
    return Buckets(ts, cols[0], cols[1], cols[2], cols[3])


def merge_buckets(old: Buckets, new: Buckets) -> Buckets:
    """``old`` with every bucket of ``new`` replacing (or adding) the one at its start."""
    if old.size == 0:
        return new
    kept = old.select(~np.isin(old.ts, new.ts))
    both = Buckets.concat([kept, new])
    order = np.argsort(both.ts, kind="stable")
    return both.select(order)


@dataclass(frozen=True, slots=True)
class TierRetention:
    """How long each tier keeps its data, in ms (raw samples, 1-minute, 1-hour)."""

    raw_ms: int
    minute_ms: int
    hour_ms: int
    #: How long records (scans, alerts, gate runs ...) are kept; None or 0: forever.
    records_ms: int | None = None

    def __post_init__(self) -> None:
        for name in ("raw_ms", "minute_ms", "hour_ms"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not self.raw_ms <= self.minute_ms <= self.hour_ms:
            raise ValueError(
                "retention must not grow shorter with coarser tiers: raw "
                f"{self.raw_ms} ms, 1m {self.minute_ms} ms, 1h {self.hour_ms} ms"
            )

    def of(self, tier: int) -> int:
        return {RAW: self.raw_ms, MINUTE_MS: self.minute_ms, HOUR_MS: self.hour_ms}[tier]


@dataclass(frozen=True, slots=True)
class RollupResult:
    """What one rollup pass did: buckets written per tier, series re-rolled, skipped races."""

    buckets: dict[int, int] = field(default_factory=dict)
    series: dict[int, int] = field(default_factory=dict)
    rerolled: int = 0
    conflicts: int = 0
    transactions: int = 0

    @property
    def total_buckets(self) -> int:
        return sum(self.buckets.values())


@dataclass(frozen=True, slots=True)
class TierRetentionResult:
    """Rollup rows deleted and trimmed per tier."""

    deleted: dict[int, int]
    trimmed: dict[int, int]


@dataclass(frozen=True, slots=True)
class TierStats:
    """One tier of the store: series, points (samples or buckets), bytes, time span."""

    tier: str
    width_ms: int
    series: int
    rows: int
    points: int
    bytes: int
    oldest_ms: int | None
    newest_ms: int | None


@dataclass(slots=True)
class _Plan:
    sid: int
    lo: int  # first bucket start to (re)compute
    hi: int  # exclusive: buckets starting before it
    rolled: int  # the watermark seen (compare-and-set)
    dirty: int | None  # the dirty mark seen (cleared when unchanged)
    new_rolled: int


def _floor(ts: int, width: int) -> int:
    return ts - ts % width


def _dialect_insert(conn: Connection) -> Any:
    """The engine's own INSERT, which has ``on_conflict_do_*`` (SQLite and PostgreSQL)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


class TierStoreMixin(SampleStoreMixin):
    """Rollups, their retention and tier-aware queries; ``Store`` mixes it in."""

    # ------------------------------------------------------------------ rolling up

    def rollup(
        self,
        now_ms: int,
        *,
        retention: TierRetention | None = None,
        max_transactions: int | None = None,
    ) -> RollupResult:
        """Roll complete buckets up into the 1-minute, then the 1-hour tier.

        Runs short write transactions until every series is up to date (or
        ``max_transactions`` were used: the next pass goes on from there).
        ``retention`` keeps re-rolls of late samples above the raw (and
        1-minute) retention, where the source data is whole.
        """
        buckets: dict[int, int] = dict.fromkeys(TIERS, 0)
        series_done: dict[int, set[int]] = {t: set() for t in TIERS}
        counters = {"rerolled": 0, "conflicts": 0, "tx": 0}
        for tier in TIERS:
            floor_ms = None
            if retention is not None:
                source = RAW if tier == MINUTE_MS else MINUTE_MS
                floor_ms = _floor(now_ms - retention.of(source), HOUR_MS) + HOUR_MS
            while max_transactions is None or counters["tx"] < max_transactions:
                plans = self._plan_rollup(tier, now_ms, floor_ms)
                if not plans:
                    break
                progressed = False
                for i in range(0, len(plans), SERIES_PER_TX):
                    if max_transactions is not None and counters["tx"] >= max_transactions:
                        break
                    part = plans[i : i + SERIES_PER_TX]
                    written, done, conflicts = self._roll_part(tier, part)
                    counters["tx"] += 1
                    counters["conflicts"] += conflicts
                    counters["rerolled"] += sum(
                        1 for p in part if p.dirty is not None and p.dirty < p.rolled
                    )
                    buckets[tier] += written
                    series_done[tier].update(done)
                    progressed = progressed or bool(done)
                if not progressed:
                    break  # every plan lost a race: the other process carries on
        return RollupResult(
            buckets,
            {t: len(s) for t, s in series_done.items()},
            counters["rerolled"],
            counters["conflicts"],
            counters["tx"],
        )

    def _plan_rollup(self, tier: int, now_ms: int, floor_ms: int | None) -> list[_Plan]:
        """Per series, the next span of buckets to roll up into ``tier``."""
        span = SPAN_PER_STEP[tier]
        with self._engine.connect() as conn:
            states = {
                int(r.series_id): (int(r.rolled_ms), r.dirty_ms)
                for r in conn.execute(
                    select(
                        rollup_state.c.series_id, rollup_state.c.rolled_ms, rollup_state.c.dirty_ms
                    ).where(rollup_state.c.tier_ms == tier)
                )
            }
            if tier == MINUTE_MS:
                horizon_all = _floor(now_ms - GRACE_MS, MINUTE_MS)
                extents = {
                    int(r[0]): (int(r[1]), int(r[2]))
                    for r in conn.execute(
                        select(
                            chunks.c.series_id,
                            func.min(chunks.c.start_ms),
                            func.max(chunks.c.end_ms),
                        ).group_by(chunks.c.series_id)
                    )
                }
                horizons = dict.fromkeys(extents, horizon_all)
            else:
                extents = {
                    int(r[0]): (int(r[1]), int(r[2]))
                    for r in conn.execute(
                        select(
                            rollups.c.series_id,
                            func.min(rollups.c.start_ms),
                            func.max(rollups.c.end_ms),
                        )
                        .where(rollups.c.tier_ms == MINUTE_MS)
                        .group_by(rollups.c.series_id)
                    )
                }
                minute = {
                    int(r.series_id): int(r.rolled_ms)
                    for r in conn.execute(
                        select(rollup_state.c.series_id, rollup_state.c.rolled_ms).where(
                            rollup_state.c.tier_ms == MINUTE_MS
                        )
                    )
                }
                horizons = {sid: _floor(minute.get(sid, 0), HOUR_MS) for sid in extents}
        plans: list[_Plan] = []
        for sid, (oldest, newest) in extents.items():
            rolled, dirty = states.get(sid, (0, None))
            horizon = horizons[sid]
            if dirty is not None and dirty < rolled:
                lo = _floor(max(int(dirty), floor_ms or 0), tier)
                hi = min(rolled, lo + span)
                if lo < hi:
                    plans.append(_Plan(sid, lo, hi, rolled, dirty, rolled))
                    continue
                plans.append(_Plan(sid, rolled, rolled, rolled, dirty, rolled))  # clear only
                continue
            lo = rolled if rolled > 0 else _floor(oldest, tier)
            hi = min(horizon, lo + span)
            if lo < hi and newest >= lo:
                plans.append(_Plan(sid, lo, hi, rolled, dirty, hi))
            elif dirty is not None:
                plans.append(_Plan(sid, rolled, rolled, rolled, dirty, rolled))
        return plans

    def _read_sources(self, conn: Connection, tier: int, part: list[_Plan]) -> dict[int, Buckets]:
        """The new buckets of each planned series, computed from the finer source."""
        lo = min(p.lo for p in part)
        hi = max(p.hi for p in part)
        sids = [p.sid for p in part if p.hi > p.lo]
        out: dict[int, Buckets] = {}
        if not sids or hi <= lo:
            return out
        if tier == MINUTE_MS:
            points = self._read_points(conn, sids, lo, hi - 1)
            source = {sid: bucketize(ts, vals, tier) for sid, (ts, vals) in points.items()}
        else:
            source = {
                sid: coarsen(b, tier)
                for sid, b in self._read_tier(conn, MINUTE_MS, sids, lo, hi - 1).items()
            }
        for p in part:
            b = source.get(p.sid)
            if b is None:
                continue
            out[p.sid] = b.select((b.ts >= p.lo) & (b.ts < p.hi))
        return out

    def _roll_part(self, tier: int, part: list[_Plan]) -> tuple[int, list[int], int]:
        """One short write transaction: merge new buckets, move watermarks (compare-and-set)."""
        written = 0
        done: list[int] = []
        conflicts = 0
        with self._write_tx() as conn:
            current = self._lock_states(conn, tier, [p.sid for p in part])
            valid: list[_Plan] = []
            for p in part:
                seen = current.get(p.sid)
                expected = (p.rolled, p.dirty) if (p.rolled or p.dirty is not None) else None
                if seen != expected and not (expected is None and seen == (0, None)):
                    conflicts += 1  # another process rolled it (or a late sample came) meanwhile
                    continue
                if seen is None and not self._claim_state(conn, tier, p.sid):
                    conflicts += 1  # another process created the state row meanwhile
                    continue
                valid.append(p)
            # Read inside the write transaction, after the states were checked: a late
            # sample committed before is in the source, one committed after marks the
            # state again (``_mark_late``), so the next pass rolls its bucket.
            computed = self._read_sources(conn, tier, valid) if valid else {}
            for p in valid:
                new = computed.get(p.sid, Buckets.empty())
                written += self._store_buckets(conn, tier, p.sid, new, p.lo, p.hi)
                self._set_state(conn, tier, p)
                if tier == MINUTE_MS and p.dirty is not None and p.hi > p.lo:
                    # The hours over re-rolled minutes are rolled again too.
                    self._mark_late(conn, HOUR_MS, {p.sid: _floor(p.lo, HOUR_MS)})
                done.append(p.sid)
        return written, done, conflicts

    @staticmethod
    def _lock_states(
        conn: Connection, tier: int, sids: list[int]
    ) -> dict[int, tuple[int, int | None]]:
        stmt = select(
            rollup_state.c.series_id, rollup_state.c.rolled_ms, rollup_state.c.dirty_ms
        ).where(rollup_state.c.tier_ms == tier, rollup_state.c.series_id.in_(sids))
        if conn.dialect.name == "postgresql":
            # Late writers wait for this transaction; rows in one order, as they take them.
            stmt = stmt.order_by(rollup_state.c.series_id).with_for_update()
        return {
            int(r.series_id): (int(r.rolled_ms), None if r.dirty_ms is None else int(r.dirty_ms))
            for r in conn.execute(stmt)
        }

    @staticmethod
    def _claim_state(conn: Connection, tier: int, sid: int) -> bool:
        """Create a series' state row before its first rollup; False when one exists already.

        ``FOR UPDATE`` locks no row that does not exist: two processes rolling
        a new series both find none. The insert that comes second waits for
        the first and then inserts nothing, which counts as a lost race; and a
        late sample's mark waits for this row instead of missing it.
        """
        stmt = (
            _dialect_insert(conn)(rollup_state)
            .values(series_id=sid, tier_ms=tier, rolled_ms=0, dirty_ms=None)
            .on_conflict_do_nothing(
                index_elements=[rollup_state.c.series_id, rollup_state.c.tier_ms]
            )
        )
        # RETURNING, since psycopg reports no row count for an INSERT ... ON CONFLICT.
        return conn.execute(stmt.returning(rollup_state.c.series_id)).first() is not None

    @staticmethod
    def _set_state(conn: Connection, tier: int, p: _Plan) -> None:
        dirty: int | None = None
        if p.dirty is not None and p.hi < p.rolled:
            dirty = p.hi  # a long re-roll goes on from here next step
        conn.execute(
            update(rollup_state)
            .where(rollup_state.c.series_id == p.sid, rollup_state.c.tier_ms == tier)
            .values(rolled_ms=p.new_rolled, dirty_ms=dirty)
        )

    @staticmethod
    def _mark_late(conn: Connection, tier: int, lows: dict[int, int]) -> None:
        """Mark buckets from ``lows[sid]`` on as needing a re-roll, whatever the watermark.

        Unconditional (and inserting a state row where none is yet), so that a
        pass that read its source before this write fails its compare-and-set
        and the next pass rolls the span again.
        """
        if not lows:
            return
        insert = _dialect_insert(conn)
        for sid, low in sorted(lows.items()):
            stmt = insert(rollup_state).values(
                series_id=sid, tier_ms=tier, rolled_ms=0, dirty_ms=low
            )
            stmt = stmt.on_conflict_do_update(
                index_elements=[rollup_state.c.series_id, rollup_state.c.tier_ms],
                set_={
                    "dirty_ms": func.min(func.coalesce(rollup_state.c.dirty_ms, low), low)
                    if conn.dialect.name == "sqlite"
                    else func.least(func.coalesce(rollup_state.c.dirty_ms, low), low)
                },
            )
            conn.execute(stmt)

    def _store_buckets(
        self, conn: Connection, tier: int, sid: int, new: Buckets, lo: int, hi: int
    ) -> int:
        """Replace the buckets of ``[lo, hi)`` in their block rows by ``new``."""
        if hi <= lo:
            return 0
        width = TIER_BLOCK_MS[tier]
        blocks = range(_floor(lo, width), hi, width)
        new_blocks = new.ts - new.ts % width
        for block in blocks:
            row = conn.execute(
                select(rollups.c.data).where(
                    rollups.c.series_id == sid,
                    rollups.c.tier_ms == tier,
                    rollups.c.block_ms == block,
                )
            ).scalar()
            fresh = new.select(new_blocks == block)
            if row is None and fresh.size == 0:
                continue
            old = decode_buckets(row) if row is not None else Buckets.empty()
            # Buckets of the span not in ``new`` (their samples are gone) go as well.
            old = old.select((old.ts < lo) | (old.ts >= hi))
            merged = merge_buckets(old, fresh)
            if row is not None:
                where = and_(
                    rollups.c.series_id == sid,
                    rollups.c.tier_ms == tier,
                    rollups.c.block_ms == block,
                )
                if merged.size == 0:
                    conn.execute(delete(rollups).where(where))
                    continue
                conn.execute(
                    update(rollups)
                    .where(where)
                    .values(
                        start_ms=int(merged.ts[0]),
                        end_ms=int(merged.ts[-1]),
                        count=merged.size,
                        data=encode_buckets(merged),
                    )
                )
            else:
                conn.execute(
                    rollups.insert().values(
                        series_id=sid,
                        tier_ms=tier,
                        block_ms=block,
                        start_ms=int(merged.ts[0]),
                        end_ms=int(merged.ts[-1]),
                        count=merged.size,
                        data=encode_buckets(merged),
                    )
                )
        return new.size

    # ------------------------------------------------------------------ late samples

    def _after_samples_written(
        self, conn: Connection, sids: I64Array, ts: I64Array, now: int
    ) -> None:
        """Mark the 1-minute buckets of late samples for a re-roll (same transaction)."""
        late = ts < now - GRACE_MS
        if not bool(late.any()):
            return
        lows: dict[int, int] = {}
        for sid, t in zip(sids[late].tolist(), ts[late].tolist(), strict=True):
            if sid not in lows or t < lows[sid]:
                lows[sid] = t
        marks = {s: _floor(t, MINUTE_MS) for s, t in sorted(lows.items())}
        self._mark_late(conn, MINUTE_MS, marks)

    # ------------------------------------------------------------------ retention

    def _retain_tiers(
        self, conn: Connection, now_ms: int, retention: TierRetention
    ) -> TierRetentionResult:
        deleted: dict[int, int] = {}
        trimmed: dict[int, int] = {}
        # Minutes go only where the hours have them: below the 1-hour watermark (and
        # below its dirty mark, whose hours are still to be rolled again from minutes).
        hour_state = rollup_state.alias("hour_state")
        hour_done = (
            select(
                func.coalesce(
                    func.min(
                        func.coalesce(hour_state.c.dirty_ms, hour_state.c.rolled_ms),
                        hour_state.c.rolled_ms,
                    )
                    if conn.dialect.name == "sqlite"
                    else func.least(
                        func.coalesce(hour_state.c.dirty_ms, hour_state.c.rolled_ms),
                        hour_state.c.rolled_ms,
                    ),
                    0,
                )
            )
            .where(hour_state.c.series_id == rollups.c.series_id, hour_state.c.tier_ms == HOUR_MS)
            .scalar_subquery()
        )
        hours = {
            int(r.series_id): min(int(r.rolled_ms), int(r.dirty_ms or r.rolled_ms))
            for r in conn.execute(
                select(
                    rollup_state.c.series_id, rollup_state.c.rolled_ms, rollup_state.c.dirty_ms
                ).where(rollup_state.c.tier_ms == HOUR_MS)
            )
        }
        for tier in TIERS:
            cutoff = _floor(now_ms - retention.of(tier), HOUR_MS)
            base = and_(rollups.c.tier_ms == tier)
            gone = rollups.c.end_ms < cutoff
            if tier == MINUTE_MS:
                gone = and_(gone, rollups.c.end_ms < func.coalesce(hour_done, 0))
            deleted[tier] = int(conn.execute(delete(rollups).where(base, gone)).rowcount)
            boundary = conn.execute(
                select(rollups.c.series_id, rollups.c.block_ms, rollups.c.data).where(
                    base, rollups.c.start_ms < cutoff
                )
            ).all()
            n_trimmed = 0
            for row in boundary:
                bound = cutoff
                if tier == MINUTE_MS:
                    bound = min(cutoff, hours.get(int(row.series_id), 0))
                b = decode_buckets(row.data)
                if int(b.ts[0]) >= bound:
                    continue
                n_trimmed += 1
                b = b.select(b.ts >= bound)
                where = and_(
                    base, rollups.c.series_id == row.series_id, rollups.c.block_ms == row.block_ms
                )
                conn.execute(
                    update(rollups)
                    .where(where)
                    .values(
                        start_ms=int(b.ts[0]),
                        end_ms=int(b.ts[-1]),
                        count=b.size,
                        data=encode_buckets(b),
                    )
                )
            trimmed[tier] = n_trimmed
        return TierRetentionResult(deleted, trimmed)

    # ------------------------------------------------------------------ reading

    def _read_tier(
        self, conn: Connection, tier: int, sids: list[int], lo: int, hi: int
    ) -> dict[int, Buckets]:
        """Buckets of ``tier`` starting in ``[lo, hi]`` per series."""
        parts: dict[int, list[Buckets]] = {}
        for i in range(0, len(sids), _IN_BATCH):
            stmt = (
                select(rollups.c.series_id, rollups.c.data)
                .where(rollups.c.tier_ms == tier)
                .where(rollups.c.series_id.in_(sids[i : i + _IN_BATCH]))
                .where(rollups.c.start_ms <= hi)
                .where(rollups.c.end_ms >= lo)
                .order_by(rollups.c.series_id, rollups.c.block_ms)
            )
            for sid, data in conn.execute(stmt):
                parts.setdefault(int(sid), []).append(decode_buckets(data))
        out: dict[int, Buckets] = {}
        for sid, found in parts.items():
            b = Buckets.concat(found).between(lo, hi + 1)  # rows come in block order
            if b.size:
                out[sid] = b
        return out

    @staticmethod
    def _oldest(conn: Connection, tier: int, sids: list[int]) -> dict[int, int]:
        """The oldest data time per series: first raw sample, or first bucket of a tier."""
        out: dict[int, int] = {}
        for i in range(0, len(sids), _IN_BATCH):
            part = sids[i : i + _IN_BATCH]
            if tier == RAW:
                stmt = (
                    select(chunks.c.series_id, func.min(chunks.c.start_ms))
                    .where(chunks.c.series_id.in_(part))
                    .group_by(chunks.c.series_id)
                )
            else:
                stmt = (
                    select(rollups.c.series_id, func.min(rollups.c.start_ms))
                    .where(rollups.c.tier_ms == tier, rollups.c.series_id.in_(part))
                    .group_by(rollups.c.series_id)
                )
            out.update({int(s): int(m) for s, m in conn.execute(stmt)})
        return out

    @staticmethod
    def _rolled(conn: Connection, tier: int, sids: list[int]) -> dict[int, int]:
        out: dict[int, int] = {}
        for i in range(0, len(sids), _IN_BATCH):
            stmt = select(rollup_state.c.series_id, rollup_state.c.rolled_ms).where(
                rollup_state.c.tier_ms == tier,
                rollup_state.c.series_id.in_(sids[i : i + _IN_BATCH]),
            )
            out.update({int(s): int(r) for s, r in conn.execute(stmt)})
        return out

    def query(
        self,
        name: str,
        matchers: dict[str, str] | None,
        start_ms: int,
        end_ms: int,
        *,
        step_ms: int | None = None,
        max_points: int | None = None,
        tiers: bool = True,
    ) -> list[SeriesPoints]:
        """Points of every matching series in ``[start_ms, end_ms]`` (both inclusive).

        Without a step: the raw samples still kept. With ``step_ms`` or
        ``max_points``: min / max / avg / count per step, read from the
        coarsest tier whose bucket is no wider than the step (raw below one
        minute), with the newest part from raw and parts older than a tier's
        retention from the next coarser tier. When a tier is read the step is
        rounded up to whole buckets (``step_ms`` of the result says which), and
        the steps lie on the buckets' grid: the first starts at the start of
        the bucket holding ``start_ms``, the last takes in the whole bucket
        holding ``end_ms`` (the timestamps of the result say where each starts).
        ``tiers=False`` reads raw samples only.
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
        if not tiers or step is None:
            return super().query(name, matchers, start_ms, end_ms, step_ms=step)
        preferred = RAW
        for tier in TIERS:
            if tier <= step:
                preferred = tier
        # A tier's buckets are whole: the range is widened to the buckets holding its
        # ends, and the steps start on bucket edges, so each step holds exactly the
        # buckets (and raw samples) of its own span.
        edge = preferred if preferred != RAW else 1
        lo, hi = _floor(start_ms, edge), _floor(end_ms, edge) + edge - 1
        with self._engine.connect() as conn:
            infos = self._find_series(conn, name, matchers)
            if not infos:
                return []
            sids = [s.id for s in infos]
            plan = self._stitch(conn, preferred, sids, lo, hi)
        if plan is None:  # no tier data in reach: raw as before, same step
            return super().query(name, matchers, start_ms, end_ms, step_ms=step)
        width = max((w for w in plan.widths if w != RAW), default=1)
        eff_step = step if preferred == RAW else math.ceil(step / width) * width
        anchor = _floor(lo, width)
        return [
            points
            for info in infos
            if (points := _reduce(info, plan.data.get(info.id, []), anchor, eff_step)) is not None
        ]

    def _stitch(
        self, conn: Connection, preferred: int, sids: list[int], start_ms: int, end_ms: int
    ) -> _Stitched | None:
        """Segments per series from raw and the tiers; None when no tier data is involved."""
        chain = [RAW, *TIERS]
        data: dict[int, list[tuple[int, Buckets]]] = {sid: [] for sid in sids}
        upper = dict.fromkeys(sids, end_ms + 1)  # exclusive: what finer sources cover
        used: set[int] = set()
        if preferred != RAW:
            rolled = self._rolled(conn, preferred, sids)
            if not rolled:
                return None
            raw_lo = {sid: max(start_ms, rolled.get(sid, 0)) for sid in sids}
            points = self._read_points(conn, sids, min(raw_lo.values()), end_ms)
            for sid, (ts, vals) in points.items():
                keep = ts >= raw_lo[sid]
                if bool(keep.any()):
                    data[sid].append((RAW, Buckets.from_samples(ts[keep], vals[keep])))
            for sid in sids:
                upper[sid] = min(upper[sid], max(start_ms, rolled.get(sid, 0)))
        for source in chain[chain.index(preferred) :]:
            active = [sid for sid in sids if upper[sid] > start_ms]
            if not active:
                break
            oldest = self._oldest(conn, source, active)
            if source == RAW:
                points = self._read_points(conn, active, start_ms, end_ms)
                for sid, (ts, vals) in points.items():
                    data[sid].append((RAW, Buckets.from_samples(ts, vals)))
            else:
                lo = _floor(start_ms, source)
                found = self._read_tier(conn, source, active, lo, max(upper.values()) - 1)
                for sid, b in found.items():
                    # Below what a finer source covers: the preferred tier's buckets
                    # start before it, a coarser tier's also end before it (whole ones).
                    limit = upper[sid] if source == preferred else upper[sid] - source + 1
                    b = b.between(lo, limit)
                    if b.size:
                        data[sid].append((source, b))
                        used.add(source)
            for sid in active:
                if sid in oldest:
                    upper[sid] = min(upper[sid], oldest[sid])
        return _Stitched({sid: parts for sid, parts in data.items() if parts}, sorted(used))

    # ------------------------------------------------------------------ stats

    def tier_stats(self) -> list[TierStats]:
        """Per tier (raw, 1m, 1h): series, rows, points, stored bytes, oldest and newest."""
        out: list[TierStats] = []
        with self._engine.connect() as conn:
            raw = conn.execute(
                select(
                    func.count(func.distinct(chunks.c.series_id)),
                    func.count(),
                    func.coalesce(func.sum(chunks.c.count), 0),
                    func.coalesce(func.sum(func.length(chunks.c.data)), 0),
                    func.min(chunks.c.start_ms),
                    func.max(chunks.c.end_ms),
                )
            ).one()
            out.append(_stats(RAW, raw))
            for tier in TIERS:
                row = conn.execute(
                    select(
                        func.count(func.distinct(rollups.c.series_id)),
                        func.count(),
                        func.coalesce(func.sum(rollups.c.count), 0),
                        func.coalesce(func.sum(func.length(rollups.c.data)), 0),
                        func.min(rollups.c.start_ms),
                        func.max(rollups.c.end_ms),
                    ).where(rollups.c.tier_ms == tier)
                ).one()
                out.append(_stats(tier, row))
        return out


@dataclass(frozen=True, slots=True)
class _Stitched:
    data: dict[int, list[tuple[int, Buckets]]]
    widths: list[int]


def _stats(tier: int, row: Any) -> TierStats:
    nseries, rows, points, size, oldest, newest = tuple(row)
    return TierStats(
        TIER_NAMES[tier],
        tier,
        int(nseries or 0),
        int(rows or 0),
        int(points or 0),
        int(size or 0),
        None if oldest is None else int(oldest),
        None if newest is None else int(newest),
    )


def _reduce(
    info: SeriesInfo, parts: list[tuple[int, Buckets]], start_ms: int, step: int
) -> SeriesPoints | None:
    """Stitched segments of one series as min / max / avg / count per step."""
    if not parts:
        return None
    if len(parts) == 1 and parts[0][0] == RAW:
        b = parts[0][1]
        step_ts, avg, mins, maxs, counts = downsample(b.ts, b.sum, start_ms, step)
        return SeriesPoints(info.id, info.name, info.labels, step_ts, avg, mins, maxs, counts, step)
    # Segments were found newest first, each sorted and disjoint: reversed, in time order.
    b = Buckets.concat([p for _, p in reversed(parts)])
    if b.size > 1 and not bool(np.all(b.ts[1:] > b.ts[:-1])):
        b = b.select(np.argsort(b.ts, kind="stable"))
    keys = start_ms + np.maximum((b.ts - start_ms) // step, 0) * step
    agg = aggregate(b.ts, b.min, b.max, b.sum, b.count, keys.astype(np.int64), exact_sums=False)
    with np.errstate(over="ignore", invalid="ignore"):
        avg = agg.sum / agg.count
    return SeriesPoints(
        info.id,
        info.name,
        info.labels,
        agg.ts,
        avg,
        agg.min,
        agg.max,
        agg.count.astype(np.int64),
        step,
    )
