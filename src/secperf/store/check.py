"""``secperf store check``: is the store sound, and can this secperf use it?

The check only reads: an SQLite file is opened read-only (never created,
migrated or swept, and no -wal or -shm file is left beside a store nobody
uses), a PostgreSQL schema is looked at without creating it.
SQLite gets ``PRAGMA integrity_check`` (or the faster ``quick_check``) and a
look at its schema version; PostgreSQL gets a connection and its schema
version. Problems make the check fail; notes are worth knowing but harmless.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

from secperf.config.units import mask_url
from secperf.store.engine import BUSY_TIMEOUT_MS, StoreTargetError, resolve_url, shown_url
from secperf.store.migrations import LATEST_VERSION
from secperf.store.schema import schema_version

#: Problems listed from one integrity check at the most.
MAX_PROBLEMS = 20
_SQLITE_HEADER = b"SQLite format 3\x00"
_PG_CONNECT_TIMEOUT_S = 10
_DAMAGED = (
    "restore the file from a backup, or move it aside (with its -wal and -shm files)"
    " to start an empty store"
)


@dataclass
class StoreCheck:
    """What ``check_store`` found."""

    store: str  # the file's path, or the URL without its password
    backend: str  # sqlite | postgresql
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    schema_version: int | None = None
    size_bytes: int | None = None
    advice: str | None = None  # what to do about the problems

    @property
    def ok(self) -> bool:
        return not self.problems


def check_store(target: str | Path, *, quick: bool = False) -> StoreCheck:
    """Check the store at ``target`` (a path or URL) without changing it."""
    text_target = str(target)
    if "://" not in text_target or text_target.startswith("sqlite:"):
        path = _sqlite_path(text_target)
        if path is None:
            return StoreCheck(text_target, "sqlite", notes=["an in-memory store: nothing to check"])
        return _check_sqlite(path, quick=quick)
    try:
        url = resolve_url(text_target)
    except StoreTargetError as exc:
        return StoreCheck(mask_url(text_target), "?", problems=[str(exc)])
    return _check_postgresql(url)


def _sqlite_path(target: str) -> Path | None:
    if not target.startswith("sqlite:"):
        return Path(target).expanduser()
    rest = target.split("://", 1)[1] if "://" in target else ""
    if not rest.startswith("/") or rest[1:] in ("", ":memory:"):
        return None
    return Path(rest[1:])


def _check_sqlite(path: Path, *, quick: bool) -> StoreCheck:
    found = StoreCheck(str(path), "sqlite")
    blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        found.problems.append(
            f"{blocker} is a file, not a directory: move it away (secperf keeps its store"
            " and scan cache in that directory)"
        )
        return found
    if not path.exists():
        found.problems.append(
            "the file does not exist (the first command that stores something creates it)"
        )
        return found
    if path.is_dir():
        found.problems.append("this is a directory, not a database file")
        return found
    found.size_bytes = path.stat().st_size
    try:
        with path.open("rb") as handle:
            header = handle.read(len(_SQLITE_HEADER))
    except OSError as exc:
        found.problems.append(f"cannot read the file: {exc.strerror or exc}")
        return found
    if header != _SQLITE_HEADER:
        found.problems.append("not an SQLite database (its first bytes are not SQLite's header)")
        found.advice = _DAMAGED
        return found
    # Without a -wal file no process is using the store (the last to close it
    # removes its WAL): read the file as it is, creating no -wal or -shm beside
    # it. With one, read through it as SQLite does, read-only.
    wal = path.with_name(path.name + "-wal")
    mode = "mode=ro" if wal.exists() else "mode=ro&immutable=1"
    try:
        conn = sqlite3.connect(
            f"{path.resolve().as_uri()}?{mode}", uri=True, timeout=BUSY_TIMEOUT_MS / 1000
        )
    except sqlite3.Error as exc:
        found.problems.append(f"cannot open it read-only: {exc}")
        return found
    try:
        _sqlite_integrity(conn, found, quick=quick)
        if found.ok:
            _sqlite_schema(conn, found)
    finally:
        conn.close()
    return found


def _sqlite_integrity(conn: sqlite3.Connection, found: StoreCheck, *, quick: bool) -> None:
    pragma = "quick_check" if quick else "integrity_check"
    try:
        rows = [str(r[0]) for r in conn.execute(f"PRAGMA {pragma}({MAX_PROBLEMS})")]
    except sqlite3.DatabaseError as exc:
        found.problems.append(f"{pragma} could not run: {exc}")
        found.advice = _DAMAGED
        return
    if rows != ["ok"]:
        found.problems.extend(f"{pragma}: {row}" for row in rows)
        found.advice = _DAMAGED


def _sqlite_schema(conn: sqlite3.Connection, found: StoreCheck) -> None:
    try:
        has = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
            (schema_version.name,),
        ).fetchone()
        version = (
            int(conn.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0)
            if has
            else 0
        )
    except sqlite3.DatabaseError as exc:
        found.problems.append(f"the schema version cannot be read: {exc}")
        found.advice = _DAMAGED
        return
    _judge_version(found, version)


def _judge_version(found: StoreCheck, version: int) -> None:
    found.schema_version = version
    if version > LATEST_VERSION:
        found.problems.append(
            f"schema version {version} is newer than this secperf supports ({LATEST_VERSION}):"
            " upgrade secperf to use this store"
        )
        found.advice = "upgrade secperf, or restore a backup made with this version"
    elif version == 0:
        found.notes.append("no secperf tables yet: the first command that opens it creates them")
    elif version < LATEST_VERSION:
        found.notes.append(
            f"schema version {version}: the next command that opens it upgrades it to"
            f" {LATEST_VERSION}"
        )


def _check_postgresql(url: URL) -> StoreCheck:
    found = StoreCheck(shown_url(url), "postgresql")
    schema = url.query.get("schema")
    where = schema if isinstance(schema, str) else None
    plain = url.difference_update_query(["schema"])
    engine = create_engine(plain, connect_args={"connect_timeout": _PG_CONNECT_TIMEOUT_S})
    try:
        with engine.connect() as conn:
            current = where or str(conn.execute(text("SELECT current_schema()")).scalar())
            exists = conn.execute(
                text(
                    "SELECT 1 FROM information_schema.tables"
                    " WHERE table_schema = :schema AND table_name = :table"
                ),
                {"schema": current, "table": schema_version.name},
            ).first()
            version = 0
            if exists is not None:
                quoted = '"' + current.replace('"', '""') + '"'
                version = int(
                    conn.execute(
                        text(f"SELECT max(version) FROM {quoted}.schema_version")  # noqa: S608
                    ).scalar()
                    or 0
                )
    except SQLAlchemyError as exc:
        orig = getattr(exc, "orig", None)
        cause = str(orig if orig is not None else exc).strip().splitlines()
        found.problems.append(f"cannot query the database: {cause[0] if cause else exc}")
        return found
    finally:
        engine.dispose()
    _judge_version(found, version)
    return found
