"""``Store``: the one persistence API for samples and records, over SQLAlchemy Core.

``Store.open`` takes a filesystem path (SQLite, created with its parent
directories) or an SQLAlchemy URL (``sqlite:///...``, ``postgresql+psycopg://...``),
applies the missing schema migrations and returns a ready store. Methods are
synchronous and thread-safe; writes are serialised by one lock.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from sqlalchemy import Engine
from sqlalchemy.engine import URL

from secperf.store.analysis_records import AnalysisRecordMixin
from secperf.store.engine import create_store_engine
from secperf.store.migrations import migrate
from secperf.store.records import RecordRetention, RecordStoreMixin
from secperf.store.samples import (
    BLOCK_MS,
    COMPACT_AFTER,
    ChunkRetention,
    SampleStoreMixin,
)


@dataclass(frozen=True, slots=True)
class RetentionResult:
    """What one retention pass removed."""

    cutoff_ms: int
    chunks: ChunkRetention
    records: RecordRetention


class Store(SampleStoreMixin, RecordStoreMixin, AnalysisRecordMixin):
    """Series and compressed samples plus scans, findings, triage, alerts and more."""

    def __init__(
        self,
        engine: Engine,
        *,
        block_ms: int = BLOCK_MS,
        compact_after: int = COMPACT_AFTER,
    ) -> None:
        self._engine = engine
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
        """Open (creating when needed) and migrate the store at ``target``."""
        engine = create_store_engine(target)
        try:
            migrate(engine, where=f"store {engine.url.render_as_string(hide_password=True)}")
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, block_ms=block_ms, compact_after=compact_after)

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
                with self._engine.begin() as conn:
                    chunk_result = self._retain_chunks(conn, cutoff)
                    record_result = self._retain_records(conn, cutoff)
            finally:
                # Series ids may be gone and block counts changed: reload lazily.
                self._forget_sample_caches()
        return RetentionResult(cutoff, chunk_result, record_result)

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
