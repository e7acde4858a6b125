"""Which finding rows are a scan's: its own, or those of a scan it shares them with.

A scan that finds exactly what the previous scan of its target found (same
fingerprints, same details, same novelty) stores no rows: its ``scans`` row
names the scan that holds them (``findings_from``, migration 9), so a warm
scan of an unchanged repository writes one row instead of thousands. The
holder of shared rows is their **owner**; a scan with its own rows owns them.

Rules that keep this exact:

- readers go through ``row_owner``/``row_owners`` (SQL: ``owner_of``), never
  ``findings.scan_id`` alone;
- before a scan's rows change, ``detach`` gives it rows of its own and hands
  its rows over to a scan that shares them, so no other scan sees the change;
- retention that deletes an owner hands its rows over first
  (``hand_over_before_delete``).

``findings_digest`` identifies a finding set; each scan keeps the digest of
the set it stored, so the next scan compares one value.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Set
from typing import Any

from sqlalchemy import ColumnElement, Connection, func, literal, select, update

from secperf.model import Finding
from secperf.store.schema import findings, scans

#: Most values bound in one ``IN (...)`` clause.
_IN_BATCH = 500


def findings_digest(found: Mapping[str, Finding], new_fingerprints: Set[str]) -> str:
    """A digest of a scan's findings (each fingerprint once) and which of them are new.

    Every field counts (a finding that moved has another line), so two
    scans with one digest read back the same rows.
    """
    digest = hashlib.sha256()
    for fingerprint in sorted(found):
        digest.update(b"N" if fingerprint in new_fingerprints else b"K")
        # The dataclass repr holds every field; cheaper than its JSON.
        digest.update(repr(found[fingerprint]).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def owner_of() -> ColumnElement[Any]:
    """SQL for the scan owning a ``scans`` row's finding rows."""
    return func.coalesce(scans.c.findings_from, scans.c.scan_id)


def row_owners(conn: Connection, scan_ids: Iterable[str]) -> dict[str, str]:
    """The owner of each scan's finding rows (a scan not recorded owns its own)."""
    ids = list(dict.fromkeys(scan_ids))
    owners = {scan_id: scan_id for scan_id in ids}
    for i in range(0, len(ids), _IN_BATCH):
        stmt = (
            select(scans.c.scan_id, scans.c.findings_from)
            .where(scans.c.scan_id.in_(ids[i : i + _IN_BATCH]))
            .where(scans.c.findings_from.is_not(None))
        )
        for scan_id, owner in conn.execute(stmt):
            owners[scan_id] = owner
    return owners


def row_owner(conn: Connection, scan_id: str) -> str:
    """The owner of one scan's finding rows."""
    return row_owners(conn, [scan_id])[scan_id]


_COPIED = [c.name for c in findings.c if c.name not in ("id", "scan_id")]


def _copy_rows(conn: Connection, owner: str, to: str) -> None:
    """Copy ``owner``'s finding rows as ``to``'s own."""
    source = select(literal(to).label("scan_id"), *(findings.c[name] for name in _COPIED)).where(
        findings.c.scan_id == owner
    )
    conn.execute(findings.insert().from_select(["scan_id", *_COPIED], source))


def _sharers(conn: Connection, owner: str, exclude: Set[str] = frozenset()) -> list[str]:
    """The scans sharing ``owner``'s rows, newest first (but those of ``exclude``)."""
    stmt = (
        select(scans.c.scan_id)
        .where(scans.c.findings_from == owner)
        .order_by(scans.c.started_ms.desc(), scans.c.scan_id.desc())
    )
    return [s for s in conn.execute(stmt).scalars() if s not in exclude]


def _make_owner(conn: Connection, owner: str, heir: str) -> None:
    """``heir`` (a sharer of ``owner``) becomes the owner of what the sharers read."""
    conn.execute(update(scans).where(scans.c.scan_id == heir).values(findings_from=None))
    conn.execute(
        update(scans)
        .where(scans.c.findings_from == owner)
        .where(scans.c.scan_id != heir)
        .values(findings_from=heir)
    )


def detach(conn: Connection, scan_id: str) -> None:
    """Before ``scan_id``'s findings change: own rows, shared with no other scan.

    A scan sharing another's rows gets a copy of them; rows other scans share
    are copied to the newest of those, which owns them from then on. The
    scan's digest is cleared (the caller sets the new one, when it knows it).
    """
    row = conn.execute(
        select(scans.c.findings_from, scans.c.findings_digest).where(scans.c.scan_id == scan_id)
    ).first()
    if row is not None and row.findings_from is not None:
        _copy_rows(conn, row.findings_from, scan_id)
    sharers = _sharers(conn, scan_id)
    if sharers:
        heir = sharers[0]
        _copy_rows(conn, scan_id, heir)
        _make_owner(conn, scan_id, heir)
    if row is not None and (row.findings_from is not None or row.findings_digest is not None):
        conn.execute(
            update(scans)
            .where(scans.c.scan_id == scan_id)
            .values(findings_from=None, findings_digest=None)
        )


def hand_over_before_delete(conn: Connection, doomed: Iterable[str]) -> None:
    """Before the scans ``doomed`` and their rows are deleted: keep the rows others share.

    The rows of each doomed owner still shared by a scan that stays move to
    the newest such scan, which owns them from then on.
    """
    gone = set(doomed)
    ids = list(gone)
    for i in range(0, len(ids), _IN_BATCH):
        sharing = conn.execute(
            select(scans.c.findings_from, scans.c.scan_id).where(
                scans.c.findings_from.in_(ids[i : i + _IN_BATCH])
            )
        ).all()
        for owner in sorted({owner for owner, sharer in sharing if sharer not in gone}):
            heir = _sharers(conn, owner, exclude=gone)[0]
            conn.execute(update(findings).where(findings.c.scan_id == owner).values(scan_id=heir))
            _make_owner(conn, owner, heir)


def previous_complete_scan(
    conn: Connection, target: str, scan_id: str, statuses: Iterable[str]
) -> Any:
    """The newest complete scan of ``target`` other than ``scan_id`` (owner, digest), or None."""
    return conn.execute(
        select(scans.c.scan_id, owner_of().label("owner"), scans.c.findings_digest)
        .where(scans.c.target == target)
        .where(scans.c.scan_id != scan_id)
        .where(scans.c.status.in_(list(statuses)))
        .order_by(scans.c.started_ms.desc(), scans.c.scan_id.desc())
        .limit(1)
    ).first()
