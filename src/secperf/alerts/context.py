"""Context on both sides: what security was doing and how the machine fared around an alert.

``ScanTracker`` keeps the recent scans, the running ones and the new findings
of each scan in memory, fed by bus events (and seeded from the store at
start), so context costs no query for the security side. ``ContextBuilder``
adds the performance side (the alert's series and the host's CPU, load and
memory around the alert) with a few bounded store reads, and writes the one
sentence that speaks of both.

The scans shown are those the alert is about: of its ``target`` label when it
has one (every security series carries it), else of its ``host`` (a CPU alert:
the scans on that machine, each naming its target), else of every target. An
alert about one target never shows another target's scan.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from secperf.alerts.rules import Rule, format_value
from secperf.alerts.security_metrics import FindingTally
from secperf.analysis.windows import ScanWindow
from secperf.events import ScanCompleted, ScanStarted, ViolationDetected
from secperf.model import Alert, Finding, MetricKind
from secperf.security.pacing.document import PacingDocument
from secperf.store import COMPLETE_SCAN_STATUSES, ScanRecord, Store
from secperf.timefmt import clock_seconds

log = logging.getLogger(__name__)

RECENT_SCANS = 500
TALLIES_KEPT = 20
NEW_FINDINGS_SHOWN = 10
PERF_BEFORE_MS = 10 * 60_000
LOAD_AROUND_MS = 5 * 60_000
MAX_POINTS = 60
#: Scans listed in the context's ``scans`` (the newest in the alert's window).
SCANS_SHOWN = 10


@dataclass
class ScanInfo:
    """What the engine knows of one scan."""

    scan_id: str
    target: str
    started_ms: int
    finished_ms: int | None = None
    status: str = "running"
    scanners: tuple[str, ...] = ()
    violations: int | None = None
    new_findings: int | None = None
    #: The machine the scan ran on (its events' host); None when not known.
    host: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "scan_id": self.scan_id,
            "target": self.target,
            "host": self.host,
            "started_ms": self.started_ms,
            "finished_ms": self.finished_ms,
            "status": self.status,
            "scanners": list(self.scanners),
            "violations": self.violations,
            "new_findings": self.new_findings,
        }


def _finding_json(finding: Finding) -> dict[str, Any]:
    # Never the snippet: for secrets it is only a preview, but context needs none.
    return {
        "fingerprint": finding.fingerprint,
        "rule_id": finding.rule_id,
        "scanner": finding.scanner,
        "severity": finding.severity.value,
        "category": finding.category,
        "path": finding.path,
        "line": finding.line,
    }


@dataclass
class ScanTracker:
    """Recent and running scans and their finding tallies, from bus events."""

    scans: OrderedDict[str, ScanInfo] = field(default_factory=OrderedDict)
    tallies: OrderedDict[str, FindingTally] = field(default_factory=OrderedDict)
    version: int = 0  # bumped whenever a scan completes

    def seed(self, records: list[ScanRecord]) -> None:
        """Start from the store's newest scans (given newest first)."""
        for record in reversed(records):
            if record.is_import:  # another tool's results: no scan window
                continue
            metrics = record.metrics
            self.scans[record.scan_id] = ScanInfo(
                record.scan_id,
                record.target,
                record.started_ms,
                record.finished_ms,
                record.status,
                tuple(record.scanners),
                metrics.violations_found if metrics else None,
                metrics.new_findings if metrics else None,
                record.owner_host,
            )
        self._trim()

    def started(self, event: ScanStarted) -> None:
        self.scans[event.scan_id] = ScanInfo(
            event.scan_id,
            event.target,
            event.ts_ms,
            scanners=tuple(event.scanners),
            host=event.host,
        )
        self._trim()

    def violation(self, event: ViolationDetected) -> None:
        self.tally(event.scan_id).add(event.finding, event.is_new)

    def tally(self, scan_id: str) -> FindingTally:
        tally = self.tallies.get(scan_id)
        if tally is None:
            tally = self.tallies[scan_id] = FindingTally(scan_id)
            while len(self.tallies) > TALLIES_KEPT:
                self.tallies.popitem(last=False)
        return tally

    def completed(self, event: ScanCompleted) -> ScanInfo:
        m = event.metrics
        info = self.scans.get(m.scan_id)
        if info is None:
            info = ScanInfo(m.scan_id, m.target, m.started_ms, host=event.host)
            self.scans[m.scan_id] = info
        elif info.host is None:
            info.host = event.host
        info.started_ms = m.started_ms
        info.finished_ms = m.finished_ms
        info.status = event.status
        info.violations = m.violations_found
        info.new_findings = m.new_findings
        if not info.scanners:
            info.scanners = tuple(sorted(m.scanner_durations_ms))
        self.version += 1
        self._trim()
        return info

    def _trim(self) -> None:
        while len(self.scans) > RECENT_SCANS:
            self.scans.popitem(last=False)

    def of(self, scope: ScanScope) -> list[ScanInfo]:
        """The known scans within ``scope``, oldest first."""
        return [s for s in self.scans.values() if scope.holds(s)]

    def latest_finished(self, scope: ScanScope | None = None) -> ScanInfo | None:
        """The newest scan that ended whole (of ``scope``: every scan when None)."""
        # An interrupted or abandoned scan saw only part of the code.
        finished = [
            s
            for s in (self.scans.values() if scope is None else self.of(scope))
            if s.finished_ms is not None and s.status in COMPLETE_SCAN_STATUSES
        ]
        return max(finished, key=lambda s: s.finished_ms or 0, default=None)

    def running_at(self, at_ms: int, scope: ScanScope | None = None) -> ScanInfo | None:
        """A scan that was running at ``at_ms``, if any (the latest started; of ``scope``)."""
        found: ScanInfo | None = None
        for scan in self.scans.values() if scope is None else self.of(scope):
            end = scan.finished_ms
            # Open-ended only while it runs: a scan closed without an end time is over.
            still = end is None and scan.status == "running"
            inside = scan.started_ms <= at_ms and (still or (end is not None and at_ms < end))
            if inside and (found is None or scan.started_ms > found.started_ms):
                found = scan
        return found

    def overlapping(self, scope: ScanScope, start_ms: int, end_ms: int) -> list[ScanInfo]:
        """The scans of ``scope`` that ran at some time in ``[start_ms, end_ms]``, newest first."""

        def ran_then(scan: ScanInfo) -> bool:
            if scan.started_ms > end_ms:
                return False
            if scan.finished_ms is None:
                return scan.status == "running"  # closed without an end time: over
            return scan.finished_ms >= start_ms

        found = [s for s in self.of(scope) if ran_then(s)]
        return sorted(found, key=lambda s: s.started_ms, reverse=True)

    def windows(self, now_ms: int) -> list[ScanWindow]:
        """Every known scan as a window; one without an end runs until ``now_ms``."""
        out: list[ScanWindow] = []
        for s in self.scans.values():
            if s.status == "running" or (s.finished_ms is not None and s.status != "failed"):
                if s.finished_ms is None:
                    out.append(
                        ScanWindow.still_running(s.scan_id, s.started_ms, now_ms, s.scanners)
                    )
                else:
                    out.append(ScanWindow(s.started_ms, s.finished_ms, s.scan_id, s.scanners))
        return out

    def new_findings_of(self, scan_id: str) -> list[Finding]:
        tally = self.tallies.get(scan_id)
        return list(tally.new_findings) if tally else []


