"""``Store.finding_history``: first seen, last seen and fixed times of each finding."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from secperf.model import Finding, SecurityMetrics, Severity, make_fingerprint
from secperf.store import Store
from secperf.store.finding_history import FindingLifetime
from support.factories import make_finding

T0 = 1_700_000_000_000
STEP = 60_000


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = Store.open(store_url)
    yield s
    s.close()


def finding(rule: str, path: str, *, cwe: int | None = None, line: int = 3) -> Finding:
    return make_finding(
        rule,
        path,
        Severity.HIGH,
        fingerprint=make_fingerprint(rule, path, f"code {rule}"),
        line=line,
        cwe=cwe,
    )


def scan(
    store: Store,
    scan_id: str,
    target: str,
    n: int,
    found: list[Finding],
    status: str = "ok",
) -> int:
    """Store a complete scan ``n`` steps after T0 with ``found``; returns its end."""
    started = T0 + n * STEP
    store.record_scan_started(scan_id, target, started, ["bandit"])
    store.add_findings(scan_id, found, {f.fingerprint for f in found})
    metrics = SecurityMetrics(
        scan_id=scan_id,
        target=target,
        started_ms=started,
        finished_ms=started + 1000,
        scan_duration_ms=1000.0,
        violations_found=len(found),
        false_positive_rate=0.0,
        vulnerability_severity_counts={"high": len(found)} if found else {},
        scan_coverage_percent=100.0,
        files_scanned=3,
        scanner_durations_ms={"bandit": 500.0},
    )
    store.record_scan_completed(metrics, status)
    return started + 1000


def by_fp(items: list[FindingLifetime]) -> dict[str, FindingLifetime]:
    return {i.fingerprint: i for i in items}


def test_first_seen_last_seen_and_fixed(store: Store) -> None:
    a = finding("B602", "src/run.py", cwe=78)
    b = finding("B101", "src/test_x.py")
    c = finding("B303", "src/hash.py", cwe=327)
    end1 = scan(store, "s1", "/repo", 1, [a, b])
    end2 = scan(store, "s2", "/repo", 2, [a, b, c])
    # A partial scan that misses b proves nothing: b is not fixed by it.
    scan(store, "s3", "/repo", 3, [a, c], status="partial")
    end4 = scan(store, "s4", "/repo", 4, [a, c])
    # A running scan (no outcome) is not a sighting, nor an absence.
    store.record_scan_started("s5", "/repo", T0 + 5 * STEP, ["bandit"])
    store.add_findings("s5", [], set())
    # Another target's findings are another target's.
    end_other = scan(store, "o1", "/other", 2, [a])

    history = by_fp(store.finding_history("/repo", 0))
    assert set(history) == {a.fingerprint, b.fingerprint, c.fingerprint}
    ha = history[a.fingerprint]
    assert (ha.rule_id, ha.scanner, ha.severity, ha.path, ha.cwe, ha.target) == (
        "B602",
        "bandit",
        Severity.HIGH,
        "src/run.py",
        78,
        "/repo",
    )
    assert (ha.first_seen_ms, ha.last_seen_ms, ha.fixed_ms) == (end1, end4, None)
    hb = history[b.fingerprint]
    assert (hb.first_seen_ms, hb.last_seen_ms, hb.fixed_ms, hb.cwe) == (end1, end2, end4, None)
    hc = history[c.fingerprint]
    assert (hc.first_seen_ms, hc.last_seen_ms, hc.fixed_ms) == (end2, end4, None)
    # Ordered by first sighting.
    assert [h.fingerprint for h in store.finding_history("/repo", 0)][-1] == c.fingerprint

    # since: a finding fixed before it is left out; one fixed at or after it stays.
    assert set(by_fp(store.finding_history("/repo", end4 + 1))) == {a.fingerprint, c.fingerprint}
    assert b.fingerprint in by_fp(store.finding_history("/repo", end4))

    # Every target: the same fingerprint has a lifetime per target.
    every = store.finding_history(None, 0)
    assert sorted((h.target, h.fingerprint) for h in every if h.fingerprint == a.fingerprint) == [
        ("/other", a.fingerprint),
        ("/repo", a.fingerprint),
    ]
    other = store.finding_history("/other", 0)
    assert [(h.first_seen_ms, h.fixed_ms) for h in other] == [(end_other, None)]
    assert store.finding_history("/nowhere", 0) == []


def test_a_finding_that_comes_back_is_open_again(store: Store) -> None:
    a = finding("B602", "src/run.py")
    moved = finding("B602", "src/run.py", line=40)  # same fingerprint, another line
    end1 = scan(store, "s1", "/repo", 1, [a])
    end2 = scan(store, "s2", "/repo", 2, [])
    history = store.finding_history("/repo", 0)
    assert [(h.first_seen_ms, h.last_seen_ms, h.fixed_ms) for h in history] == [(end1, end1, end2)]
    end3 = scan(store, "s3", "/repo", 3, [moved])
    history = store.finding_history("/repo", 0)
    assert [(h.first_seen_ms, h.last_seen_ms, h.fixed_ms) for h in history] == [(end1, end3, None)]
    # A failed scan that found nothing does not fix it.
    scan(store, "s4", "/repo", 4, [], status="failed")
    assert store.finding_history("/repo", 0)[0].fixed_ms is None
    end5 = scan(store, "s5", "/repo", 5, [])
    assert store.finding_history("/repo", 0)[0].fixed_ms == end5
