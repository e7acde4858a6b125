"""Finding records: each scan's findings, with the triage in force on them."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Sequence, Set

from sqlalchemy import Connection, delete, func, select, update

from secperf.events import Event
from secperf.model import (
    Finding,
    Severity,
)
from secperf.security.triage import TriageState, effective_state, parse_state
from secperf.store.event_log import append_entries
from secperf.store.finding_history import FindingLifetime, ScanSightings, Sighting, lifetimes
from secperf.store.finding_rows import (
    detach,
    findings_digest,
    owner_of,
    previous_complete_scan,
    row_owner,
)
from secperf.store.record_base import (
    IN_BATCH,
    RecordMixin,
    _pending_for,
    clock_ms,
    from_json,
    require_text,
    to_json,
)
from secperf.store.scan_records import COMPLETE_SCAN_STATUSES
from secperf.store.schema import (
    findings,
    scans,
    triage_current,
)
from secperf.store.stored_finding import StoredFinding as StoredFinding  # re-exported
from secperf.store.triage_records import decision_from_row


class FindingRecordMixin(RecordMixin):
    """Findings of ``Store``: stored per scan and fingerprint, read with their triage."""

    def add_findings(
        self, scan_id: str, found: Iterable[Finding], new_fingerprints: Iterable[str] = ()
    ) -> int:
        """Store findings of a scan, one row per scan and fingerprint (re-adding replaces).

        Part of a scan's findings at a time (a very large scan, a bus batch):
        what is stored already stays. ``record_scan_findings`` stores a
        scan's whole set at once and shares rows with the previous scan.
        """
        require_text("scan_id", scan_id)
        by_fp = _by_fingerprint(found, "add_findings")
        if not by_fp:
            return 0
        new = set(new_fingerprints)
        with self._write_tx() as conn:
            detach(conn, scan_id)
            _write_rows(conn, scan_id, by_fp, new, replace=True)
        return len(by_fp)

    def record_scan_findings(
        self,
        scan_id: str,
        found: Iterable[Finding],
        new_fingerprints: Iterable[str] = (),
        *,
        announce: Callable[[Set[str]], Sequence[Event]] | None = None,
    ) -> Set[str]:
        """Store the whole finding set of a scan; returns the fingerprints first seen.

        When the set (every field, and which are new) equals that of the
        previous complete scan of the scan's target, no rows are written: the
        scan shares that scan's rows (see ``store/finding_rows.py``).
        Findings stored for the scan already (an import stores its own, then
        announces some) are never removed: ``found`` is added to them, as
        ``add_findings`` does.

        First seen: not found by the previous complete scan of the target.
        ``announce`` is given them inside the write transaction and returns
        the events to append to the event log with it (in the ``outbox`` in
        force, if any), so other processes hear of exactly what is new.
        """
        require_text("scan_id", scan_id)
        by_fp = _by_fingerprint(found, "record_scan_findings")
        new = set(new_fingerprints)
        digest = findings_digest(by_fp, new)
        with self._write_tx() as conn:
            row = conn.execute(
                select(scans.c.target, scans.c.findings_from, scans.c.findings_digest).where(
                    scans.c.scan_id == scan_id
                )
            ).first()
            stored = row is not None and row.findings_from is not None
            stored = stored or (
                conn.execute(
                    select(findings.c.id).where(findings.c.scan_id == scan_id).limit(1)
                ).first()
                is not None
            )
            previous = (
                None
                if row is None
                else previous_complete_scan(conn, row.target, scan_id, COMPLETE_SCAN_STATUSES)
            )
            first_seen: Set[str] = frozenset()
            if row is not None and row.findings_digest == digest:
                pass  # delivered again: stored already
            elif not stored and previous is not None and previous.findings_digest == digest:
                conn.execute(
                    update(scans)
                    .where(scans.c.scan_id == scan_id)
                    .values(findings_from=previous.owner, findings_digest=digest)
                )
            else:
                if stored:  # added to what is there, which no other scan may see change
                    detach(conn, scan_id)
                _write_rows(conn, scan_id, by_fp, new, replace=stored)
                if row is not None and not stored:
                    conn.execute(
                        update(scans)
                        .where(scans.c.scan_id == scan_id)
                        .values(findings_digest=digest)
                    )
                known: set[str] = set()
                if previous is not None:
                    known.update(
                        conn.execute(
                            select(findings.c.fingerprint).where(
                                findings.c.scan_id == previous.owner
                            )
                        ).scalars()
                    )
                first_seen = frozenset(by_fp.keys() - known)
            if announce is not None:
                self._announce_in(conn, announce(first_seen))
        return first_seen

    def _announce_in(self, conn: Connection, events: Sequence[Event]) -> None:
        """Append ``events`` with this transaction: to the open outbox, else on their own."""
        if not events:
            return
        pending = _pending_for(self)
        if pending is not None and not pending.appended:
            pending.events.extend(events)  # appended after the records, with its origin
        else:
            append_entries(conn, list(events), None, clock_ms())

    def findings(
        self,
        scan_id: str | None = None,
        severity_at_least: Severity | str | None = None,
        scanner: str | None = None,
        path_glob: str | None = None,
        state: TriageState | str | None = None,
        limit: int | None = 1000,
        *,
        now_ms: int | None = None,
    ) -> list[StoredFinding]:
        """Findings with their triage, filtered; ``state`` is the effective triage state."""
        wanted = None if state is None else parse_state(state)
        stmt = (
            select(findings, triage_current)
            .outerjoin(triage_current, triage_current.c.fingerprint == findings.c.fingerprint)
            .order_by(findings.c.id)
        )
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
        filtered_in_python = path_glob is not None or wanted is not None
        if limit is not None and not filtered_in_python:
            stmt = stmt.limit(limit)
        now = clock_ms() if now_ms is None else now_ms
        out: list[StoredFinding] = []
        with self._engine.connect() as conn:
            if scan_id is not None:  # its rows may be shared with an earlier scan
                stmt = stmt.where(findings.c.scan_id == row_owner(conn, scan_id))
            for row in conn.execute(stmt):
                m = row._mapping
                if path_glob is not None and not fnmatch.fnmatchcase(m[findings.c.path], path_glob):
                    continue
                decision = None
                if m[triage_current.c.state] is not None:
                    decision = decision_from_row(
                        m[findings.c.fingerprint],
                        m[triage_current.c.state],
                        m[triage_current.c.author],
                        m[triage_current.c.note],
                        m[triage_current.c.updated_ms],
                        m[triage_current.c.expires_ms],
                    )
                effective = effective_state(decision, now)
                if wanted is not None and effective is not wanted:
                    continue
                out.append(
                    StoredFinding(
                        m[findings.c.scan_id] if scan_id is None else scan_id,
                        from_json(Finding, m[findings.c.payload]),
                        bool(m[findings.c.is_new]),
                        effective,
                        decision,
                    )
                )
                if limit is not None and len(out) >= limit:
                    break
        return out

    def latest_scan_findings(self, target: str) -> list[StoredFinding]:
        """The findings of the newest complete scan of ``target`` (empty when none).

        Complete by status (ok, partial, failed): an interrupted or abandoned
        scan has an end but saw only part of the code.
        """
        with self._engine.connect() as conn:
            scan_id = conn.execute(
                select(scans.c.scan_id)
                .where(scans.c.target == target)
                .where(scans.c.status.in_(COMPLETE_SCAN_STATUSES))
                .order_by(scans.c.started_ms.desc(), scans.c.scan_id.desc())
                .limit(1)
            ).scalar()
        if scan_id is None:
            return []
        return self.findings(scan_id=scan_id, limit=None)

    def finding_history(self, target: str | None, since_ms: int) -> list[FindingLifetime]:
        """The lifetimes of the findings of ``target`` (None: every target) since ``since_ms``.

        First seen, last seen and fixed times as ``store/finding_history.py``
        defines them, from the complete scans stored; a finding fixed before
        ``since_ms`` is left out.
        """
        ended = func.coalesce(scans.c.finished_ms, scans.c.started_ms)
        complete = select(
            scans.c.scan_id,
            scans.c.target,
            ended.label("ended_ms"),
            scans.c.status,
            owner_of().label("owner"),
        ).where(scans.c.status.in_(COMPLETE_SCAN_STATUSES))
        if target is not None:
            complete = complete.where(scans.c.target == target)
        f = findings.c
        rows = select(f.scan_id, f.fingerprint, f.rule_id, f.scanner, f.severity, f.path, f.payload)
        owners = complete.with_only_columns(owner_of()).scalar_subquery()
        with self._engine.connect() as conn:
            ordered = conn.execute(
                complete.order_by(scans.c.target, scans.c.started_ms, scans.c.scan_id)
            ).all()
            by_owner: dict[str, list[Sighting]] = {}
            for r in conn.execute(rows.where(f.scan_id.in_(owners))):
                by_owner.setdefault(r.scan_id, []).append(
                    Sighting(r.fingerprint, r.rule_id, r.scanner, r.severity, r.path, r.payload)
                )
        sightings = (
            ScanSightings(s.target, int(s.ended_ms), s.status, by_owner.get(s.owner, ()))
            for s in ordered
        )
        return lifetimes(sightings, since_ms)


def _by_fingerprint(found: Iterable[Finding], where: str) -> dict[str, Finding]:
    """``found`` by fingerprint (the last of each); TypeError for anything but a Finding."""
    by_fp: dict[str, Finding] = {}
    for item in found:
        if not isinstance(item, Finding):
            raise TypeError(f"{where} expects Finding objects, got {type(item).__name__}")
        by_fp[item.fingerprint] = item
    return by_fp


def _write_rows(
    conn: Connection,
    scan_id: str,
    by_fp: dict[str, Finding],
    new: Set[str],
    *,
    replace: bool,
) -> None:
    """Write a scan's rows for ``by_fp`` (``replace``: over its rows of those fingerprints)."""
    if replace:
        fps = list(by_fp)
        for i in range(0, len(fps), IN_BATCH):
            conn.execute(
                delete(findings)
                .where(findings.c.scan_id == scan_id)
                .where(findings.c.fingerprint.in_(fps[i : i + IN_BATCH]))
            )
    if not by_fp:
        return
    conn.execute(
        findings.insert(),
        [
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
        ],
    )
