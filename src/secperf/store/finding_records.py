"""Finding records: each scan's findings, with the triage in force on them."""

from __future__ import annotations

import fnmatch
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select

from secperf.model import (
    Finding,
    Severity,
)
from secperf.security.triage import TriageDecision, TriageState, effective_state, parse_state
from secperf.store.finding_history import FindingLifetime, ScanSightings, Sighting, lifetimes
from secperf.store.record_base import (
    IN_BATCH,
    RecordMixin,
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
from secperf.store.triage_records import decision_from_row


@dataclass(frozen=True, slots=True)
class StoredFinding:
    """A finding of one scan with whether that scan saw it first and its triage."""

    scan_id: str
    finding: Finding
    is_new: bool
    triage_state: TriageState = TriageState.OPEN
    triage: TriageDecision | None = None


class FindingRecordMixin(RecordMixin):
    """Findings of ``Store``: stored per scan and fingerprint, read with their triage."""

    def add_findings(
        self, scan_id: str, found: Iterable[Finding], new_fingerprints: Iterable[str] = ()
    ) -> int:
        """Store a scan's findings, one row per scan and fingerprint (re-adding replaces)."""
        require_text("scan_id", scan_id)
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
        with self._write_tx() as conn:
            for i in range(0, len(fps), IN_BATCH):
                conn.execute(
                    delete(findings)
                    .where(findings.c.scan_id == scan_id)
                    .where(findings.c.fingerprint.in_(fps[i : i + IN_BATCH]))
                )
            conn.execute(findings.insert(), rows)
        return len(rows)

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
        filtered_in_python = path_glob is not None or wanted is not None
        if limit is not None and not filtered_in_python:
            stmt = stmt.limit(limit)
        now = clock_ms() if now_ms is None else now_ms
        out: list[StoredFinding] = []
        with self._engine.connect() as conn:
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
                        m[findings.c.scan_id],
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
        f = findings.c
        ended = func.coalesce(scans.c.finished_ms, scans.c.started_ms)
        stmt = (
            select(
                scans.c.scan_id,
                scans.c.target,
                ended.label("ended_ms"),
                scans.c.status,
                f.fingerprint,
                f.rule_id,
                f.scanner,
                f.severity,
                f.path,
                f.payload,
            )
            .select_from(scans.outerjoin(findings, f.scan_id == scans.c.scan_id))
            .where(scans.c.status.in_(COMPLETE_SCAN_STATUSES))
            .order_by(scans.c.target, scans.c.started_ms, scans.c.scan_id)
        )
        if target is not None:
            stmt = stmt.where(scans.c.target == target)
        with self._engine.connect() as conn:
            rows = conn.execute(stmt).all()
        return lifetimes(_scan_sightings(rows), since_ms)


def _scan_sightings(rows: Iterable[Any]) -> Iterator[ScanSightings]:
    """Rows of scans joined with their findings (ordered by scan) as one item per scan."""
    for _scan_id, group in itertools.groupby(rows, key=lambda r: r.scan_id):
        items = list(group)
        first = items[0]
        yield ScanSightings(
            first.target,
            int(first.ended_ms),
            first.status,
            [
                Sighting(r.fingerprint, r.rule_id, r.scanner, r.severity, r.path, r.payload)
                for r in items
                if r.fingerprint is not None
            ],
        )
