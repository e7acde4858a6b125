"""Each finding's life on a target: first seen, last seen, and when it was fixed.

Read from the store's complete scans of the target, oldest first: a finding
is first seen when the first scan that reported it ended, and fixed when
the first later complete scan that ran its scanner and did not report it
(a scan without that scanner, such as an import of another tool's results,
says nothing about it). A finding reported again after a fix opens a new
life; the report counts its latest.
"""

from __future__ import annotations

from dataclasses import dataclass

from secperf.model import Finding
from secperf.store import Store
from secperf.store.scan_records import ScanRecord

#: Enough for years of hourly scans of one target; the store reads newest first.
MAX_SCANS = 100_000


@dataclass(frozen=True, slots=True)
class FindingLife:
    """One finding on one target from first seen to fixed (None while it is still there)."""

    target: str
    finding: Finding  # as the latest scan that reported it stored it
    first_seen_ms: int
    last_seen_ms: int
    fixed_ms: int | None = None


def complete_scans(store: Store, target: str, until_ms: int) -> list[ScanRecord]:
    """The complete scans and imports of ``target`` started up to ``until_ms``, oldest first."""
    records = [
        r
        for r in store.scans(limit=MAX_SCANS, target=target)
        if r.complete and r.started_ms <= until_ms
    ]
    records.sort(key=lambda r: (r.started_ms, r.scan_id))
    return records


def finding_lives(store: Store, target: str, scans: list[ScanRecord]) -> list[FindingLife]:
    """The life of every finding ``scans`` (complete, oldest first) reported on ``target``."""
    open_lives: dict[str, FindingLife] = {}
    closed: list[FindingLife] = []
    for record in scans:
        seen_at = record.finished_ms if record.finished_ms is not None else record.started_ms
        reported = {
            row.finding.fingerprint: row.finding
            for row in store.findings(scan_id=record.scan_id, limit=None)
        }
        ran = set(record.scanners)
        for fingerprint, life in list(open_lives.items()):
            if fingerprint in reported:
                continue
            # Without the scanner list (older rows) a complete scan of the kind
            # that found it is taken to have looked again.
            looked = life.finding.scanner in ran if ran else not record.is_import
            if looked:
                closed.append(
                    FindingLife(
                        target,
                        life.finding,
                        life.first_seen_ms,
                        life.last_seen_ms,
                        seen_at,
                    )
                )
                del open_lives[fingerprint]
        for fingerprint, finding in reported.items():
            before = open_lives.get(fingerprint)
            first = before.first_seen_ms if before is not None else seen_at
            open_lives[fingerprint] = FindingLife(target, finding, first, seen_at)
    latest: dict[str, FindingLife] = {}
    for life in [*closed, *open_lives.values()]:
        kept = latest.get(life.finding.fingerprint)
        if kept is None or life.first_seen_ms >= kept.first_seen_ms:
            latest[life.finding.fingerprint] = life
    return sorted(latest.values(), key=lambda x: (x.first_seen_ms, x.finding.fingerprint))
