"""Analysis records: the stored results of correlation runs.

A correlation run is kept as one JSON document (``results``) beside the time
range it covered and when it was computed; ``secperf.analysis.correlate_store``
owns the document's layout. Only the newest ``keep`` runs are kept: a run is
recomputed from the samples whenever needed, so old ones have little value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select

from secperf.store.record_base import RecordMixin
from secperf.store.schema import correlation_runs

DEFAULT_KEEP_RUNS = 200


@dataclass(frozen=True, slots=True)
class CorrelationRunRecord:
    """One stored correlation run: its range, when it was computed, and its document."""

    id: int
    computed_ms: int
    since_ms: int
    until_ms: int
    results: Any


def _check_ms(what: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} must be a non-negative integer of milliseconds, got {value!r}")
    return value


class AnalysisRecordMixin(RecordMixin):
    """The analysis half of ``Store``; expects ``_engine`` and ``_lock`` from it."""

    def add_correlation_run(
        self,
        computed_ms: int,
        since_ms: int,
        until_ms: int,
        results: Any,
        *,
        keep: int = DEFAULT_KEEP_RUNS,
    ) -> int:
        """Store a run's JSON-ready document; returns its id. Older runs beyond ``keep`` go."""
        _check_ms("computed_ms", computed_ms)
        _check_ms("since_ms", since_ms)
        _check_ms("until_ms", until_ms)
        if until_ms < since_ms:
            raise ValueError(f"until_ms {until_ms} is before since_ms {since_ms}")
        if keep < 1:
            raise ValueError(f"keep must be at least 1, got {keep}")
        with self._write_tx() as conn:
            inserted = conn.execute(
                correlation_runs.insert().values(
                    computed_ms=computed_ms,
                    since_ms=since_ms,
                    until_ms=until_ms,
                    results=results,
                )
            ).inserted_primary_key
            assert inserted is not None
            run_id = int(inserted[0])
            # The id of the oldest run still kept; everything older goes.
            oldest_kept = conn.execute(
                select(correlation_runs.c.id)
                .order_by(correlation_runs.c.id.desc())
                .offset(keep - 1)
                .limit(1)
            ).scalar()
            if oldest_kept is not None:
                conn.execute(delete(correlation_runs).where(correlation_runs.c.id < oldest_kept))
        return run_id

    def latest_correlation_run(self) -> CorrelationRunRecord | None:
        """The most recently computed run, or None when none was stored."""
        stmt = (
            select(correlation_runs)
            .order_by(correlation_runs.c.computed_ms.desc(), correlation_runs.c.id.desc())
            .limit(1)
        )
        with self._engine.connect() as conn:
            row = conn.execute(stmt).first()
        if row is None:
            return None
        return CorrelationRunRecord(
            int(row.id), int(row.computed_ms), int(row.since_ms), int(row.until_ms), row.results
        )

    def correlation_runs(self, limit: int = 20) -> list[CorrelationRunRecord]:
        """The newest runs first."""
        stmt = (
            select(correlation_runs)
            .order_by(correlation_runs.c.computed_ms.desc(), correlation_runs.c.id.desc())
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [
                CorrelationRunRecord(
                    int(r.id), int(r.computed_ms), int(r.since_ms), int(r.until_ms), r.results
                )
                for r in conn.execute(stmt)
            ]
