"""Triage records: the decision in force on each fingerprint and every past one.

Rows read back as ``security.triage.TriageDecision``, the one triage model;
the row's ``note`` column is the decision's ``reason``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from secperf.events import FindingTriaged
from secperf.security.triage import TriageDecision, TriageState, parse_state
from secperf.store.record_base import (
    RecordMixin,
    clock_ms,
    require_text,
)
from secperf.store.schema import (
    triage_current,
    triage_history,
)


def decision_from_row(
    fingerprint: str,
    state: str,
    author: str,
    note: str | None,
    decided_ms: int,
    expires_ms: int | None,
) -> TriageDecision:
    """A triage row's columns as the decision (a row without a note has an empty reason)."""
    return TriageDecision(
        fingerprint, TriageState(state), author, note or "", decided_ms, expires_ms
    )


def _current(row: Any) -> TriageDecision:
    return decision_from_row(
        row.fingerprint, row.state, row.author, row.note, row.updated_ms, row.expires_ms
    )


class TriageRecordMixin(RecordMixin):
    """Triage of ``Store``: decisions by fingerprint, current and history."""

    def set_triage(
        self,
        fingerprint: str,
        state: TriageState | str,
        author: str,
        reason: str | None = None,
        expires_ms: int | None = None,
        *,
        now_ms: int | None = None,
    ) -> TriageDecision:
        """Record a triage decision; the history keeps every decision ever made.

        ``FindingTriaged`` goes to the event log in the same transaction.
        """
        require_text("fingerprint", fingerprint)
        require_text("author", author)
        chosen = parse_state(state)
        now = clock_ms() if now_ms is None else now_ms
        decision = TriageDecision(fingerprint, chosen, author, reason or "", now, expires_ms)
        values = {
            "state": chosen.value,
            "author": author,
            "note": reason,
            "expires_ms": expires_ms,
        }
        event = FindingTriaged(
            fingerprint=fingerprint,
            state=chosen.value,
            author=author,
            reason=reason or "",
            expires_ms=expires_ms,
            ts_ms=now,
        )
        with self._write_tx([event]) as conn:
            conn.execute(
                triage_history.insert().values(fingerprint=fingerprint, created_ms=now, **values)
            )
            exists_row = conn.execute(
                select(triage_current.c.fingerprint).where(
                    triage_current.c.fingerprint == fingerprint
                )
            ).first()
            if exists_row is None:
                conn.execute(
                    triage_current.insert().values(
                        fingerprint=fingerprint, updated_ms=now, **values
                    )
                )
            else:
                conn.execute(
                    update(triage_current)
                    .where(triage_current.c.fingerprint == fingerprint)
                    .values(updated_ms=now, **values)
                )
        return decision

    def triage(self, fingerprint: str) -> TriageDecision | None:
        """The current decision on a fingerprint, or None."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(triage_current).where(triage_current.c.fingerprint == fingerprint)
            ).first()
        return None if row is None else _current(row)

    def triage_all(self) -> dict[str, TriageDecision]:
        """Every current decision by fingerprint."""
        with self._engine.connect() as conn:
            return {r.fingerprint: _current(r) for r in conn.execute(select(triage_current))}

    def triage_history(self, fingerprint: str) -> list[TriageDecision]:
        """Every decision on a fingerprint, oldest first."""
        stmt = (
            select(triage_history)
            .where(triage_history.c.fingerprint == fingerprint)
            .order_by(triage_history.c.id)
        )
        with self._engine.connect() as conn:
            return [
                decision_from_row(
                    r.fingerprint, r.state, r.author, r.note, r.created_ms, r.expires_ms
                )
                for r in conn.execute(stmt)
            ]
