"""Gate run records: each quality-gate verdict."""

from __future__ import annotations

from sqlalchemy import func, select, update

from secperf.model import (
    GateResult,
)
from secperf.store.record_base import (
    RecordMixin,
    from_json,
    require_text,
    to_json,
)
from secperf.store.schema import (
    gate_runs,
)


class GateRecordMixin(RecordMixin):
    """Gate runs of ``Store``."""

    def add_gate_run(self, result: GateResult) -> None:
        """Store a gate verdict (re-adding the same run id replaces it)."""
        require_text("gate run_id", result.run_id)
        values = {
            "target": result.target,
            "started_ms": result.started_ms,
            "finished_ms": result.finished_ms,
            "verdict": result.verdict.value,
            "commit": result.commit,
            "payload": to_json(result),
        }
        with self._write_tx() as conn:
            found = conn.execute(
                select(gate_runs.c.run_id).where(gate_runs.c.run_id == result.run_id)
            ).first()
            if found is None:
                conn.execute(gate_runs.insert().values(run_id=result.run_id, **values))
            else:
                conn.execute(
                    update(gate_runs).where(gate_runs.c.run_id == result.run_id).values(**values)
                )

    def gate_runs(
        self,
        limit: int = 50,
        target: str | None = None,
        *,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> list[GateResult]:
        """The newest gate runs first; ``start_ms``/``end_ms`` keep runs started in that range."""
        stmt = select(gate_runs.c.payload).order_by(
            gate_runs.c.started_ms.desc(), gate_runs.c.run_id.desc()
        )
        if target is not None:
            stmt = stmt.where(gate_runs.c.target == target)
        if start_ms is not None:
            stmt = stmt.where(gate_runs.c.started_ms >= start_ms)
        if end_ms is not None:
            stmt = stmt.where(gate_runs.c.started_ms <= end_ms)
        with self._engine.connect() as conn:
            return [from_json(GateResult, p) for p in conn.execute(stmt.limit(limit)).scalars()]

    def latest_gate_runs_by_target(self) -> dict[str, GateResult]:
        """The newest gate run of every target, in one read."""
        ranked = select(
            gate_runs.c.run_id,
            func.row_number()
            .over(
                partition_by=gate_runs.c.target,
                order_by=(gate_runs.c.started_ms.desc(), gate_runs.c.run_id.desc()),
            )
            .label("rank"),
        ).subquery()
        stmt = (
            select(gate_runs.c.target, gate_runs.c.payload)
            .join(ranked, ranked.c.run_id == gate_runs.c.run_id)
            .where(ranked.c.rank == 1)
        )
        with self._engine.connect() as conn:
            return {t: from_json(GateResult, p) for t, p in conn.execute(stmt)}
