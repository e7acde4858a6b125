"""Alert records: current alerts, their transitions, and silences."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, select, update

from secperf.events import AlertAcknowledged, AlertChanged, SilenceAdded, SilenceExpired
from secperf.model import (
    Alert,
    AlertState,
    Severity,
)
from secperf.store.event_log import append_entries
from secperf.store.record_base import (
    RecordMixin,
    clock_ms,
    from_json,
    require_text,
    to_json,
)
from secperf.store.schema import (
    alert_transitions,
    alerts,
    silences,
)


@dataclass(frozen=True, slots=True)
class AlertTransition:
    """One recorded lifecycle change of an alert."""

    event_id: str
    fingerprint: str
    from_state: AlertState
    to_state: AlertState
    ts_ms: int
    alert: Alert


@dataclass(frozen=True, slots=True)
class Silence:
    """Alerts matching ``matchers`` are muted between ``starts_ms`` and ``ends_ms``."""

    id: int
    matchers: list[dict[str, Any]]
    starts_ms: int
    ends_ms: int
    author: str
    reason: str
    created_ms: int

    def active(self, at_ms: int) -> bool:
        return self.starts_ms <= at_ms < self.ends_ms


class AlertRecordMixin(RecordMixin):
    """Alerts and silences of ``Store``."""

    def _upsert_alert(self, conn: Connection, alert: Alert) -> None:
        values = {
            "rule": alert.rule,
            "state": AlertState(alert.state).value,
            "severity": Severity(alert.severity).value,
            "updated_ms": alert.updated_ms,
            "payload": to_json(alert),
        }
        found = conn.execute(
            select(alerts.c.fingerprint).where(alerts.c.fingerprint == alert.fingerprint)
        ).first()
        if found is None:
            conn.execute(alerts.insert().values(fingerprint=alert.fingerprint, **values))
        else:
            conn.execute(
                update(alerts).where(alerts.c.fingerprint == alert.fingerprint).values(**values)
            )

    def upsert_alert(self, alert: Alert) -> None:
        """Store an alert's current form, by fingerprint."""
        require_text("alert fingerprint", alert.fingerprint)
        with self._write_tx() as conn:
            self._upsert_alert(conn, alert)

    def update_alert_values(self, values: Mapping[str, float | None]) -> set[str]:
        """Set the current value of stored alerts, by fingerprint; nothing else changes.

        An alert's state, acknowledgement and annotations stay as stored (the
        CLI may have acknowledged it since the engine last read it). Returns the
        fingerprints found (an alert whose first transition is still on its way
        to the store is not there yet).
        """
        found: set[str] = set()
        if not values:
            return found
        with self._write_tx() as conn:
            rows = conn.execute(
                select(alerts.c.fingerprint, alerts.c.payload).where(
                    alerts.c.fingerprint.in_(list(values))
                )
            ).all()
            for fingerprint, payload in rows:
                alert = replace(from_json(Alert, payload), value=values[fingerprint])
                conn.execute(
                    update(alerts)
                    .where(alerts.c.fingerprint == fingerprint)
                    .values(payload=to_json(alert))
                )
                found.add(fingerprint)
        return found

    def acknowledge_alert(self, alert: Alert) -> None:
        """Store an acknowledged alert (``acknowledged_by`` set) with ``AlertAcknowledged``."""
        require_text("alert fingerprint", alert.fingerprint)
        author = require_text("acknowledging author", alert.acknowledged_by)
        event = AlertAcknowledged(
            alert=alert,
            author=author,
            note=alert.acknowledgement_note or "",
            ts_ms=alert.updated_ms,
        )
        with self._write_tx([event]) as conn:
            self._upsert_alert(conn, alert)

    def record_alert_transition(self, event: AlertChanged) -> bool:
        """Append a lifecycle change and update the alert; False if already recorded."""
        alert = event.alert
        with self._write_tx() as conn:
            seen = conn.execute(
                select(alert_transitions.c.id).where(alert_transitions.c.event_id == event.id)
            ).first()
            if seen is not None:
                return False
            conn.execute(
                alert_transitions.insert().values(
                    event_id=event.id,
                    fingerprint=alert.fingerprint,
                    from_state=AlertState(event.previous_state).value,
                    to_state=AlertState(alert.state).value,
                    ts_ms=event.ts_ms,
                    payload=to_json(alert),
                )
            )
            self._upsert_alert(conn, alert)
        return True

    def alerts(self, states: Iterable[AlertState | str] | None = None) -> list[Alert]:
        """Current alerts, optionally only in ``states``; newest change first."""
        stmt = select(alerts.c.payload).order_by(alerts.c.updated_ms.desc())
        if states is not None:
            stmt = stmt.where(alerts.c.state.in_([AlertState(s).value for s in states]))
        with self._engine.connect() as conn:
            return [from_json(Alert, p) for p in conn.execute(stmt).scalars()]

    def alert_history(self, fingerprint: str) -> list[AlertTransition]:
        """Every recorded change of one alert, oldest first."""
        stmt = (
            select(alert_transitions)
            .where(alert_transitions.c.fingerprint == fingerprint)
            .order_by(alert_transitions.c.ts_ms, alert_transitions.c.id)
        )
        with self._engine.connect() as conn:
            return [
                AlertTransition(
                    r.event_id,
                    r.fingerprint,
                    AlertState(r.from_state),
                    AlertState(r.to_state),
                    r.ts_ms,
                    from_json(Alert, r.payload),
                )
                for r in conn.execute(stmt)
            ]

    # ------------------------------------------------------------------ silences

    def add_silence(
        self,
        matchers: list[dict[str, Any]],
        starts_ms: int,
        ends_ms: int,
        author: str,
        reason: str,
        *,
        created_ms: int | None = None,
    ) -> int:
        """Store a silence; returns its id."""
        if not isinstance(matchers, list) or not matchers:
            raise ValueError("silence matchers must be a non-empty list of objects")
        for index, matcher in enumerate(matchers):
            if not isinstance(matcher, dict) or not all(isinstance(k, str) for k in matcher):
                raise ValueError(f"silence matcher {index} must be an object with string keys")
        if ends_ms <= starts_ms:
            raise ValueError(f"silence ends_ms {ends_ms} must be after starts_ms {starts_ms}")
        require_text("silence author", author)
        created = clock_ms() if created_ms is None else created_ms
        with self._write_tx() as conn:
            result = conn.execute(
                silences.insert().values(
                    matchers=matchers,
                    starts_ms=starts_ms,
                    ends_ms=ends_ms,
                    author=author,
                    reason=reason,
                    created_ms=created,
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            silence_id = int(key[0])
            # The id is known only now: appended here, still in the transaction.
            append_entries(
                conn,
                [
                    SilenceAdded(
                        silence_id=silence_id,
                        matchers=tuple(
                            {str(k): str(v) for k, v in matcher.items()} for matcher in matchers
                        ),
                        starts_ms=starts_ms,
                        ends_ms=ends_ms,
                        author=author,
                        reason=reason,
                        ts_ms=created,
                    )
                ],
                None,
                clock_ms(),
            )
        return silence_id

    def silences(self, active_at_ms: int | None = None) -> list[Silence]:
        """Every silence, or only those active at ``active_at_ms``."""
        stmt = select(silences).order_by(silences.c.id)
        if active_at_ms is not None:
            stmt = stmt.where(silences.c.starts_ms <= active_at_ms).where(
                silences.c.ends_ms > active_at_ms
            )
        with self._engine.connect() as conn:
            return [
                Silence(r.id, r.matchers, r.starts_ms, r.ends_ms, r.author, r.reason, r.created_ms)
                for r in conn.execute(stmt)
            ]

    def expire_silence(self, silence_id: int, now_ms: int) -> bool:
        """End a silence now; False when it does not exist or has already ended."""
        with self._write_tx() as conn:
            result = conn.execute(
                update(silences)
                .where(silences.c.id == silence_id)
                .where(silences.c.ends_ms > now_ms)
                .values(ends_ms=now_ms)
            )
            ended = bool(result.rowcount)
            if ended:
                event = SilenceExpired(silence_id=silence_id, ends_ms=now_ms, ts_ms=now_ms)
                append_entries(conn, [event], None, clock_ms())
        return ended
