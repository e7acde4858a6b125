"""Reads of an embedded SQLite store through plain ``sqlite3``, without SQLAlchemy.

``secperf findings list`` runs in a terminal or an editor many times a day:
importing SQLAlchemy and the store's modules costs more than the read itself.
This module answers that read, with the same results as ``Store.findings``
(a test keeps them equal), from a store that needs nothing done to it: an
SQLite file at the schema version this secperf writes (``SCHEMA_VERSION``,
equal to ``migrations.LATEST_VERSION``), opened read-only.

Anything else raises ``NotReadable`` (a PostgreSQL URL, a missing file, an
older or newer schema, a damaged or locked file) and the caller goes through
``Store.open``, which creates, migrates or reports it as it always does.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from secperf.model import Finding, Severity
from secperf.security.triage import TriageDecision, TriageState, effective_state
from secperf.store.stored_finding import StoredFinding

#: The schema version read here: the latest migration (a test keeps them equal).
SCHEMA_VERSION = 9
#: How long a read waits for a writer's lock, as the store's engine does.
BUSY_TIMEOUT_S = 10.0

_FINDING_FIELDS = frozenset(f.name for f in fields(Finding))


class NotReadable(Exception):
    """This store cannot be read here; open it with ``Store.open``."""


def sqlite_file(url: str) -> Path | None:
    """The database file of a store target (a path or ``sqlite:///PATH``), None otherwise.

    URLs with a query, percent-escapes or an in-memory database are left to
    SQLAlchemy (None), which reads them as it always has.
    """
    if "://" not in url:
        return Path(url).expanduser() if url.strip() else None
    scheme, rest = url.split("://", 1)
    if scheme.lower() != "sqlite" or not rest.startswith("/") or "?" in rest or "%" in rest:
        return None
    path = rest[1:]
    return None if path in ("", ":memory:") else Path(path)


@contextlib.contextmanager
def open_read_only(url: str) -> Iterator[sqlite3.Connection]:
    """A read-only connection to the store at ``url``; ``NotReadable`` when that will not do."""
    path = sqlite_file(url)
    if path is None or not path.is_file():
        # A PostgreSQL URL lands here too, password and all.
        from secperf.config.units import mask_url

        raise NotReadable(f"{mask_url(url)}: not an existing SQLite file")
    try:
        conn = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S
        )
    except sqlite3.Error as exc:
        raise NotReadable(f"{path}: {exc}") from None
    try:
        try:
            version = conn.execute("SELECT max(version) FROM schema_version").fetchone()[0]
        except sqlite3.Error as exc:
            raise NotReadable(f"{path}: {exc}") from None
        if version != SCHEMA_VERSION:
            raise NotReadable(f"{path}: schema version {version}, not {SCHEMA_VERSION}")
        yield conn
    finally:
        conn.close()


def newest_scan_id(conn: sqlite3.Connection, target: str) -> str | None:
    """The newest scan of ``target`` of any status (``Store.scans(limit=1, target=...)``)."""
    row = conn.execute(
        "SELECT scan_id FROM scans WHERE target = ? ORDER BY started_ms DESC, scan_id DESC LIMIT 1",
        (target,),
    ).fetchone()
    return None if row is None else str(row[0])


def _finding(payload: str) -> Finding:
    data = json.loads(payload)
    known = {k: v for k, v in data.items() if k in _FINDING_FIELDS}
    known["severity"] = Severity(known["severity"])
    return Finding(**known)


def _decision(row: Any) -> TriageDecision | None:
    fingerprint, state, author, note, updated_ms, expires_ms = row
    if state is None:
        return None
    return TriageDecision(
        fingerprint, TriageState(state), author, note or "", updated_ms, expires_ms
    )


def _row_owner(conn: sqlite3.Connection, scan_id: str) -> str:
    """The scan whose finding rows ``scan_id`` reads (it may share an earlier scan's)."""
    owner = conn.execute(
        "SELECT coalesce(findings_from, scan_id) FROM scans WHERE scan_id = ?", (scan_id,)
    ).fetchone()
    return scan_id if owner is None else str(owner[0])


def _where(
    owner: str, severity_at_least: Severity | None, scanner: str | None, new_only: bool
) -> tuple[list[str], list[Any]]:
    """The SQL filters of a scan's findings (``f``) and their parameters."""
    sql = ["WHERE f.scan_id = ?"]
    params: list[Any] = [owner]
    if severity_at_least is not None:
        sql.append("AND f.severity_rank >= ?")
        params.append(severity_at_least.rank)
    if scanner is not None:
        sql.append("AND f.scanner = ?")
        params.append(scanner)
    if new_only:
        sql.append("AND f.is_new = 1")
    return sql, params


#: A scan's findings with their triage decisions; then ``_where``'s filters.
_SELECT_FINDINGS = (
    "SELECT f.payload, f.is_new, f.path, t.fingerprint, t.state, t.author, t.note,"
    " t.updated_ms, t.expires_ms FROM findings f"
    " LEFT OUTER JOIN triage_current t ON t.fingerprint = f.fingerprint"
)
#: The same without the findings themselves: what counting them needs.
_SELECT_PATHS = (
    "SELECT f.path, t.fingerprint, t.state, t.author, t.note, t.updated_ms, t.expires_ms"
    " FROM findings f LEFT OUTER JOIN triage_current t ON t.fingerprint = f.fingerprint"
)


def scan_findings(
    conn: sqlite3.Connection,
    scan_id: str,
    *,
    severity_at_least: Severity | None = None,
    scanner: str | None = None,
    path_glob: str | None = None,
    state: TriageState | None = None,
    new_only: bool = False,
    limit: int | None = 1000,
    now_ms: int,
) -> list[StoredFinding]:
    """``Store.findings(scan_id=...)``: the scan's findings with their triage, filtered.

    ``new_only`` keeps the findings new since the baseline (before ``limit``),
    as filtering ``Store.findings(limit=None)`` on ``is_new`` would.
    """
    where, params = _where(_row_owner(conn, scan_id), severity_at_least, scanner, new_only)
    sql = [_SELECT_FINDINGS, *where, "ORDER BY f.id"]
    filtered_here = path_glob is not None or state is not None
    if limit is not None and not filtered_here:
        sql.append("LIMIT ?")
        params.append(limit)
    out: list[StoredFinding] = []
    for payload, is_new, path, *triage in conn.execute(" ".join(sql), params):
        if path_glob is not None and not fnmatch.fnmatchcase(path, path_glob):
            continue
        decision = _decision(triage)
        effective = effective_state(decision, now_ms)
        if state is not None and effective is not state:
            continue
        out.append(StoredFinding(scan_id, _finding(payload), bool(is_new), effective, decision))
        if limit is not None and len(out) >= limit:
            break
    return out


def count_scan_findings(
    conn: sqlite3.Connection,
    scan_id: str,
    *,
    severity_at_least: Severity | None = None,
    scanner: str | None = None,
    path_glob: str | None = None,
    state: TriageState | None = None,
    new_only: bool = False,
    now_ms: int,
) -> int:
    """How many findings ``scan_findings`` lists with the same filters and no limit.

    Counted in SQL, or (a path glob or a triage state) from the paths and the
    decisions alone: no finding is read whole.
    """
    where, params = _where(_row_owner(conn, scan_id), severity_at_least, scanner, new_only)
    if path_glob is None and state is None:
        row = conn.execute(" ".join(["SELECT count(*) FROM findings f", *where]), params)
        return int(row.fetchone()[0])
    count = 0
    for path, *triage in conn.execute(" ".join([_SELECT_PATHS, *where]), params):
        if path_glob is not None and not fnmatch.fnmatchcase(path, path_glob):
            continue
        if state is not None and effective_state(_decision(triage), now_ms) is not state:
            continue
        count += 1
    return count


def triage_all(conn: sqlite3.Connection) -> dict[str, TriageDecision]:
    """``Store.triage_all``: every current decision by fingerprint."""
    rows = conn.execute(
        "SELECT fingerprint, state, author, note, updated_ms, expires_ms FROM triage_current"
    )
    return {row[0]: decision for row in rows if (decision := _decision(row)) is not None}


@dataclass(frozen=True, slots=True)
class Listing:
    """The newest scan of a target and what ``findings list`` shows of it."""

    #: None when the target has no scan.
    scan_id: str | None
    #: Its findings, filtered, at most ``limit``.
    rows: list[StoredFinding]
    #: How many findings the filters keep, ``rows`` and those past the limit.
    total: int
    #: Every current triage decision by fingerprint.
    triage: dict[str, TriageDecision]


def latest_scan_listing(
    url: str,
    target: str,
    *,
    severity_at_least: Severity | None = None,
    scanner: str | None = None,
    path_glob: str | None = None,
    state: TriageState | None = None,
    new_only: bool = False,
    limit: int | None = 1000,
    now_ms: int,
) -> Listing:
    """The newest scan of ``target``, its findings (filtered, at most ``limit``), how many
    the filters keep in all, and every triage decision.

    They are counted only when ``limit`` rows came back (more may match).
    ``NotReadable`` when the store must be opened with ``Store.open`` instead.
    """
    filters: dict[str, Any] = {
        "severity_at_least": severity_at_least,
        "scanner": scanner,
        "path_glob": path_glob,
        "state": state,
        "new_only": new_only,
        "now_ms": now_ms,
    }
    try:
        with open_read_only(url) as conn:
            scan_id = newest_scan_id(conn, target)
            if scan_id is None:
                return Listing(None, [], 0, {})
            rows = scan_findings(conn, scan_id, limit=limit, **filters)
            total = len(rows)
            if limit is not None and total >= limit:
                total = count_scan_findings(conn, scan_id, **filters)
            return Listing(scan_id, rows, total, triage_all(conn))
    except sqlite3.Error as exc:
        raise NotReadable(f"{url}: {exc}") from None


def latest_scan_findings(
    url: str,
    target: str,
    *,
    severity_at_least: Severity | None = None,
    scanner: str | None = None,
    path_glob: str | None = None,
    state: TriageState | None = None,
    limit: int | None = 1000,
    now_ms: int,
) -> tuple[str | None, list[StoredFinding], dict[str, TriageDecision]]:
    """The newest scan of ``target``, its findings (filtered) and every triage decision.

    ``(None, [], {})`` when the target has no scan; ``NotReadable`` when the
    store must be opened with ``Store.open`` instead.
    """
    found = latest_scan_listing(
        url,
        target,
        severity_at_least=severity_at_least,
        scanner=scanner,
        path_glob=path_glob,
        state=state,
        limit=limit,
        now_ms=now_ms,
    )
    return found.scan_id, found.rows, found.triage
