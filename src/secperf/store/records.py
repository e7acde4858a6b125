"""Records: scans, findings, triage, baselines, alerts, silences, gate runs, benchmarks.

Each row has the columns queries filter on plus the model object as a JSON
payload, serialised with pydantic's TypeAdapter of the model dataclass (as
``events.py`` does), so a row reads back as the exact object written. Writes
that may be delivered twice (bus re-delivery) are idempotent upserts written
as select-then-insert/update, which both engines run unchanged.
"""

from __future__ import annotations

import fnmatch
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import psutil
from pydantic import TypeAdapter
from sqlalchemy import Connection, Engine, delete, func, select, update

from secperf.events import AlertChanged, local_host
from secperf.model import (
    Alert,
    AlertState,
    BenchmarkResult,
    Finding,
    GateResult,
    ScanCost,
    SecurityMetrics,
    Severity,
)
from secperf.store.schema import (
    alert_transitions,
    alerts,
    baselines,
    benchmark_results,
    findings,
    gate_runs,
    scans,
    silences,
    triage_current,
    triage_history,
)

T = TypeVar("T")

TRIAGE_STATES = ("open", "false_positive", "accepted_risk", "fixed")

#: Every status a scan row may hold. ``running`` until the scan ends; ``ok``,
#: ``partial`` (some files or scanners failed) or ``failed`` as the scan
#: reported it; ``interrupted`` when it was stopped cleanly (SIGTERM, Ctrl-C);
#: ``abandoned`` when its process died without a word, set by the next process
#: that opens the store; ``unknown`` for a cost recorded before its scan.
SCAN_STATUSES = ("running", "ok", "partial", "failed", "interrupted", "abandoned", "unknown")
#: Statuses of a scan that ended: its metrics (when any) are the whole scan's.
COMPLETE_SCAN_STATUSES = ("ok", "partial", "failed")

#: A running scan whose owner (on another host, or unknown) has not been seen
#: for this long is closed as abandoned. Owners refresh their heartbeat every
#: few seconds (``StoreWriter``), so only a dead or cut-off owner goes quiet.
ABANDONED_AFTER_MS = 5 * 60_000
#: Slack between a process's start time and its scan's, for clock granularity.
_CREATE_TIME_SLACK_MS = 2_000
_IN_BATCH = 500


_ADAPTERS: dict[type[Any], TypeAdapter[Any]] = {}


def _adapter(cls: type[Any]) -> TypeAdapter[Any]:
    adapter = _ADAPTERS.get(cls)
    if adapter is None:
        adapter = _ADAPTERS[cls] = TypeAdapter(cls)
    return adapter


def to_json(obj: Any) -> str:
    """A model dataclass as JSON text."""
    return _adapter(type(obj)).dump_json(obj).decode()


def from_json(cls: type[T], text: str) -> T:
    """The model dataclass ``cls`` back from ``to_json``'s text."""
    value: T = _adapter(cls).validate_json(text)
    return value


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class ScanRecord:
    """One scan as stored: its lifecycle plus metrics and cost when known."""

    scan_id: str
    target: str
    started_ms: int
    finished_ms: int | None
    status: str
    error: str | None
    scanners: tuple[str, ...]
    metrics: SecurityMetrics | None
    cost: ScanCost | None
    owner_pid: int | None = None
    owner_host: str | None = None
    heartbeat_ms: int | None = None


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
        now = _now_ms() if now_ms is None else now_ms
        if self.expires_ms is not None and self.expires_ms <= now:
            return "open"
        return self.state


@dataclass(frozen=True, slots=True)
class StoredFinding:
    """A finding of one scan with whether that scan saw it first and its triage."""

    scan_id: str
    finding: Finding
    is_new: bool
    triage_state: str = "open"
    triage: TriageEntry | None = None


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


@dataclass(frozen=True, slots=True)
class RecordRetention:
    """Rows retention removed per kind of record."""

    scans: int = 0
    findings: int = 0
    alert_transitions: int = 0
    alerts: int = 0
    silences: int = 0
    gate_runs: int = 0


