"""What the API reads of the alert engine: its alerts, one alert, its context, its JSON.

``AlertBook`` answers from the engine's memory (active and recently resolved
alerts) and falls back to the store for older ones; the security and
performance context of an alert is built on demand and kept for a few seconds,
as the dashboard asks for it on every refresh. ``alert_json`` is the API's
AlertJson, the one shape the REST API, the CLI's JSON and the dashboard share.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from secperf.alerts.context import ContextBuilder
from secperf.alerts.lifecycle import AlertSlot
from secperf.alerts.rules import Rule
from secperf.model import Alert, AlertState
from secperf.store import Store

CONTEXT_KEPT_MS = 10_000  # a context is rebuilt at most this often per alert


class AlertNotFoundError(KeyError):
    """No alert has this fingerprint."""


class AlertBook:
    """The engine's alerts as the API reads them: memory first, then the store."""

    def __init__(
        self,
        store: Store,
        slots: Mapping[str, AlertSlot],
        rules: Mapping[str, Rule],
        contexts: ContextBuilder,
    ) -> None:
        # ``slots`` and ``rules`` are the engine's own mappings, read live.
        self.store = store
        self.slots = slots
        self.rules = rules
        self.contexts = contexts
        self.context_cache: dict[str, tuple[int, dict[str, Any]]] = {}

    def alerts(self, states: Iterable[AlertState | str] | None = None) -> list[Alert]:
        """The alerts held in memory (active and recently resolved), newest change first."""
        wanted = None if states is None else {AlertState(s) for s in states}
        found = [
            s.alert
            for s in self.slots.values()
            if s.alert.state is not AlertState.INACTIVE
            and (wanted is None or s.alert.state in wanted)
        ]
        return sorted(found, key=lambda a: a.updated_ms, reverse=True)

    def get(self, fingerprint: str) -> Alert:
        """One alert by fingerprint, from memory or the store; AlertNotFoundError."""
        slot = self.slots.get(fingerprint)
        if slot is not None:
            return slot.alert
        for alert in self.store.alerts():
            if alert.fingerprint == fingerprint:
                return alert
        raise AlertNotFoundError(f"no alert with fingerprint {fingerprint!r}")

    def remember_context(self, fingerprint: str, now: int, context: dict[str, Any]) -> None:
        """Keep a context built at ``now`` (the engine builds one when an alert fires)."""
        self.context_cache[fingerprint] = (now, context)

    def forget(self, fingerprint: str) -> None:
        """Drop what is kept for an alert the engine no longer holds."""
        self.context_cache.pop(fingerprint, None)

    def context(self, fingerprint: str, now: int) -> dict[str, Any]:
        """The security and performance context of one alert (kept for 10 s)."""
        cached = self.context_cache.get(fingerprint)
        if cached is not None and now - cached[0] < CONTEXT_KEPT_MS:
            return cached[1]
        slot = self.slots.get(fingerprint)
        alert = slot.alert if slot is not None else self.get(fingerprint)
        rule = slot.rule if slot is not None else self.rules.get(alert.rule)
        series = slot.series_labels if slot is not None else dict(alert.labels)
        ctx = self.contexts.build(alert, rule, series, now)
        self.context_cache[fingerprint] = (now, ctx)
        return ctx


def alert_json(
    alert: Alert,
    *,
    silenced: bool,
    inhibited_by: Alert | None,
    context: dict[str, Any] | None,
) -> dict[str, Any]:
    """The API's AlertJson: the alert's fields, ``silenced``, ``inhibited_by``, ``context``."""
    return {
        "fingerprint": alert.fingerprint,
        "rule": alert.rule,
        "state": alert.state.value,
        "severity": alert.severity.value,
        "kind": alert.kind.value,
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "value": alert.value,
        "active_since_ms": alert.active_since_ms,
        "fired_at_ms": alert.fired_at_ms,
        "resolved_at_ms": alert.resolved_at_ms,
        "updated_ms": alert.updated_ms,
        "acknowledged_by": alert.acknowledged_by,
        "acknowledgement_note": alert.acknowledgement_note,
        "silenced": silenced,
        "inhibited_by": inhibited_by.fingerprint if inhibited_by else None,
        "context": context,
    }


__all__ = ["CONTEXT_KEPT_MS", "AlertBook", "AlertNotFoundError", "alert_json"]
