"""From bus events to SIEM records: what each security event means to a SIEM.

``RecordBuilder.records(event)`` answers the records one event gives (often
none). Findings are judged per scan, once it completed: a finding is **new**
when the previous complete scan of the same target did not report it, and
**fixed** when that scan reported it and this one does not (the same
definition as the SARIF import's ``fixed_findings``). A scan's findings are
collected from its ``ViolationDetected`` events until its ``ScanCompleted``;
the previous scan's are read from the store. A finding of the secrets scanner
(category ``secret``) is a ``secret`` record rather than ``finding.new``; it
carries the redacted preview only.

Interrupted and abandoned scans saw part of the code: they give no records.
A scan that failed gives new findings but no fixed ones (what it did not
report may simply not have been scanned), and so does a scan whose start this
builder did not see (it may have missed some of its findings: a server that
started during the scan) or an import of another tool's results (it announces
only the findings new to it).

Blocking (reads the store): call it from a worker thread.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict

from sqlalchemy.exc import SQLAlchemyError

from secperf.events import (
    AlertChanged,
    Event,
    FindingTriaged,
    GateEvaluated,
    ScanCompleted,
    ScanStarted,
    ViolationDetected,
)
from secperf.model import AlertState, Finding, GateVerdict, Severity
from secperf.siem.records import SiemRecord
from secperf.store import Store
from secperf.store.finding_records import StoredFinding
from secperf.store.scan_records import COMPLETE_SCAN_STATUSES

log = logging.getLogger(__name__)

#: Topic of ``ScanThrottled`` (handled by topic, so that any secperf that
#: publishes it is understood).
SCAN_THROTTLED_TOPIC = "security.scan.throttled"
#: The topics that can give records.
TOPICS = frozenset(
    {
        ScanStarted.topic,
        ViolationDetected.topic,
        ScanCompleted.topic,
        FindingTriaged.topic,
        AlertChanged.topic,
        GateEvaluated.topic,
        SCAN_THROTTLED_TOPIC,
    }
)
#: Scans whose findings are being collected at the most (a scan whose completion
#: never comes, e.g. its process died, is forgotten after this many others).
MAX_OPEN_SCANS = 32
#: Reads of the previous scan's findings before giving up, and the first pause between.
STORE_ATTEMPTS = 3
STORE_RETRY_S = 0.25
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
    """Turns bus events into ``SiemRecord`` s, remembering each open scan's findings."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._open: OrderedDict[str, list[ViolationDetected]] = OrderedDict()
        # Scans whose start was seen: only those are whole enough to tell what is fixed.
        self._started: OrderedDict[str, None] = OrderedDict()

    def records(self, event: Event) -> list[SiemRecord]:
        """The records ``event`` gives, in order (blocking: may read the store)."""
        if isinstance(event, ScanStarted):
            self._started[event.scan_id] = None
            while len(self._started) > MAX_OPEN_SCANS:
                self._started.popitem(last=False)
            return []
        if isinstance(event, ViolationDetected):
            self._collect(event)
            return []
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

    def _previous(self, scan_id: str, target: str, started_ms: int) -> list[StoredFinding] | None:
        """The previous scan's findings; None when the store cannot say (logged)."""
        delay_s = STORE_RETRY_S
        for attempt in range(1, STORE_ATTEMPTS + 1):
            try:
                return previous_scan_findings(self.store, scan_id, target, started_ms)
            except SQLAlchemyError as exc:  # locked, disconnected: it may pass
                if attempt == STORE_ATTEMPTS:
                    log.error(
                        "SIEM: the findings of scan %s cannot be judged new or fixed: the"
                        " store could not be read (%s); none are forwarded",
                        scan_id,
                        str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                    )
                    return None
                time.sleep(delay_s)  # a worker thread: waiting holds no event loop
                delay_s *= 2
        return None

    def _collect(self, event: ViolationDetected) -> None:
        found = self._open.get(event.scan_id)
        if found is None:
            found = self._open[event.scan_id] = []
            while len(self._open) > MAX_OPEN_SCANS:
                forgotten, lost = self._open.popitem(last=False)
                log.warning(
                    "SIEM: scan %s never completed; its %d finding(s) are not forwarded",
                    forgotten,
                    len(lost),
                )
        found.append(event)

    def _scan_completed(self, event: ScanCompleted) -> list[SiemRecord]:
        metrics = event.metrics
        found = self._open.pop(metrics.scan_id, [])
        seen_whole = self._started.pop(metrics.scan_id, False) is None
        if event.status not in COMPLETE_SCAN_STATUSES:
            return []
        earlier = self._previous(metrics.scan_id, metrics.target, metrics.started_ms)
        if earlier is None:
            return []
        previous = {s.finding.fingerprint: s for s in earlier}
        current: dict[str, ViolationDetected] = {}
        for violation in found:
            current.setdefault(violation.finding.fingerprint, violation)
        records = [
            _finding_record(
                "secret" if v.finding.category == "secret" else "finding.new",
                v.finding,
                scan_id=metrics.scan_id,
                target=metrics.target,
                ts_ms=event.ts_ms,
                host=event.host,
                baselined=not v.is_new,
            )
            for fp, v in current.items()
            if fp not in previous
        ]
        if event.status != "failed" and seen_whole:
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
