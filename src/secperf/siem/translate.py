"""From bus events to SIEM records: what each security event means to a SIEM.

``RecordBuilder.records(event)`` answers the records one event gives (often
none). Findings are judged per scan, once it completed: a finding is **new**
when the previous complete scan of the same target did not report it, and
**fixed** when that scan reported it and this one does not (the same
definition as the SARIF import's ``fixed_findings``). Both sets are read from
the store: the bus and the event log announce only the findings a scan sees
for the first time, so a scan's ``ViolationDetected`` events are not its whole
set. A finding of the secrets scanner (category ``secret``) is a ``secret``
record rather than ``finding.new``; it carries the redacted preview only.

Ordering: the store writer and this builder consume the same ``ScanCompleted``
(on the in-process bus or NATS), and the writer may not have committed the
scan yet when it arrives here. The builder therefore waits, polling, until the
scan's row has an outcome (the writer stores a scan's findings before its
outcome), up to ``STORE_WAIT_S``; past that the scan's findings are reported
in the log as not forwarded. Events republished from the event log are
already stored and read at once.

Interrupted and abandoned scans saw part of the code: they give no records.
A scan that failed gives new findings but no fixed ones (what it did not
report may simply not have been scanned).

Blocking (reads the store): call it from a worker thread.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy.exc import SQLAlchemyError

from secperf.events import (
    AlertChanged,
    Event,
    FindingTriaged,
    GateEvaluated,
    ScanCompleted,
)
from secperf.model import AlertState, Finding, GateVerdict, Severity
from secperf.siem.records import SiemRecord
from secperf.store import Store
from secperf.store.finding_records import StoredFinding
from secperf.store.scan_records import COMPLETE_SCAN_STATUSES, ScanRecord

log = logging.getLogger(__name__)

#: Topic of ``ScanThrottled`` (handled by topic, so that any secperf that
#: publishes it is understood).
SCAN_THROTTLED_TOPIC = "security.scan.throttled"
#: The topics that can give records.
TOPICS = frozenset(
    {
        ScanCompleted.topic,
        FindingTriaged.topic,
        AlertChanged.topic,
        GateEvaluated.topic,
        SCAN_THROTTLED_TOPIC,
    }
)
#: How long a completed scan is waited for in the store (its writer may lag this builder).
STORE_WAIT_S = 60.0
#: The first pause between reads of the store, doubled up to ``STORE_POLL_MAX_S``.
STORE_POLL_S = 0.05
STORE_POLL_MAX_S = 1.0
#: How many recent scans of a target are read to find the previous complete one.
_RECENT_SCANS = 20

_GATE_SEVERITY = {
    GateVerdict.PASS: Severity.INFO,
    GateVerdict.BLOCK: Severity.HIGH,
    GateVerdict.CANNOT_EVALUATE: Severity.MEDIUM,
}
_GATE_OUTCOME = {
    GateVerdict.PASS: "success",
    GateVerdict.BLOCK: "failure",
    GateVerdict.CANNOT_EVALUATE: "unknown",
}


def previous_scan_findings(
    store: Store, scan_id: str, target: str, started_ms: int
) -> list[StoredFinding]:
    """The findings of the newest complete scan of ``target`` before ``scan_id`` (none: [])."""
    for record in store.scans(limit=_RECENT_SCANS, target=target):
        if record.scan_id == scan_id or not record.complete or record.started_ms > started_ms:
            continue
        return store.findings(scan_id=record.scan_id, limit=None)
    return []


class RecordBuilder:
    """Turns bus events into ``SiemRecord`` s, judging each completed scan from the store."""

    def __init__(self, store: Store, *, store_wait_s: float = STORE_WAIT_S) -> None:
        self.store = store
        self.store_wait_s = store_wait_s

    def records(self, event: Event) -> list[SiemRecord]:
        """The records ``event`` gives, in order (blocking: may read the store)."""
        if isinstance(event, ScanCompleted):
            return self._scan_completed(event)
        if isinstance(event, FindingTriaged):
            return [_triage(event)]
        if isinstance(event, AlertChanged):
            record = _alert(event)
            return [] if record is None else [record]
        if isinstance(event, GateEvaluated):
            return [_gate(event)]
        if type(event).topic == SCAN_THROTTLED_TOPIC:
            return [_throttled(event)]
        return []

    def _stored(self, scan_id: str) -> ScanRecord | None:
        """The scan's row once it has an outcome; None when the store cannot say (logged)."""
        deadline = time.monotonic() + self.store_wait_s
        delay_s = STORE_POLL_S
        why = "it was not stored"
        while True:
            try:
                record = self.store.scan(scan_id)
                if record is not None and record.status != "running":
                    return record
            except SQLAlchemyError as exc:  # locked, disconnected: it may pass
                why = "the store could not be read: " + (
                    str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                )
            if time.monotonic() >= deadline:
                log.error(
                    "SIEM: the findings of scan %s cannot be judged new or fixed: %s within"
                    " %.0f s; none are forwarded",
                    scan_id,
                    why,
                    self.store_wait_s,
                )
                return None
            time.sleep(delay_s)  # a worker thread: waiting holds no event loop
            delay_s = min(delay_s * 2, STORE_POLL_MAX_S)

    def _findings(
        self, record: ScanRecord
    ) -> tuple[list[StoredFinding], list[StoredFinding]] | None:
        """The scan's stored findings and its previous complete scan's; None on a store error."""
        try:
            current = self.store.findings(scan_id=record.scan_id, limit=None)
            earlier = previous_scan_findings(
                self.store, record.scan_id, record.target, record.started_ms
            )
        except SQLAlchemyError as exc:
            log.error(
                "SIEM: the findings of scan %s cannot be judged new or fixed: the store could"
                " not be read (%s); none are forwarded",
                record.scan_id,
                str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
            )
            return None
        return current, earlier

    def _scan_completed(self, event: ScanCompleted) -> list[SiemRecord]:
        metrics = event.metrics
        if event.status not in COMPLETE_SCAN_STATUSES:
            return []
        record = self._stored(metrics.scan_id)
        if record is None or not record.complete:
            return []
        found = self._findings(record)
        if found is None:
            return []
        previous = {s.finding.fingerprint: s for s in found[1]}
        current: dict[str, StoredFinding] = {}
        for stored in found[0]:
            current.setdefault(stored.finding.fingerprint, stored)
        records = [
            _finding_record(
                "secret" if s.finding.category == "secret" else "finding.new",
                s.finding,
                scan_id=metrics.scan_id,
                target=metrics.target,
                ts_ms=event.ts_ms,
                host=event.host,
                baselined=not s.is_new,
            )
            for fp, s in current.items()
            if fp not in previous
        ]
        if event.status != "failed":
            gone = sorted(
                (s for fp, s in previous.items() if fp not in current),
                key=lambda s: (s.finding.path, s.finding.line, s.finding.fingerprint),
            )
            records += [
                _finding_record(
                    "finding.fixed",
                    s.finding,
                    scan_id=metrics.scan_id,
                    target=metrics.target,
                    ts_ms=event.ts_ms,
                    host=event.host,
                    baselined=None,
                )
                for s in gone
            ]
        return records


