"""Triage records: the decision in force on each fingerprint and every past one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from secperf.store.record_base import (
    RecordMixin,
    clock_ms,
    require_text,
)
from secperf.store.schema import (
    triage_current,
    triage_history,
)

TRIAGE_STATES = ("open", "false_positive", "accepted_risk", "fixed")


@dataclass(frozen=True, slots=True)
class TriageEntry:
    """A triage decision on a fingerprint; past ``expires_ms`` it counts as open."""

    fingerprint: str
    state: str
    author: str
    note: str | None
    expires_ms: int | None
    updated_ms: int

    def effective_state(self, now_ms: int | None = None) -> str:
        """The state in force at ``now_ms`` (an expired decision reverts to open)."""
        now = clock_ms() if now_ms is None else now_ms
        if self.expires_ms is not None and self.expires_ms <= now:
            return "open"
        return self.state


def _triage_from_row(row: Any) -> TriageEntry:
    return TriageEntry(
        row.fingerprint, row.state, row.author, row.note, row.expires_ms, row.updated_ms
    )


class TriageRecordMixin(RecordMixin):
    """Triage of ``Store``: decisions by fingerprint, current and history."""

    def set_triage(
        self,
        fingerprint: str,
        state: str,
        author: str,
        note: str | None = None,
        expires_ms: int | None = None,
        *,
        now_ms: int | None = None,
    ) -> TriageEntry:
        """Record a triage decision; the history keeps every decision ever made."""
        require_text("fingerprint", fingerprint)
        require_text("author", author)
        if state not in TRIAGE_STATES:
            raise ValueError(f"unknown triage state {state!r}; expected one of {TRIAGE_STATES}")
        now = clock_ms() if now_ms is None else now_ms
        entry = TriageEntry(fingerprint, state, author, note, expires_ms, now)
        values = {
            "state": state,
            "author": author,
            "note": note,
            "expires_ms": expires_ms,
        }
        with self._lock, self._writer.begin() as conn:
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
        return entry

    def triage(self, fingerprint: str) -> TriageEntry | None:
        """The current decision on a fingerprint, or None."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(triage_current).where(triage_current.c.fingerprint == fingerprint)
            ).first()
        return None if row is None else _triage_from_row(row)

    def triage_all(self) -> dict[str, TriageEntry]:
        """Every current decision by fingerprint."""
        with self._engine.connect() as conn:
            return {
                r.fingerprint: _triage_from_row(r) for r in conn.execute(select(triage_current))
            }

    def triage_history(self, fingerprint: str) -> list[TriageEntry]:
        """Every decision on a fingerprint, oldest first."""
        stmt = (
            select(triage_history)
            .where(triage_history.c.fingerprint == fingerprint)
            .order_by(triage_history.c.id)
        )
        with self._engine.connect() as conn:
            return [
                TriageEntry(r.fingerprint, r.state, r.author, r.note, r.expires_ms, r.created_ms)
                for r in conn.execute(stmt)
            ]
