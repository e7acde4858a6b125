"""Versioned schema migrations, applied in order when a store is opened.

The ``schema_version`` table holds one row per applied step. Opening a store
applies the missing steps in one transaction (so a failed upgrade leaves the
old schema intact) and refuses a database written by a newer secperf.

A released step never changes: a later schema change is a new step (a new
table, or ``ALTER TABLE ... ADD COLUMN``), so every database walks the same path.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, Table, func, inspect, select

from secperf.store import schema


class SchemaVersionError(RuntimeError):
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
)

LATEST_VERSION = MIGRATIONS[-1].version


def current_version(conn: Connection) -> int:
    """The schema version of the database (0 when it is empty)."""
    if not inspect(conn).has_table(schema.schema_version.name):
        return 0
    found = conn.execute(select(func.max(schema.schema_version.c.version))).scalar()
    return int(found or 0)


def migrate(engine: Engine, *, target: int | None = None, where: str = "database") -> int:
    """Bring the schema up to ``target`` (default: the latest); returns the version.

    ``where`` names the database in error messages.
    """
    goal = LATEST_VERSION if target is None else target
    with engine.begin() as conn:
        version = current_version(conn)
        if version > LATEST_VERSION:
            raise SchemaVersionError(
                f"{where} has schema version {version}, newer than this secperf supports"
                f" ({LATEST_VERSION}); upgrade secperf to open it"
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
                        applied_ms=time.time_ns() // 1_000_000,
                    )
                )
                version = step.version
    return version