def _finding_record(
    kind: str,
    finding: Finding,
    *,
    scan_id: str,
    target: str,
    ts_ms: int,
    host: str,
    baselined: bool | None,
) -> SiemRecord:
    what = {"finding.new": "New finding", "secret": "Secret found", "finding.fixed": "Fixed"}[kind]
    where = f"{finding.path}:{finding.line}" if finding.line else finding.path
    return SiemRecord(
        kind=kind,
        key=f"{kind}:{scan_id}:{finding.fingerprint}",
        ts_ms=ts_ms,
        host=host,
        name=f"{what}: {finding.rule_id}",
        message=f"{finding.message} ({where})",
        severity=Severity(finding.severity),
        target=target,
        scan_id=scan_id,
        finding=finding,
        baselined=baselined,
        rule=finding.rule_id,
        state="fixed" if kind == "finding.fixed" else "open",
        reference=finding.fingerprint,
    )


def _triage(event: FindingTriaged) -> SiemRecord:
    return SiemRecord(
        kind="triage",
        key=f"triage:{event.id}",
        ts_ms=event.ts_ms,
        host=event.host,
        name=f"Finding triaged: {event.state}",
        message=event.reason or f"{event.author} set the finding to {event.state}",
        severity=Severity.LOW,
        user=event.author,
        state=event.state,
        reason=event.reason,
        reference=event.fingerprint,
    )


def _alert(event: AlertChanged) -> SiemRecord | None:
    alert = event.alert
    firing = (AlertState.FIRING, AlertState.ERROR)
    if alert.state in firing and event.previous_state not in firing:
        kind = "alert.firing"
    elif alert.state is AlertState.RESOLVED and (
        event.previous_state in firing or alert.fired_at_ms is not None
    ):
        kind = "alert.resolved"
    else:
        return None  # pending, inactive, no data: not an alert a SIEM acts on
    summary = alert.annotations.get("summary") or alert.annotations.get("description") or ""
    return SiemRecord(
        kind=kind,
        key=f"{kind}:{event.id}",
        ts_ms=event.ts_ms,
        host=event.host,
        name=f"Alert {'firing' if kind == 'alert.firing' else 'resolved'}: {alert.rule}",
        message=summary or f"alert {alert.rule} is {AlertState(alert.state).value}",
        severity=Severity(alert.severity) if kind == "alert.firing" else Severity.INFO,
        target=alert.labels.get("target", ""),
        rule=alert.rule,
        state=AlertState(alert.state).value,
        reference=alert.fingerprint,
        side=str(alert.kind),
        value=alert.value,
        labels={str(k): str(v) for k, v in alert.labels.items()},
    )


def _gate(event: GateEvaluated) -> SiemRecord:
    result = event.result
    verdict = GateVerdict(result.verdict)
    blocked = [c.name for c in result.conditions if c.status in ("block", "cannot_evaluate")]
    return SiemRecord(
        kind="gate",
        key=f"gate:{result.run_id}",
        ts_ms=event.ts_ms,
        host=event.host,
        name=f"Quality gate: {verdict.value}",
        message=result.summary or f"gate {verdict.value} for {result.target}",
        severity=_GATE_SEVERITY[verdict],
        target=result.target,
        state=verdict.value,
        reason=", ".join(blocked),
        outcome=_GATE_OUTCOME[verdict],
        reference=result.run_id,
        labels={"commit": result.commit} if result.commit else {},
    )


def _throttled(event: Event) -> SiemRecord:
    action = str(getattr(event, "action", "") or "")
    guard = getattr(event, "guard", None)
    throttled_ms = getattr(event, "throttled_ms", None)
    return SiemRecord(
        kind="scan.throttled",
        key=f"scan.throttled:{event.id}",
        ts_ms=event.ts_ms,
        host=event.host,
        name=f"Scan throttled: {action or 'changed'}",
        message=str(getattr(event, "reason", "") or f"scan pacing: {action}"),
        severity=Severity.INFO,
        target=str(getattr(event, "target", "") or ""),
        scan_id=str(getattr(event, "scan_id", "") or ""),
        state=action,
        reason=str(getattr(event, "reason", "") or ""),
        value=float(throttled_ms) if isinstance(throttled_ms, int | float) else None,
        labels={"guard": str(guard)} if guard else {},
    )
