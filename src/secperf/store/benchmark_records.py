"""Benchmark records: imported and measured benchmark results."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select

from secperf.events import BenchmarksRecorded
from secperf.model import (
    BenchmarkResult,
)
from secperf.store.event_log import append_entries
from secperf.store.record_base import (
    IN_BATCH,
    RecordMixin,
    clock_ms,
    from_json,
    require_text,
    to_json,
)
from secperf.store.schema import (
    benchmark_results,
)


class BenchmarkRecordMixin(RecordMixin):
    """Benchmark results of ``Store``."""

    def add_benchmark_results(self, results: Iterable[BenchmarkResult]) -> int:
        """Store results not stored yet (identity: name, commit, machine, timestamp)."""
        fresh: dict[tuple[str, str, str, int], BenchmarkResult] = {}
        for r in results:
            if not isinstance(r, BenchmarkResult):
                raise TypeError(f"expected BenchmarkResult objects, got {type(r).__name__}")
            require_text("benchmark name", r.name)
            fresh[(r.name, r.commit or "", r.machine, r.timestamp_ms)] = r
        if not fresh:
            return 0
        with self._write_tx() as conn:
            names = sorted({k[0] for k in fresh})
            for i in range(0, len(names), IN_BATCH):
                stmt = select(
                    benchmark_results.c.name,
                    benchmark_results.c.commit,
                    benchmark_results.c.machine,
                    benchmark_results.c.timestamp_ms,
                ).where(benchmark_results.c.name.in_(names[i : i + IN_BATCH]))
                for row in conn.execute(stmt):
                    fresh.pop((row.name, row.commit, row.machine, row.timestamp_ms), None)
            if fresh:
                conn.execute(
                    benchmark_results.insert(),
                    [
                        {
                            "name": r.name,
                            "source": r.source,
                            "timestamp_ms": r.timestamp_ms,
                            "machine": r.machine,
                            "commit": r.commit or "",
                            "status": r.status,
                            "median_s": r.stats.get("median"),
                            "payload": to_json(r),
                        }
                        for r in fresh.values()
                    ],
                )
                # So servers following the event log refresh their benchmark views.
                recorded = BenchmarksRecorded(
                    names=tuple(sorted({r.name for r in fresh.values()})), results=len(fresh)
                )
                append_entries(conn, [recorded], None, clock_ms())
        return len(fresh)

    def benchmark_results(
        self,
        name: str | None = None,
        machine: str | None = None,
        limit: int | None = 1000,
        *,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> list[BenchmarkResult]:
        """The newest ``limit`` results, returned oldest first (chronological).

        ``start_ms``/``end_ms`` keep the results timestamped in that range.
        """
        stmt = select(benchmark_results.c.payload).order_by(
            benchmark_results.c.timestamp_ms.desc(), benchmark_results.c.id.desc()
        )
        if name is not None:
            stmt = stmt.where(benchmark_results.c.name == name)
        if start_ms is not None:
            stmt = stmt.where(benchmark_results.c.timestamp_ms >= start_ms)
        if end_ms is not None:
            stmt = stmt.where(benchmark_results.c.timestamp_ms <= end_ms)
        if machine is not None:
            stmt = stmt.where(benchmark_results.c.machine == machine)
        if limit is not None:
            stmt = stmt.limit(limit)
        with self._engine.connect() as conn:
            rows = [from_json(BenchmarkResult, p) for p in conn.execute(stmt).scalars()]
        rows.reverse()
        return rows

    def benchmark_names(self) -> list[str]:
        """Every benchmark name with a stored result, sorted."""
        with self._engine.connect() as conn:
            return list(
                conn.execute(
                    select(benchmark_results.c.name).distinct().order_by(benchmark_results.c.name)
                ).scalars()
            )