@dataclass(frozen=True, slots=True)
class ScanScope:
    """Which scans an alert is about: of one target, of one host, or (both None) all."""

    target: str | None = None
    host: str | None = None

    @classmethod
    def of_labels(cls, labels: Mapping[str, str] | None) -> ScanScope:
        """The alert's ``target`` label when set, else its ``host``, else every scan."""
        labels = labels or {}
        target = labels.get("target") or None
        if target is not None:
            return cls(target=target)
        return cls(host=labels.get("host") or None)

    def holds(self, scan: ScanInfo) -> bool:
        """Whether ``scan`` is one this scope is about."""
        if self.target is not None:
            return scan.target == self.target
        if self.host is not None:
            return scan.host == self.host
        return True

    def as_json(self) -> dict[str, str | None]:
        return {"target": self.target, "host": self.host}


class ContextBuilder:
    """Builds the security + performance context of an alert."""

    def __init__(self, store: Store, tracker: ScanTracker) -> None:
        self.store = store
        self.tracker = tracker

    def security(
        self,
        at_ms: int,
        labels: Mapping[str, str] | None = None,
        now_ms: int | None = None,
    ) -> dict[str, Any]:
        """The scans the alert is about (see ``ScanScope``), around ``at_ms``.

        ``scans`` lists the scope's scans that ran between 10 minutes before
        the alert and ``now_ms``, newest first, each naming its target.
        """
        scope = ScanScope.of_labels(labels)
        latest = self.tracker.latest_finished(scope)
        running = self.tracker.running_at(at_ms, scope)
        new = self._new_findings(latest) if latest else []
        end = max(at_ms, now_ms if now_ms is not None else at_ms)
        around = self.tracker.overlapping(scope, at_ms - PERF_BEFORE_MS, end)
        return {
            "scope": scope.as_json(),
            "latest_scan": self._with_pacing(latest),
            "new_findings": [_finding_json(f) for f in new[:NEW_FINDINGS_SHOWN]],
            "scan_running": self._with_pacing(running),
            "scans": [s.as_json() for s in around[:SCANS_SHOWN]],
        }

    def _new_findings(self, scan: ScanInfo) -> list[Finding]:
        """The scan's new findings: as heard, or the store's when fewer were heard.

        Through the event log a scan announces only the findings it sees first;
        a finding new to the baseline but seen by an earlier scan is in the store only.
        """
        heard = self.tracker.new_findings_of(scan.scan_id)
        if len(heard) >= min(scan.new_findings or 0, NEW_FINDINGS_SHOWN):
            return heard
        try:
            stored = self.store.findings(scan_id=scan.scan_id, limit=None)
        except Exception as exc:  # context is a help, never a reason to fail
            log.warning("alert context: reading scan %s's findings failed: %s", scan.scan_id, exc)
            return heard
        return [s.finding for s in stored if s.is_new] or heard

    def _with_pacing(self, scan: ScanInfo | None) -> dict[str, Any] | None:
        """The scan's JSON with how its impact budget paced it (``pacing``: None if unknown).

        One read of the scan's row: its pacing document is stored when it ends,
        so a scan still running has none yet.
        """
        if scan is None:
            return None
        out = scan.as_json()
        out["pacing"] = None
        try:
            record = self.store.scan(scan.scan_id)
        except Exception as exc:  # context is a help, never a reason to fail
            log.warning("alert context: reading scan %s failed: %s", scan.scan_id, exc)
            return out
        if record is not None and record.pacing is not None:
            pacing = PacingDocument.from_document(record.pacing)
            out["pacing"] = {
                "priority": pacing.priority,
                "budget_state": pacing.budget_state,
                "throttled_ms": pacing.throttled_ms,
                "within_budget": pacing.within_budget,
                "summary": pacing.summary(),
            }
        return out

    def performance(
        self, metric: str, series_labels: Mapping[str, str], at_ms: int, now_ms: int
    ) -> dict[str, Any]:
        recent: dict[str, Any] | None = None
        equal = dict(series_labels)
        if not metric.startswith("security_"):
            start = at_ms - PERF_BEFORE_MS
            found = self.store.query(metric, equal, start, now_ms, max_points=MAX_POINTS)
            exact = [p for p in found if p.labels == dict(series_labels)] or found
            if exact:
                p = exact[0]
                recent = {
                    "name": metric,
                    "labels": p.labels,
                    "timestamps_ms": p.timestamps.tolist(),
                    "values": [round(v, 4) for v in p.values.tolist()],
                }
        host = series_labels.get("host")
        return {"recent": recent, "host": host, "load": self._load(host, at_ms, now_ms)}

    def _load(self, host: str | None, at_ms: int, now_ms: int) -> dict[str, float | None]:
        start = at_ms - LOAD_AROUND_MS
        end = min(now_ms, at_ms + LOAD_AROUND_MS)
        out: dict[str, float | None] = {}
        for name in ("cpu_percent", "load_1m", "memory_percent"):
            equal = {"host": host} if host else None
            series = [
                p
                for p in self.store.query(name, equal, start, max(end, start))
                if "cpu" not in p.labels
            ]
            values = [p.values for p in series if p.values.size]
            out[name] = float(np.mean(np.concatenate(values))) if values else None
        return out

    def build(
        self, alert: Alert, rule: Rule | None, series_labels: Mapping[str, str], now_ms: int
    ) -> dict[str, Any]:
        """The full context (the API's ``context`` object)."""
        at = alert.active_since_ms or alert.updated_ms or now_ms
        # The series' labels first; the alert's own (a rule's grouping) fill in.
        about = {**alert.labels, **series_labels}
        security = self.security(at, about, now_ms)
        try:
            performance = self.performance(rule.metric if rule else "", series_labels, at, now_ms)
        except Exception as exc:  # context is a help, never a reason to fail
            log.warning("alert context: performance side failed: %s", exc)
            performance = {"recent": None, "host": series_labels.get("host"), "load": {}}
        text = self.sentence(alert, rule, security, performance)
        return {"security": security, "performance": performance, "text": text}

    @staticmethod
    def sentence(
        alert: Alert,
        rule: Rule | None,
        security: Mapping[str, Any],
        performance: Mapping[str, Any],
    ) -> str:
        """One sentence on both sides, for the summary."""
        running = security.get("scan_running")
        latest = security.get("latest_scan")
        # An alert about one target needs no name; on a host, say which target was scanned.
        named = not (security.get("scope") or {}).get("target")
        if running:
            scanners = ", ".join(running.get("scanners") or ()) or "all scanners"
            of = f" of {running['target']}" if named and running.get("target") else ""
            sec = (
                f"a security scan{of} ({scanners}) was running since "
                f"{clock_seconds(running['started_ms'])}"
            )
            sec += _throttled_clause(running)
            if latest and latest.get("new_findings") is not None:
                sec += f"; {latest['new_findings']} new findings in the last completed scan"
        elif latest:
            sec = "no security scan was running"
            if latest.get("new_findings") is not None:
                of = f" of {latest['target']}" if named and latest.get("target") else ""
                sec += (
                    f"; the last scan{of} ({clock_seconds(latest['finished_ms'] or 0)}) found "
                    f"{latest['new_findings']} new findings"
                )
            sec += _throttled_clause(latest)
        else:
            sec = "no security scan on record"
        parts = [sec]
        if alert.kind is MetricKind.SECURITY or (rule is not None and rule.is_security):
            load = performance.get("load") or {}
            perf = []
            if load.get("cpu_percent") is not None:
                perf.append(f"CPU {format_value(load['cpu_percent'])} %")
            if load.get("load_1m") is not None:
                perf.append(f"load {format_value(load['load_1m'])}")
            if load.get("memory_percent") is not None:
                perf.append(f"memory {format_value(load['memory_percent'])} %")
            if perf:
                host = performance.get("host")
                where = f" on {host}" if host else ""
                parts.append("machine" + where + ": " + ", ".join(perf))
        return "; ".join(parts)


def _throttled_clause(scan: Mapping[str, Any]) -> str:
    """`` (throttled 3.2 s by its impact budget)`` when the scan's pacing says so, else ""."""
    pacing = scan.get("pacing")
    if not pacing or not pacing.get("throttled_ms"):
        return ""
    return f" (throttled {pacing['throttled_ms'] / 1000:.1f} s by its impact budget)"
