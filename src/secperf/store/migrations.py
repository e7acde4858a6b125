"""Versioned schema migrations, applied in order when a store is opened.

The ``schema_version`` table holds one row per applied step. Opening a store
applies the missing steps in one transaction (so a failed upgrade leaves the
old schema intact) and refuses a database written by a newer secperf.

Several processes may open a new store at once, so migrating is serialised:
the version is read again inside a write transaction that holds the database's
write lock (SQLite, ``BEGIN IMMEDIATE``) or a transaction-scoped advisory lock
(PostgreSQL), and only the first process applies the steps. An SQLite file
that already holds data is checked (``PRAGMA quick_check``) before it is
changed, so a damaged store is reported instead of written to.

A released step never changes: a later schema change is a new step (a new
table, or ``ALTER TABLE ... ADD COLUMN``), so every database walks the same path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Column, Connection, Engine, Index, Table, func, inspect, select, text

from secperf.events import now_ms
from secperf.store import schema
from secperf.store.engine import StoreCorruptError, StoreError, write_engine

#: The advisory lock's first key on PostgreSQL ("secperf" in ASCII, folded to
#: 31 bits); the second is the schema's hash, so stores in separate schemas do
#: not wait for each other.
_PG_LOCK_CLASS = 0x73656370


class SchemaVersionError(StoreError, RuntimeError):
    """The database's schema cannot be used by this version of secperf."""


@dataclass(frozen=True, slots=True)
class Migration:
    """One ordered schema step."""

    version: int
    description: str
    apply: Callable[[Connection], None]


def _create(*tables: Table) -> Callable[[Connection], None]:
    def apply(conn: Connection) -> None:
        for table in tables:
            table.create(conn)

    return apply


def _add_columns(table: Table, *names: str) -> Callable[[Connection], None]:
    """Add the named columns of ``table`` (and its indexes) where they are missing.

    A new database got them already when step 1 created the table from the
    current definition; an older one gets them here, so both end the same.
    """

    def apply(conn: Connection) -> None:
        have = {c["name"] for c in inspect(conn).get_columns(table.name)}
        for name in names:
            if name in have:
                continue
            column: Column[object] = table.c[name]
            kind = column.type.compile(dialect=conn.dialect)
            conn.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {name} {kind}"))
        indexes = {i["name"] for i in inspect(conn).get_indexes(table.name)}
        index: Index
        for index in table.indexes:
            if index.name not in indexes and {c.name for c in index.columns} & set(names):
                index.create(conn)

    return apply


def _scan_kinds(conn: Connection) -> None:
    """Add ``scans.kind``; SARIF uploads stored before it are imports, the rest scans."""
    _add_columns(schema.scans, "kind")(conn)
    scans = schema.scans
    is_upload = scans.c.scan_id.like("sarif-%") & (scans.c.scanners == ["sarif"])
    conn.execute(
        scans.update().where(scans.c.kind.is_(None)).where(is_upload).values(kind="import")
    )
    conn.execute(scans.update().where(scans.c.kind.is_(None)).values(kind="scan"))


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "series and sample chunks, scans, findings, triage, baselines, alerts, silences, gate runs",
        _create(
            schema.series,
            schema.chunks,
            schema.scans,
            schema.findings,
            schema.triage_history,
            schema.triage_current,
            schema.baselines,
            schema.alerts,
            schema.alert_transitions,
            schema.silences,
            schema.gate_runs,
        ),
    ),
    Migration(2, "benchmark results", _create(schema.benchmark_results)),
    Migration(3, "correlation runs", _create(schema.correlation_runs)),
    Migration(
        4,
        "scan owners and heartbeats, so abandoned scans can be closed",
        _add_columns(schema.scans, "owner_pid", "owner_host", "heartbeat_ms"),
    ),
    Migration(
        5,
        "the event log other processes follow, and its followers' cursors",
        _create(schema.event_log, schema.event_log_cursors),
    ),
    Migration(
        6,
        "scan kinds: a scan secperf ran, or an import of another tool's results",
        _scan_kinds,
    ),
    Migration(
        7,
        "downsampling tiers: 1-minute and 1-hour rollups of samples and their watermarks",
        _create(schema.rollups, schema.rollup_state),
    ),
    Migration(
        8,
        "scan pacing and prediction: how a scan shared the machine, what it was predicted to cost",
        _add_columns(schema.scans, "pacing", "prediction"),
    ),
    Migration(
        9,
        "scans share the finding rows of an earlier scan with the same findings",
        _add_columns(schema.scans, "findings_from", "findings_digest"),
    ),
)

LATEST_VERSION = MIGRATIONS[-1].version


def current_version(conn: Connection) -> int:
    """The schema version of the database (0 when it is empty)."""
    if not inspect(conn).has_table(schema.schema_version.name):
        return 0
    found = conn.execute(select(func.max(schema.schema_version.c.version))).scalar()
    return int(found or 0)


def _check_supported(version: int, where: str) -> None:
    if version > LATEST_VERSION:
        raise SchemaVersionError(
            f"{where} has schema version {version}, newer than this secperf supports"
            f" ({LATEST_VERSION}); upgrade secperf to open it"
        )


def _lock_for_migration(conn: Connection) -> None:
    """Wait for any other process migrating this store (PostgreSQL).

    On SQLite the write transaction's ``BEGIN IMMEDIATE`` already holds the
    database's write lock.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(
            text(f"SELECT pg_advisory_xact_lock({_PG_LOCK_CLASS}, hashtext(current_schema()))")
        )


def quick_check(conn: Connection) -> list[str]:
    """SQLite's ``PRAGMA quick_check``: its problems, empty when the file is sound."""
    rows = [str(r[0]) for r in conn.exec_driver_sql("PRAGMA quick_check").fetchall()]
    return [] if rows == ["ok"] else rows


def migrate(engine: Engine, *, target: int | None = None, where: str = "database") -> int:
    """Bring the schema up to ``target`` (default: the latest); returns the version.

    ``where`` names the database in error messages.
    """
    goal = LATEST_VERSION if target is None else target
    with engine.connect() as conn:  # the usual case: up to date, nothing to lock
        version = current_version(conn)
    _check_supported(version, where)
    if version >= goal:
        return version
    with write_engine(engine).begin() as conn:
        _lock_for_migration(conn)
        version = current_version(conn)  # another process may have migrated meanwhile
        _check_supported(version, where)
        if version > 0 and conn.dialect.name == "sqlite":
            problems = quick_check(conn)
            if problems:
                raise StoreCorruptError(
                    f"{where} is damaged (SQLite quick_check: {'; '.join(problems[:3])});"
                    " it was not upgraded"
                )
        if version == 0:
            schema.schema_version.create(conn, checkfirst=True)
        for step in MIGRATIONS:
            if version < step.version <= goal:
                step.apply(conn)
                conn.execute(
                    schema.schema_version.insert().values(
                        version=step.version,
                        description=step.description,
                        applied_ms=now_ms(),
                    )
                )
                version = step.version
    return version
