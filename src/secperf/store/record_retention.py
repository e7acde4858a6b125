"""Record retention: which old records go, and how many did."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, delete, func, select

from secperf.model import (
    AlertState,
)
from secperf.store.finding_rows import hand_over_before_delete
from secperf.store.record_base import (
    IN_BATCH,
)
from secperf.store.schema import (
    alert_transitions,
    alerts,
    findings,
    gate_runs,
    scans,
    silences,
)


@dataclass(frozen=True, slots=True)
class RecordRetention:
    """Rows retention removed per kind of record."""

    scans: int = 0
    findings: int = 0
    alert_transitions: int = 0
    alerts: int = 0
    silences: int = 0
    gate_runs: int = 0


def retain_records(conn: Connection, cutoff_ms: int) -> RecordRetention:
    """Delete records older than the cutoff; the newest scan of each target stays."""
    newest: dict[str, str] = {}
    for row in conn.execute(
        select(scans.c.scan_id, scans.c.target).order_by(scans.c.started_ms, scans.c.scan_id)
    ):
        newest[row.target] = row.scan_id
    keep = set(newest.values())
    old_ids = [
        sid
        for sid in conn.execute(
            select(scans.c.scan_id).where(
                func.coalesce(scans.c.finished_ms, scans.c.started_ms) < cutoff_ms
            )
        ).scalars()
        if sid not in keep
    ]
    # Rows a kept scan shares with an old one move to the kept scan first.
    hand_over_before_delete(conn, old_ids)
    removed_findings = 0
    for i in range(0, len(old_ids), IN_BATCH):
        part = old_ids[i : i + IN_BATCH]
        removed_findings += conn.execute(
            delete(findings).where(findings.c.scan_id.in_(part))
        ).rowcount
        conn.execute(delete(scans).where(scans.c.scan_id.in_(part)))
    transitions = conn.execute(
        delete(alert_transitions).where(alert_transitions.c.ts_ms < cutoff_ms)
    ).rowcount
    quiet = [AlertState.RESOLVED.value, AlertState.INACTIVE.value]
    old_alerts = conn.execute(
        delete(alerts).where(alerts.c.updated_ms < cutoff_ms).where(alerts.c.state.in_(quiet))
    ).rowcount
    old_silences = conn.execute(delete(silences).where(silences.c.ends_ms < cutoff_ms)).rowcount
    old_gates = conn.execute(delete(gate_runs).where(gate_runs.c.finished_ms < cutoff_ms)).rowcount
    return RecordRetention(
        scans=len(old_ids),
        findings=int(removed_findings),
        alert_transitions=int(transitions),
        alerts=int(old_alerts),
        silences=int(old_silences),
        gate_runs=int(old_gates),
    )
