"""The plain sqlite3 reader answers as ``Store.findings`` does, or declines.

Real SQLite files written by ``Store``; the reader's results are compared with
the store's own for every filter.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest

from secperf.model import Finding, SecurityMetrics, Severity, make_fingerprint
from secperf.security.triage import TriageState
from secperf.store import LATEST_VERSION, Store
from secperf.store.sqlite_reader import (
    SCHEMA_VERSION,
    NotReadable,
    latest_scan_findings,
    latest_scan_listing,
    sqlite_file,
)
from support.factories import make_finding

T0 = 1_700_000_000_000
DAY = 86_400_000


def finding(rule: str, path: str, severity: Severity, scanner: str = "bandit") -> Finding:
    return make_finding(
        rule,
        path,
        severity,
        fingerprint=make_fingerprint(rule, path, f"code {rule}"),
        scanner=scanner,
        line=7,
        cwe=78,
        snippet="AKIA****MPLE",
        properties={"more": [1, 2], "nested": {"a": None}},
    )


FOUND = [
    finding("B602", "src/app/run.py", Severity.HIGH),
    finding("B101", "tests/test_x.py", Severity.LOW),
    finding("aws", "src/app/conf.py", Severity.CRITICAL, scanner="secrets"),
    finding("B303", "src/app/hash.py", Severity.MEDIUM),
]


def complete(store: Store, scan_id: str, n: int, found: list[Finding]) -> None:
    started = T0 + n * 60_000
    store.record_scan_started(scan_id, "/repo", started, ["bandit"])
    store.record_scan_findings(scan_id, found, {found[0].fingerprint})
    store.record_scan_completed(
        SecurityMetrics(
            scan_id=scan_id,
            target="/repo",
            started_ms=started,
            finished_ms=started + 1000,
            scan_duration_ms=1000.0,
            violations_found=len(found),
            false_positive_rate=0.0,
            vulnerability_severity_counts={},
            scan_coverage_percent=100.0,
            files_scanned=4,
            scanner_durations_ms={"bandit": 500.0},
        ),
        "ok",
    )


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / ".secperf" / "secperf.db"
    with Store.open(path) as store:
        complete(store, "s1", 1, FOUND)
        complete(store, "s2", 2, FOUND)  # shares the rows of s1
        store.set_triage(FOUND[1].fingerprint, "false_positive", "ana", "test code", now_ms=T0)
        store.set_triage(
            FOUND[2].fingerprint, "accepted_risk", "bo", expires_ms=T0 + DAY, now_ms=T0
        )
    yield path


def test_the_reader_knows_the_latest_schema() -> None:
    assert SCHEMA_VERSION == LATEST_VERSION


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"severity_at_least": Severity.HIGH},
        {"scanner": "secrets"},
        {"path_glob": "src/*"},
        {"state": TriageState.OPEN},
        {"state": TriageState.FALSE_POSITIVE},
        {"limit": 2},
        {"limit": 1, "path_glob": "src/*"},
        {"limit": None},
    ],
)
def test_findings_read_as_the_store_reads_them(db: Path, filters: dict[str, object]) -> None:
    for url in (str(db), f"sqlite:///{db}"):
        scan_id, rows, triage = latest_scan_findings(
            url,
            "/repo",
            now_ms=T0 + 1000,
            **filters,  # type: ignore[arg-type]
        )
        with Store.open(db) as store:
            expected = store.findings(scan_id="s2", now_ms=T0 + 1000, **filters)  # type: ignore[arg-type]
            assert triage == store.triage_all()
        assert scan_id == "s2"
        assert rows == expected
        assert rows  # every case finds something


LISTING_FILTERS: list[dict[str, object]] = [
    {},
    {"limit": 2},
    {"limit": 4},
    {"limit": None},
    {"severity_at_least": Severity.HIGH, "limit": 1},
    {"scanner": "bandit", "limit": 1},
    {"path_glob": "src/*", "limit": 1},
    {"state": TriageState.OPEN, "limit": 1},
    {"state": TriageState.FALSE_POSITIVE, "limit": 1},
    {"new_only": True},
    {"new_only": True, "limit": 1},
    {"new_only": True, "severity_at_least": Severity.LOW, "limit": 1},
    {"new_only": True, "state": TriageState.OPEN, "path_glob": "src/*", "limit": 1},
]


@pytest.mark.parametrize("filters", LISTING_FILTERS)
def test_a_listing_counts_what_its_limit_left_out(db: Path, filters: dict[str, object]) -> None:
    """``total`` is every finding the filters keep; ``new_only`` filters before the limit."""
    options = dict(filters)
    new_only = bool(options.pop("new_only", False))
    limit = cast("int | None", options.pop("limit", 1000))
    listing = latest_scan_listing(
        str(db),
        "/repo",
        now_ms=T0 + 1000,
        new_only=new_only,
        limit=limit,
        **options,  # type: ignore[arg-type]
    )
    with Store.open(db) as store:
        every = store.findings(scan_id="s2", now_ms=T0 + 1000, limit=None, **options)  # type: ignore[arg-type]
        assert listing.triage == store.triage_all()
    if new_only:
        every = [r for r in every if r.is_new]
    assert every  # every case finds something
    assert listing.scan_id == "s2"
    assert listing.total == len(every)
    assert listing.rows == every[:limit]


def test_a_target_without_scans_has_none(db: Path) -> None:
    assert latest_scan_findings(str(db), "/elsewhere", now_ms=T0) == (None, [], {})
    none = latest_scan_listing(str(db), "/elsewhere", now_ms=T0)
    assert (none.scan_id, none.rows, none.total, none.triage) == (None, [], 0, {})


def test_stores_it_cannot_read_are_left_to_the_store(db: Path, tmp_path: Path) -> None:
    for url in (
        "postgresql+psycopg://secperf@127.0.0.1/test",
        "sqlite://",
        "sqlite:///:memory:",
        f"sqlite:///{db}?mode=ro",
        str(tmp_path / "missing.db"),
    ):
        with pytest.raises(NotReadable):
            latest_scan_findings(url, "/repo", now_ms=T0)
    assert sqlite_file("sqlite:////abs/x.db") == Path("/abs/x.db")
    # An older schema (a migration pending) and a damaged file: the store's job.
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM schema_version WHERE version = ?", (SCHEMA_VERSION,))
    with pytest.raises(NotReadable, match="schema version"):
        latest_scan_findings(str(db), "/repo", now_ms=T0)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database" * 100)
    with pytest.raises(NotReadable):
        latest_scan_findings(str(junk), "/repo", now_ms=T0)
