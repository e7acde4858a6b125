"""A scan that finds what the previous scan found shares its finding rows.

Every reader sees each scan's own findings all the same: ``findings``, counts,
``finding_history``; rows change only for the scan they belong to (``detach``)
and survive retention of the scan holding them. The store writer logs only the
findings first seen. Real SQLite files and the real PostgreSQL (``store_url``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from secperf.bus.memory import AsyncEventBus
from secperf.events import ScanCompleted, ScanStarted, ViolationDetected, decode_event
from secperf.model import Finding, SecurityMetrics, Severity, make_fingerprint
from secperf.store import Store, StoreWriter
from secperf.store.event_log import payload_json
from secperf.store.schema import findings as findings_table
from support.factories import make_finding

T0 = 1_700_000_000_000
STEP = 60_000


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = Store.open(store_url)
    yield s
    s.close()


def finding(rule: str, path: str, *, line: int = 3, severity: Severity = Severity.HIGH) -> Finding:
    return make_finding(
        rule,
        path,
        severity,
        fingerprint=make_fingerprint(rule, path, f"code {rule}"),
        line=line,
        cwe=78,
        properties={"test_name": rule.lower()},
    )


A = finding("B602", "src/run.py")
B = finding("B101", "tests/test_x.py", severity=Severity.LOW)
C = finding("B303", "src/hash.py", severity=Severity.MEDIUM)


def metrics(scan_id: str, target: str, n: int, found: int) -> SecurityMetrics:
    started = T0 + n * STEP
    return SecurityMetrics(
        scan_id=scan_id,
        target=target,
        started_ms=started,
        finished_ms=started + 1000,
        scan_duration_ms=1000.0,
        violations_found=found,
        false_positive_rate=0.0,
        vulnerability_severity_counts={},
        scan_coverage_percent=100.0,
        files_scanned=3,
        scanner_durations_ms={"bandit": 500.0},
    )


def scan(
    store: Store, scan_id: str, n: int, found: list[Finding], target: str = "/repo"
) -> set[str]:
    """A complete scan through ``record_scan_findings``; returns the first seen."""
    store.record_scan_started(scan_id, target, T0 + n * STEP, ["bandit"])
    first = store.record_scan_findings(scan_id, found, {f.fingerprint for f in found})
    store.record_scan_completed(metrics(scan_id, target, n, len(found)), "ok")
    return set(first)


def rows(store: Store, scan_id: str | None = None) -> int:
    stmt = select(func.count()).select_from(findings_table)
    if scan_id is not None:
        stmt = stmt.where(findings_table.c.scan_id == scan_id)
    with store.engine.connect() as conn:
        return int(conn.execute(stmt).scalar_one())


def found_by(store: Store, scan_id: str) -> dict[str, Finding]:
    listed = store.findings(scan_id=scan_id, limit=None)
    assert {r.scan_id for r in listed} <= {scan_id}
    return {r.finding.fingerprint: r.finding for r in listed}


def test_an_unchanged_scan_writes_no_rows_and_reads_the_same(store: Store) -> None:
    assert scan(store, "s1", 1, [A, B]) == {A.fingerprint, B.fingerprint}
    assert rows(store) == 2
    assert scan(store, "s2", 2, [B, A]) == set()  # the order does not matter
    assert scan(store, "s3", 3, [A, B]) == set()
    assert rows(store) == 2  # s2 and s3 share the rows of s1
    for scan_id in ("s1", "s2", "s3"):
        assert found_by(store, scan_id) == {A.fingerprint: A, B.fingerprint: B}
    assert [r.finding for r in store.latest_scan_findings("/repo")] == [A, B]
    # Counts are each scan's, the severity floor applies to the shared rows.
    counts = store.scan_finding_counts("s3")
    assert (counts.findings, counts.violations, counts.new_violations) == (2, 2, 2)
    assert store.scan("s3").metrics.violations_found == 2  # type: ignore[union-attr]
    assert [r.scan_id for r in store.findings(scan_id="s3", severity_at_least="high")] == ["s3"]
    # History: seen by all three.
    (ha, hb) = sorted(store.finding_history("/repo", 0), key=lambda h: h.rule_id != "B602")
    assert (ha.first_seen_ms, ha.last_seen_ms, ha.fixed_ms) == (
        T0 + STEP + 1000,
        T0 + 3 * STEP + 1000,
        None,
    )
    assert hb.last_seen_ms == T0 + 3 * STEP + 1000


def test_any_change_writes_rows_and_names_what_is_first_seen(store: Store) -> None:
    scan(store, "s1", 1, [A, B])
    moved = finding("B602", "src/run.py", line=40)  # same fingerprint, another line
    assert scan(store, "s2", 2, [moved, B]) == set()
    assert found_by(store, "s2")[A.fingerprint].line == 40
    assert found_by(store, "s1")[A.fingerprint].line == 3
    assert scan(store, "s3", 3, [moved, B, C]) == {C.fingerprint}
    assert scan(store, "s4", 4, [moved]) == set()
    # Another target compares with its own previous scan only.
    assert scan(store, "o1", 4, [moved, B], target="/other") == {A.fingerprint, B.fingerprint}
    assert rows(store) == 2 + 2 + 3 + 1 + 2
    # Novelty is part of the set: the same findings, now baselined, are stored again.
    store.record_scan_started("s5", "/repo", T0 + 5 * STEP, [])
    store.record_scan_findings("s5", [moved], set())
    assert [r.is_new for r in store.findings(scan_id="s5")] == [False]
    assert [r.is_new for r in store.findings(scan_id="s4")] == [True]
    history = {h.rule_id: h for h in store.finding_history("/repo", 0)}
    assert history["B101"].fixed_ms == T0 + 4 * STEP + 1000


def test_changing_a_sharing_scan_or_its_owner_changes_only_that_scan(store: Store) -> None:
    scan(store, "s1", 1, [A, B])
    scan(store, "s2", 2, [A, B])
    scan(store, "s3", 3, [A, B])
    # A late part for s2 (add_findings): s2 gets rows of its own first.
    store.add_findings("s2", [C], {C.fingerprint})
    assert set(found_by(store, "s2")) == {A.fingerprint, B.fingerprint, C.fingerprint}
    assert (
        set(found_by(store, "s1")) == set(found_by(store, "s3")) == {A.fingerprint, B.fingerprint}
    )
    # A part for the owner s1: s3, which shared its rows, keeps what it found.
    store.add_findings("s1", [C], set())
    assert C.fingerprint in found_by(store, "s1")
    assert set(found_by(store, "s3")) == {A.fingerprint, B.fingerprint}
    assert store.scan_finding_counts("s3").findings == 2
    # Delivered again: the same whole set stores nothing new.
    before = rows(store)
    assert store.record_scan_findings("s3", [A, B], {A.fingerprint, B.fingerprint}) == set()
    assert rows(store) == before


def test_retention_keeps_the_rows_a_kept_scan_shares(store: Store) -> None:
    scan(store, "s1", 1, [A, B])
    scan(store, "s2", 2, [A, B])
    scan(store, "s3", 3, [A, B])
    assert rows(store, "s1") == 2 and rows(store, "s3") == 0
    # Everything but each target's newest scan is past retention.
    result = store.apply_retention(T0 + 10 * STEP, 60_000)
    assert result.records.scans == 2
    assert [s.scan_id for s in store.scans()] == ["s3"]
    assert found_by(store, "s3") == {A.fingerprint: A, B.fingerprint: B}
    assert rows(store) == 2
    assert scan(store, "s4", 4, [A, B]) == set()
    assert found_by(store, "s4") == {A.fingerprint: A, B.fingerprint: B}


def _logged_violations(store: Store) -> list[ViolationDetected]:
    return [
        e
        for e in (decode_event(payload_json(x)) for x in store.read_event_log(0, 10_000))
        if isinstance(e, ViolationDetected)
    ]


def test_the_writer_logs_only_findings_first_seen(store: Store) -> None:
    def events(scan_id: str, n: int, found: list[Finding]) -> list[object]:
        return [
            ScanStarted(scan_id=scan_id, target="/repo", ts_ms=T0 + n * STEP),
            *(ViolationDetected(scan_id=scan_id, finding=f, is_new=True) for f in found),
            ScanCompleted(metrics=metrics(scan_id, "/repo", n, len(found))),
        ]

    async def scenario() -> None:
        bus = AsyncEventBus()
        writer = StoreWriter(store, flush_interval_s=30.0)
        await writer.attach(bus)
        for scan_id, n, found in (("s1", 1, [A, B]), ("s2", 2, [A, B]), ("s3", 3, [A, B, C])):
            for event in events(scan_id, n, found):
                await bus.publish(event)  # type: ignore[arg-type]
        await bus.close(drain=True)
        await writer.close()

    asyncio.run(scenario())
    logged = _logged_violations(store)
    assert sorted((e.scan_id, e.finding.rule_id) for e in logged) == [
        ("s1", "B101"),
        ("s1", "B602"),
        ("s3", "B303"),
    ]
    assert rows(store) == 2 + 3
    for scan_id, expected in (("s1", 2), ("s2", 2), ("s3", 3)):
        assert len(found_by(store, scan_id)) == expected
        assert store.scan(scan_id).metrics.violations_found == expected  # type: ignore[union-attr]


def test_an_engine_that_heard_only_first_seen_findings_counts_from_the_store(
    store: Store,
) -> None:
    """A server following the log hears no finding of an unchanged scan: it counts stored ones."""
    from secperf.alerts import AlertEngine
    from secperf.events import now_ms

    secret = make_finding(
        "aws", "conf.py", Severity.CRITICAL, fingerprint="f-secret", category="secret"
    )
    now = now_ms()
    done = SecurityMetrics(
        scan_id="s1",
        target="/repo",
        started_ms=now - 2000,
        finished_ms=now - 1000,
        scan_duration_ms=1000.0,
        violations_found=2,
        false_positive_rate=0.0,
        vulnerability_severity_counts={"critical": 1, "high": 1},
        scan_coverage_percent=100.0,
        new_findings=2,
        scanner_durations_ms={"bandit": 500.0},
    )
    # Stored by the scanning process, before its completion reached the log.
    store.record_scan_started("s1", "/repo", now - 2000, ["bandit"])
    store.record_scan_findings("s1", [A, secret], {A.fingerprint, secret.fingerprint})

    async def scenario() -> dict[str, float]:
        bus = AsyncEventBus()
        engine = AlertEngine(store, bus, [], evaluation_interval_s=60, host="h1")
        await engine.start(run_loop=False)
        try:
            await engine.handle_scan_completed(ScanCompleted(metrics=done, host="h1"))
        finally:
            await engine.stop()
            await bus.close()
        heard: dict[str, float] = {}
        for name, label in (
            ("security_findings", "category"),
            ("security_new_findings", "severity"),
        ):
            for key, points in engine.recent.series(name).items():
                heard[f"{name}:{dict(key)[label]}"] = points[-1][1]
        return heard

    heard = asyncio.run(scenario())
    assert heard["security_findings:secret"] == 1.0
    assert heard["security_findings:sast"] == 1.0
    assert heard["security_new_findings:critical"] == 1.0
    assert heard["security_new_findings:high"] == 1.0


def test_a_whole_set_never_removes_findings_stored_already(store: Store) -> None:
    """An import stores all its findings, then announces some: the announced ones add nothing."""
    scan(store, "s1", 1, [A])
    store.record_scan_started("imp", "/repo", T0 + 2 * STEP, ["sarif"])
    store.add_findings("imp", [A, B, C], {B.fingerprint, C.fingerprint})
    first = store.record_scan_findings("imp", [B], {B.fingerprint})
    assert set(first) == {B.fingerprint}
    assert set(found_by(store, "imp")) == {A.fingerprint, B.fingerprint, C.fingerprint}
    # Nor from a scan that shares rows: it gets its own and keeps every finding.
    scan(store, "s3", 3, [A])
    scan(store, "s4", 4, [A])
    assert rows(store, "s4") == 0
    store.record_scan_findings("s4", [B], set())
    assert set(found_by(store, "s4")) == {A.fingerprint, B.fingerprint}
    assert set(found_by(store, "s3")) == {A.fingerprint}
