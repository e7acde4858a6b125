"""The lifetime of each finding of a target: when it was first seen, last seen, fixed.

A finding is identified by its target and fingerprint. Its sightings are the
complete scans (ok, partial, failed) of the target whose findings hold it;
each sighting is dated by the scan's end. It is **fixed** at the end of the
first scan after its last sighting that ended ``ok`` without it: a partial or
failed scan may have missed the file, so its silence proves nothing. A
finding that comes back after being fixed is open again (``fixed_ms`` None),
its first sighting unchanged.

``lifetimes`` folds sightings into lifetimes; the store feeds it the scans of
a target oldest first, with the fingerprints each scan found.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from secperf.model import Severity


@dataclass(frozen=True, slots=True)
class FindingLifetime:
    """One finding of one target over time (times in UTC ms; ``fixed_ms`` None while present)."""

    fingerprint: str
    rule_id: str
    scanner: str
    severity: Severity
    path: str
    cwe: int | None
    first_seen_ms: int
    last_seen_ms: int
    fixed_ms: int | None
    target: str


@dataclass(frozen=True, slots=True)
class Sighting:
    """What a lifetime needs of one stored finding (``payload``: the Finding's JSON)."""

    fingerprint: str
    rule_id: str
    scanner: str
    severity: str
    path: str
    payload: str


@dataclass(frozen=True, slots=True)
class ScanSightings:
    """One complete scan of a target: when it ended, its status, and what it found."""

    target: str
    finished_ms: int
    status: str
    found: Iterable[Sighting]


def cwe_of(payload: str) -> int | None:
    """The ``cwe`` of a stored finding's JSON, None when absent or unreadable."""
    try:
        value = json.loads(payload).get("cwe")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(slots=True)
class _Open:
    latest: Sighting
    first_ms: int
    last_ms: int
    fixed_ms: int | None = None


def lifetimes(scans: Iterable[ScanSightings], since_ms: int) -> list[FindingLifetime]:
    """Fold ``scans`` (each target's oldest first) into lifetimes alive at or after ``since_ms``.

    Alive at or after ``since_ms``: still present, or fixed at ``since_ms`` or
    later. Ordered by first sighting, then target and fingerprint.
    """
    state: dict[str, dict[str, _Open]] = {}
    for scan in scans:
        of_target = state.setdefault(scan.target, {})
        seen: set[str] = set()
        for item in scan.found:
            seen.add(item.fingerprint)
            open_ = of_target.get(item.fingerprint)
            if open_ is None:
                of_target[item.fingerprint] = _Open(item, scan.finished_ms, scan.finished_ms)
            else:
                open_.latest = item
                open_.last_ms = scan.finished_ms
                open_.fixed_ms = None
        if scan.status != "ok":
            continue
        for fingerprint, open_ in of_target.items():
            if open_.fixed_ms is None and fingerprint not in seen:
                open_.fixed_ms = scan.finished_ms
    out = [
        FindingLifetime(
            fingerprint=fingerprint,
            rule_id=o.latest.rule_id,
            scanner=o.latest.scanner,
            severity=Severity(o.latest.severity),
            path=o.latest.path,
            cwe=cwe_of(o.latest.payload),
            first_seen_ms=o.first_ms,
            last_seen_ms=o.last_ms,
            fixed_ms=o.fixed_ms,
            target=target,
        )
        for target, of_target in state.items()
        for fingerprint, o in of_target.items()
        if o.fixed_ms is None or o.fixed_ms >= since_ms
    ]
    out.sort(key=lambda f: (f.first_seen_ms, f.target, f.fingerprint))
    return out
