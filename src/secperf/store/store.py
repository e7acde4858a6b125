"""``Store``: the one persistence API for samples and records, over SQLAlchemy Core.

``Store.open`` takes a filesystem path (SQLite, created with its parent
directories) or an SQLAlchemy URL (``sqlite:///...``, ``postgresql+psycopg://...``),
applies the missing schema migrations, closes the scans whose process died
(``close_abandoned_scans``) and returns a ready store. Methods are synchronous
and thread-safe; writes are serialised by one lock within a process, and by
the database's write lock across processes (``engine.write_engine``).

A damaged SQLite file is ``StoreCorruptError`` and a newer schema
``SchemaVersionError``, both naming the store; neither is ever replaced.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from sqlalchemy import Engine
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from secperf.store.alert_records import AlertRecordMixin
from secperf.store.analysis_records import AnalysisRecordMixin
from secperf.store.baseline_records import BaselineRecordMixin
from secperf.store.benchmark_records import BenchmarkRecordMixin
from secperf.store.engine import (
    StoreUnavailableError,
    create_store_engine,
    shown_url,
    write_engine,
)
from secperf.store.finding_records import FindingRecordMixin
from secperf.store.gate_records import GateRecordMixin
from secperf.store.migrations import migrate
from secperf.store.record_retention import RecordRetention, retain_records
from secperf.store.samples import (
    BLOCK_MS,
    COMPACT_AFTER,
    ChunkRetention,
)
from secperf.store.scan_records import ScanRecordMixin
from secperf.store.tiers import HOUR_MS, TierRetention, TierRetentionResult, TierStoreMixin
from secperf.store.triage_records import TriageRecordMixin

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetentionResult:
    """What one retention pass removed."""

    cutoff_ms: int
    chunks: ChunkRetention
    records: RecordRetention
    tiers: TierRetentionResult | None = None


class Store(
    TierStoreMixin,
    ScanRecordMixin,
    FindingRecordMixin,
    TriageRecordMixin,
    BaselineRecordMixin,
    AlertRecordMixin,
    GateRecordMixin,
    BenchmarkRecordMixin,
    AnalysisRecordMixin,
):
    """Series and compressed samples plus scans, findings, triage, alerts and more.

    Each kind of record is one mixin in its own module (``scan_records``,
    ``finding_records``, ``triage_records`` ...); this class owns the engine,
    the write lock, opening and retention.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        block_ms: int = BLOCK_MS,
        compact_after: int = COMPACT_AFTER,
    ) -> None:
        self._engine = engine
        self._writer = write_engine(engine)
        self._lock = threading.RLock()
        self._init_samples(block_ms=block_ms, compact_after=compact_after)

    @classmethod
    def open(
        cls,
        target: str | Path | URL,
        *,
        block_ms: int = BLOCK_MS,
        compact_after: int = COMPACT_AFTER,
    ) -> Store:
        """Open (creating when needed) and migrate the store at ``target``.

        Running scans whose owner is gone are closed as abandoned on the way.
        Raises a ``StoreError`` naming the store when it cannot be used:
        ``StoreTargetError`` (bad path or URL), ``StoreCorruptError`` (damaged
        file), ``SchemaVersionError`` (newer schema) or ``StoreUnavailableError``.
        """
        engine = create_store_engine(target)
        where = f"store {describe_target(engine.url)}"
        try:
            migrate(engine, where=where)
            store = cls(engine, block_ms=block_ms, compact_after=compact_after)
            closed = store._close_abandoned_on_open(where)
        except SQLAlchemyError as exc:
            engine.dispose()
            raise StoreUnavailableError(f"cannot open {where}: {_cause(exc)}") from exc
        except BaseException:
            engine.dispose()
            raise
        if closed:
            log.warning(
                "%s: %d scan(s) whose process died were closed as abandoned: %s",
                where,
                len(closed),
                ", ".join(closed[:5]) + (" ..." if len(closed) > 5 else ""),
            )
        return store

    def _close_abandoned_on_open(self, where: str) -> list[str]:
        """The sweep of ``open``: a lock or a lost connection only postpones it."""
        try:
            return self.close_abandoned_scans()
        except OperationalError as exc:
            log.warning("%s: abandoned scans not closed this time: %s", where, _cause(exc))
            return []

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for tools and tests; use the methods otherwise)."""
        return self._engine

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._engine.dialect.name

    def apply_retention(self, now_ms: int, max_age_ms: int) -> RetentionResult:
        """Delete data older than ``now_ms - max_age_ms`` in one transaction.

        Whole chunks before the cutoff go, the chunk crossing it is trimmed and
        emptied series are removed; old scans (except each target's newest) with
        their findings, alert transitions, resolved alerts, ended silences and
        gate runs go too. Triage decisions, baselines and benchmark history stay.
        """
        if max_age_ms <= 0:
            raise ValueError(f"max_age_ms must be positive, got {max_age_ms}")
        cutoff = now_ms - max_age_ms
        with self._lock:
            try:
                with self._write_tx() as conn:
                    chunk_result = self._retain_chunks(conn, cutoff)
                    record_result = retain_records(conn, cutoff)
            finally:
                # Series ids may be gone and block counts changed: reload lazily.
                self._forget_sample_caches()
        return RetentionResult(cutoff, chunk_result, record_result)

    def apply_tiered_retention(self, now_ms: int, retention: TierRetention) -> RetentionResult:
        """Retention with downsampling tiers, in one short transaction.

        Raw samples older than ``retention.raw_ms`` go (at an hour boundary, so
        the tiers take over on whole buckets), but only once rolled up into the
        1-minute tier; 1-minute and 1-hour buckets go after their own
        retention; records go as in ``apply_retention`` after ``records_ms``.
        Run ``rollup`` first: samples not rolled up yet are kept.
        """
        raw_cutoff = now_ms - retention.raw_ms
        raw_cutoff -= raw_cutoff % HOUR_MS
        with self._lock:
            try:
                with self._write_tx() as conn:
                    chunk_result = self._retain_chunks(conn, raw_cutoff, rolled_only=True)
                    tier_result = self._retain_tiers(conn, now_ms, retention)
                    record_result = (
                        retain_records(conn, now_ms - retention.records_ms)
                        if retention.records_ms
                        else RecordRetention()
                    )
            finally:
                self._forget_sample_caches()
        return RetentionResult(raw_cutoff, chunk_result, record_result, tier_result)

    def file_size(self) -> int | None:
        """Bytes of an SQLite store's files (database, WAL), free pages included; None otherwise."""
        database = self._engine.url.database
        if self.dialect != "sqlite" or database in (None, "", ":memory:"):
            return None
        path = Path(str(database))
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())

    def close(self) -> None:
        """Release every connection."""
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def describe_target(url: URL) -> str:
    """The store as people know it: an SQLite file's path, or the URL as ``shown_url`` masks it."""
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return str(url.database)
    return shown_url(url)


def _cause(exc: BaseException) -> str:
    """The DB-API message under SQLAlchemy's wrapper (without the SQL)."""
    orig = getattr(exc, "orig", None)
    return str(orig if orig is not None else exc).splitlines()[0]
