"""Each finding's life on a target: first seen, last seen, and when it was fixed.

The times are the store's one definition (``Store.finding_history``, see
``store/finding_history.py``); this module adds to each lifetime the finding
as its latest sighting stored it, which the report needs for its category,
location, secret preview and dependency details.
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


def finding_lives(
    store: Store, target: str, scans: list[ScanRecord], since_ms: int, until_ms: int
) -> list[FindingLife]:
    """The lifetimes of ``target``'s findings alive in ``[since_ms, until_ms]``, with each finding.

    ``scans`` are the target's complete scans up to ``until_ms``, oldest first:
    they are read newest first, only until every finding has been found.
    """
    lifetimes = [
        lt for lt in store.finding_history(target, since_ms) if lt.first_seen_ms <= until_ms
    ]
    wanted = {lt.fingerprint for lt in lifetimes}
    found: dict[str, Finding] = {}
    for record in reversed(scans):
        if wanted <= found.keys():
            break
        for row in store.findings(scan_id=record.scan_id, limit=None):
            found.setdefault(row.finding.fingerprint, row.finding)
    return [
        FindingLife(
            target,
            found[lt.fingerprint],
            lt.first_seen_ms,
            lt.last_seen_ms,
            # Fixed after the period: still there at its end.
            lt.fixed_ms if lt.fixed_ms is not None and lt.fixed_ms <= until_ms else None,
        )
        for lt in lifetimes
        if lt.fingerprint in found
    ]