def _require_text(what: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")
    return value


def _owner_gone(row: Any, here: str, now_ms: int, stale_after_ms: int) -> str | None:
    """Why the owner of a running scan row is gone, or None while it may be alive."""
    if row.owner_host == here and row.owner_pid is not None:
        pid = int(row.owner_pid)
        try:
            proc = psutil.Process(pid)
            zombie = proc.status() == psutil.STATUS_ZOMBIE
            born_ms = proc.create_time() * 1000
        except psutil.NoSuchProcess:
            return f"its process {pid} on {here} is gone"
        except psutil.Error:  # not ours to inspect: it runs, so it may be the owner
            return None
        if zombie:
            return f"its process {pid} on {here} is gone"
        if born_ms > row.started_ms + _CREATE_TIME_SLACK_MS:
            return f"its process {pid} on {here} is gone (the pid now belongs to a later process)"
        return None
    last = row.heartbeat_ms if row.heartbeat_ms is not None else row.started_ms
    if now_ms - last < stale_after_ms:
        return None
    who = f"process {row.owner_pid} on {row.owner_host}" if row.owner_host else "its owner"
    return f"no heartbeat from {who} for {(now_ms - last) // 1000} s"


def _triage_from_row(row: Any) -> TriageEntry:
    return TriageEntry(
        row.fingerprint, row.state, row.author, row.note, row.expires_ms, row.updated_ms
    )


class RecordStoreMixin:
    """The record half of ``Store``; expects ``_engine``, ``_writer`` and ``_lock`` from it.

    Reads go through ``_engine``; every write transaction through ``_writer``
    (``engine.write_engine``), which takes SQLite's write lock at BEGIN.
    """

    _engine: Engine
    _writer: Engine
    _lock: threading.RLock

    # ------------------------------------------------------------------ scans

    def _scan_exists(self, conn: Connection, scan_id: str) -> bool:
        found = conn.execute(select(scans.c.scan_id).where(scans.c.scan_id == scan_id)).first()
        return found is not None

    def record_scan_started(
        self,
        scan_id: str,
        target: str,
        started_ms: int,
        scanners: Iterable[str] = (),
        *,
        owner_pid: int | None = None,
        owner_host: str | None = None,
    ) -> None:
        """Record that a scan began (idempotent), with the process that runs it.

        The owner lets the next process that opens the store tell a scan whose
        process died from one still running (``close_abandoned_scans``).
        """
        _require_text("scan_id", scan_id)
        values: dict[str, Any] = {
            "target": target,
            "started_ms": started_ms,
            "scanners": list(scanners),
        }
        if owner_pid is not None or owner_host is not None:
            values.update(owner_pid=owner_pid, owner_host=owner_host)
        with self._lock, self._writer.begin() as conn:
            if self._scan_exists(conn, scan_id):
                conn.execute(update(scans).where(scans.c.scan_id == scan_id).values(**values))
            else:
                conn.execute(
                    scans.insert().values(
                        scan_id=scan_id, status="running", heartbeat_ms=started_ms, **values
                    )
                )

    def record_scan_completed(
        self, metrics: SecurityMetrics, status: str, error: str | None = None
    ) -> None:
        """Record a scan's outcome and metrics (creates the scan row when missing).

        ``status`` is one of ``SCAN_STATUSES`` other than ``running``; a scan
        closed as abandoned that reports after all gets its real outcome.
        """
        _require_text("status", status)
        if status not in SCAN_STATUSES or status == "running":
            ended = ", ".join(s for s in SCAN_STATUSES if s != "running")
            raise ValueError(
                f"scan {metrics.scan_id}: status {status!r} is not a scan outcome;"
                f" expected one of {ended}"
            )
        values = {
            "finished_ms": metrics.finished_ms,
            "status": status,
            "error": error,
            "metrics": to_json(metrics),
        }
        with self._lock, self._writer.begin() as conn:
            if self._scan_exists(conn, metrics.scan_id):
                # ScanStarted is published after discovery; the metrics hold the true start.
                conn.execute(
                    update(scans)
                    .where(scans.c.scan_id == metrics.scan_id)
                    .values(started_ms=metrics.started_ms, **values)
                )
            else:
                conn.execute(
                    scans.insert().values(
                        scan_id=metrics.scan_id,
                        target=metrics.target,
                        started_ms=metrics.started_ms,
                        scanners=sorted(metrics.scanner_durations_ms),
                        **values,
                    )
                )

    def touch_scans(self, scan_ids: Iterable[str], now_ms: int | None = None) -> int:
        """Refresh the heartbeat of those of ``scan_ids`` still running; returns how many.

        The process that owns running scans calls this every few seconds, so
        other hosts can tell it is alive (see ``close_abandoned_scans``).
        """
        ids = sorted(set(scan_ids))
        if not ids:
            return 0
        now = _now_ms() if now_ms is None else now_ms
        touched = 0
        with self._lock, self._writer.begin() as conn:
            for i in range(0, len(ids), _IN_BATCH):
                touched += conn.execute(
                    update(scans)
                    .where(scans.c.scan_id.in_(ids[i : i + _IN_BATCH]))
                    .where(scans.c.status == "running")
                    .values(heartbeat_ms=now)
                ).rowcount
        return int(touched)

    def close_abandoned_scans(
        self,
        *,
        now_ms: int | None = None,
        host: str | None = None,
        stale_after_ms: int = ABANDONED_AFTER_MS,
    ) -> list[str]:
        """Close as ``abandoned`` every running scan whose owner is gone; returns their ids.

        An owner on this host (``host``, default this machine's name) is gone
        when its pid no longer runs, is a zombie, or belongs to a process that
        started after the scan (the pid was reused). An owner elsewhere, or a
        scan recorded without one, is gone when its heartbeat is older than
        ``stale_after_ms``. The scan's end is its last heartbeat. A scan that
        completed or was touched meanwhile is left alone.
        """
        now = _now_ms() if now_ms is None else now_ms
        here = local_host() if host is None else host
        cols = (
            scans.c.scan_id,
            scans.c.started_ms,
            scans.c.owner_pid,
            scans.c.owner_host,
            scans.c.heartbeat_ms,
        )
        with self._engine.connect() as conn:
            rows = conn.execute(select(*cols).where(scans.c.status == "running")).all()
        gone: list[tuple[Any, str]] = []
        for row in rows:
            reason = _owner_gone(row, here, now, stale_after_ms)
            if reason is not None:
                gone.append((row, reason))
        if not gone:
            return []
        closed: list[str] = []
        with self._lock, self._writer.begin() as conn:
            for row, reason in gone:
                seen = row.heartbeat_ms
                result = conn.execute(
                    update(scans)
                    .where(scans.c.scan_id == row.scan_id)
                    .where(scans.c.status == "running")
                    .where(
                        scans.c.heartbeat_ms.is_(None)
                        if seen is None
                        else scans.c.heartbeat_ms == seen
                    )
                    .values(
                        status="abandoned",
                        finished_ms=seen if seen is not None else row.started_ms,
                        error=f"abandoned: {reason}",
                    )
                )
                if result.rowcount:
                    closed.append(row.scan_id)
        return closed

    def record_scan_cost(self, cost: ScanCost) -> None:
        """Attach what a scan cost the machine (creates the scan row when missing)."""
        with self._lock, self._writer.begin() as conn:
            if self._scan_exists(conn, cost.scan_id):
                conn.execute(
                    update(scans).where(scans.c.scan_id == cost.scan_id).values(cost=to_json(cost))
                )
            else:
                conn.execute(
                    scans.insert().values(
                        scan_id=cost.scan_id,
                        target="",
                        started_ms=cost.started_ms,
                        finished_ms=cost.finished_ms,
                        status="unknown",
                        scanners=[],
                        cost=to_json(cost),
                    )
                )

    @staticmethod
    def _scan_from_row(row: Any) -> ScanRecord:
        return ScanRecord(
            scan_id=row.scan_id,
            target=row.target,
            started_ms=row.started_ms,
            finished_ms=row.finished_ms,
            status=row.status,
            error=row.error,
            scanners=tuple(row.scanners),
            metrics=from_json(SecurityMetrics, row.metrics) if row.metrics else None,
            cost=from_json(ScanCost, row.cost) if row.cost else None,
            owner_pid=row.owner_pid,
            owner_host=row.owner_host,
            heartbeat_ms=row.heartbeat_ms,
        )

    def scans(self, limit: int = 50, target: str | None = None) -> list[ScanRecord]:
        """The newest scans first, optionally of one target."""
        stmt = select(scans).order_by(scans.c.started_ms.desc(), scans.c.scan_id.desc())
        if target is not None:
            stmt = stmt.where(scans.c.target == target)
        with self._engine.connect() as conn:
            return [self._scan_from_row(r) for r in conn.execute(stmt.limit(limit))]

    def scan(self, scan_id: str) -> ScanRecord | None:
        """One scan by id, or None."""
        with self._engine.connect() as conn:
            row = conn.execute(select(scans).where(scans.c.scan_id == scan_id)).first()
        return None if row is None else self._scan_from_row(row)

    # ------------------------------------------------------------------ findings

    def add_findings(
        self, scan_id: str, found: Iterable[Finding], new_fingerprints: Iterable[str] = ()
    ) -> int:
        """Store a scan's findings, one row per scan and fingerprint (re-adding replaces)."""
        _require_text("scan_id", scan_id)
        new = set(new_fingerprints)
        by_fp: dict[str, Finding] = {}
        for item in found:
            if not isinstance(item, Finding):
                raise TypeError(f"add_findings expects Finding objects, got {type(item).__name__}")
            by_fp[item.fingerprint] = item
        if not by_fp:
            return 0
        rows = [
            {
                "scan_id": scan_id,
                "fingerprint": fp,
                "rule_id": f.rule_id,
                "scanner": f.scanner,
                "severity": Severity(f.severity).value,
                "severity_rank": Severity(f.severity).rank,
                "path": f.path,
                "line": f.line,
                "is_new": fp in new,
                "payload": to_json(f),
            }
            for fp, f in by_fp.items()
        ]
        fps = list(by_fp)
        with self._lock, self._writer.begin() as conn:
            for i in range(0, len(fps), _IN_BATCH):
                conn.execute(
                    delete(findings)
                    .where(findings.c.scan_id == scan_id)
                    .where(findings.c.fingerprint.in_(fps[i : i + _IN_BATCH]))
                )
            conn.execute(findings.insert(), rows)
        return len(rows)

    def findings(
        self,
        scan_id: str | None = None,
        severity_at_least: Severity | str | None = None,
        scanner: str | None = None,
        path_glob: str | None = None,
        state: str | None = None,
        limit: int | None = 1000,
        *,
        now_ms: int | None = None,
    ) -> list[StoredFinding]:
        """Findings with their triage, filtered; ``state`` is the effective triage state."""
        if state is not None and state not in TRIAGE_STATES:
            raise ValueError(f"unknown triage state {state!r}; expected one of {TRIAGE_STATES}")
        stmt = (
            select(findings, triage_current)
            .outerjoin(triage_current, triage_current.c.fingerprint == findings.c.fingerprint)
            .order_by(findings.c.id)
        )
        if scan_id is not None:
            stmt = stmt.where(findings.c.scan_id == scan_id)
        if severity_at_least is not None:
            floor = (
                Severity.parse(severity_at_least)
                if isinstance(severity_at_least, str)
                and not isinstance(severity_at_least, Severity)
                else Severity(severity_at_least)
            )
            stmt = stmt.where(findings.c.severity_rank >= floor.rank)
        if scanner is not None:
            stmt = stmt.where(findings.c.scanner == scanner)
        filtered_in_python = path_glob is not None or state is not None
        if limit is not None and not filtered_in_python:
            stmt = stmt.limit(limit)
        now = _now_ms() if now_ms is None else now_ms
        out: list[StoredFinding] = []
        with self._engine.connect() as conn:
            for row in conn.execute(stmt):
                m = row._mapping
                if path_glob is not None and not fnmatch.fnmatchcase(m[findings.c.path], path_glob):
                    continue
                entry = None
                if m[triage_current.c.state] is not None:
                    entry = TriageEntry(
                        m[findings.c.fingerprint],
                        m[triage_current.c.state],
                        m[triage_current.c.author],
                        m[triage_current.c.note],
                        m[triage_current.c.expires_ms],
                        m[triage_current.c.updated_ms],
                    )
                effective = entry.effective_state(now) if entry else "open"
                if state is not None and effective != state:
                    continue
                out.append(
                    StoredFinding(
                        m[findings.c.scan_id],
                        from_json(Finding, m[findings.c.payload]),
                        bool(m[findings.c.is_new]),
                        effective,
                        entry,
                    )
                )
                if limit is not None and len(out) >= limit:
                    break
        return out

    def latest_scan_findings(self, target: str) -> list[StoredFinding]:
        """The findings of the newest finished scan of ``target`` (empty when none)."""
        with self._engine.connect() as conn:
            scan_id = conn.execute(
                select(scans.c.scan_id)
                .where(scans.c.target == target)
                .where(scans.c.finished_ms.is_not(None))
                .order_by(scans.c.started_ms.desc(), scans.c.scan_id.desc())
                .limit(1)
            ).scalar()
        if scan_id is None:
            return []
        return self.findings(scan_id=scan_id, limit=None)

    # ------------------------------------------------------------------ triage

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
        _require_text("fingerprint", fingerprint)
        _require_text("author", author)
        if state not in TRIAGE_STATES:
            raise ValueError(f"unknown triage state {state!r}; expected one of {TRIAGE_STATES}")
        now = _now_ms() if now_ms is None else now_ms
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

    # ------------------------------------------------------------------ baselines

    def save_baseline(self, name: str, fingerprints: Iterable[str], created_ms: int) -> int:
        """Replace the baseline ``name`` with ``fingerprints``; returns its size."""
        _require_text("baseline name", name)
        unique = sorted(set(fingerprints))
        with self._lock, self._writer.begin() as conn:
            conn.execute(delete(baselines).where(baselines.c.name == name))
            if unique:
                conn.execute(
                    baselines.insert(),
                    [{"name": name, "fingerprint": fp, "created_ms": created_ms} for fp in unique],
                )
        return len(unique)

    def baseline(self, name: str) -> set[str]:
        """The fingerprints of baseline ``name`` (empty when it does not exist)."""
        with self._engine.connect() as conn:
            return set(
                conn.execute(
                    select(baselines.c.fingerprint).where(baselines.c.name == name)
                ).scalars()
            )

    def baseline_names(self) -> list[str]:
        """Every saved baseline's name."""
        with self._engine.connect() as conn:
            return list(
                conn.execute(
                    select(baselines.c.name).distinct().order_by(baselines.c.name)
                ).scalars()
            )

    # ------------------------------------------------------------------ alerts

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
        _require_text("alert fingerprint", alert.fingerprint)
        with self._lock, self._writer.begin() as conn:
            self._upsert_alert(conn, alert)

    def record_alert_transition(self, event: AlertChanged) -> bool:
        """Append a lifecycle change and update the alert; False if already recorded."""
        alert = event.alert
        with self._lock, self._writer.begin() as conn:
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
        _require_text("silence author", author)
        with self._lock, self._writer.begin() as conn:
            result = conn.execute(
                silences.insert().values(
                    matchers=matchers,
                    starts_ms=starts_ms,
                    ends_ms=ends_ms,
                    author=author,
                    reason=reason,
                    created_ms=_now_ms() if created_ms is None else created_ms,
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

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
        with self._lock, self._writer.begin() as conn:
            result = conn.execute(
                update(silences)
                .where(silences.c.id == silence_id)
                .where(silences.c.ends_ms > now_ms)
                .values(ends_ms=now_ms)
            )
            return bool(result.rowcount)

    # ------------------------------------------------------------------ gate runs

    def add_gate_run(self, result: GateResult) -> None:
        """Store a gate verdict (re-adding the same run id replaces it)."""
        _require_text("gate run_id", result.run_id)
        values = {
            "target": result.target,
            "started_ms": result.started_ms,
            "finished_ms": result.finished_ms,
            "verdict": result.verdict.value,
            "commit": result.commit,
            "payload": to_json(result),
        }
        with self._lock, self._writer.begin() as conn:
            found = conn.execute(
                select(gate_runs.c.run_id).where(gate_runs.c.run_id == result.run_id)
            ).first()
            if found is None:
                conn.execute(gate_runs.insert().values(run_id=result.run_id, **values))
            else:
                conn.execute(
                    update(gate_runs).where(gate_runs.c.run_id == result.run_id).values(**values)
                )

    def gate_runs(self, limit: int = 50, target: str | None = None) -> list[GateResult]:
        """The newest gate runs first."""
        stmt = select(gate_runs.c.payload).order_by(
            gate_runs.c.started_ms.desc(), gate_runs.c.run_id.desc()
        )
        if target is not None:
            stmt = stmt.where(gate_runs.c.target == target)
        with self._engine.connect() as conn:
            return [from_json(GateResult, p) for p in conn.execute(stmt.limit(limit)).scalars()]

    # ------------------------------------------------------------------ benchmarks

    def add_benchmark_results(self, results: Iterable[BenchmarkResult]) -> int:
        """Store results not stored yet (identity: name, commit, machine, timestamp)."""
        fresh: dict[tuple[str, str, str, int], BenchmarkResult] = {}
        for r in results:
            if not isinstance(r, BenchmarkResult):
                raise TypeError(f"expected BenchmarkResult objects, got {type(r).__name__}")
            _require_text("benchmark name", r.name)
            fresh[(r.name, r.commit or "", r.machine, r.timestamp_ms)] = r
        if not fresh:
            return 0
        with self._lock, self._writer.begin() as conn:
            names = sorted({k[0] for k in fresh})
            for i in range(0, len(names), _IN_BATCH):
                stmt = select(
                    benchmark_results.c.name,
                    benchmark_results.c.commit,
                    benchmark_results.c.machine,
                    benchmark_results.c.timestamp_ms,
                ).where(benchmark_results.c.name.in_(names[i : i + _IN_BATCH]))
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
        return len(fresh)

    def benchmark_results(
        self, name: str | None = None, machine: str | None = None, limit: int | None = 1000
    ) -> list[BenchmarkResult]:
        """The newest ``limit`` results, returned oldest first (chronological)."""
        stmt = select(benchmark_results.c.payload).order_by(
            benchmark_results.c.timestamp_ms.desc(), benchmark_results.c.id.desc()
        )
        if name is not None:
            stmt = stmt.where(benchmark_results.c.name == name)
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

    # ------------------------------------------------------------------ retention

    def _retain_records(self, conn: Connection, cutoff_ms: int) -> RecordRetention:
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
        removed_findings = 0
        for i in range(0, len(old_ids), _IN_BATCH):
            part = old_ids[i : i + _IN_BATCH]
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
        old_gates = conn.execute(
            delete(gate_runs).where(gate_runs.c.finished_ms < cutoff_ms)
        ).rowcount
        return RecordRetention(
            scans=len(old_ids),
            findings=int(removed_findings),
            alert_transitions=int(transitions),
            alerts=int(old_alerts),
            silences=int(old_silences),
            gate_runs=int(old_gates),
        )
