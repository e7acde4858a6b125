"""Turn a store target (a path or an SQLAlchemy URL) into a configured Engine.

SQLite gets WAL mode, ``synchronous=NORMAL`` (a committed transaction survives a
killed process; only a power cut may lose the last ones), foreign keys and a
busy timeout, all set per connection. Python's sqlite3 module is put in
autocommit mode and SQLAlchemy emits BEGIN itself, so DDL is transactional and
migrations are all-or-nothing (the recipe from SQLAlchemy's SQLite notes).

Several processes share one SQLite file, so a write transaction takes the
write lock up front: ``write_engine(engine)`` gives the engine whose
transactions begin with ``BEGIN IMMEDIATE``, which waits up to the busy timeout
for the lock. A deferred transaction that read first and writes later cannot
wait: in WAL mode SQLite refuses the upgrade at once ("database is locked")
when another process committed since its read. Reads stay deferred, so readers
never queue behind a writer.

PostgreSQL goes through psycopg 3 (``postgresql://`` URLs are given that
driver). A ``schema=NAME`` query parameter puts the store in that schema
(created when missing) by setting ``search_path`` on every new connection, so
several stores can share one database. The pool is kept small and its
connections are checked before use, so a restarted database server costs one
failed ping, not a failed write.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from secperf.config.units import mask_url, scrub_url

BUSY_TIMEOUT_MS = 10_000
#: The execution option that makes an SQLite transaction begin IMMEDIATE.
WRITE_OPTION = "secperf_write"
POOL_SIZE = 5
POOL_OVERFLOW = 10
POOL_RECYCLE_S = 1800
_SCHEMA_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class StoreError(Exception):
    """The store cannot be used; the message names it and what is wrong."""


class StoreTargetError(StoreError, ValueError):
    """The store target is neither a usable path nor a supported database URL."""


class StoreCorruptError(StoreError, RuntimeError):
    """The store's file is damaged or is not an SQLite database at all."""


class StoreUnavailableError(StoreError, RuntimeError):
    """The store could not be opened (no connection, no permission, ...)."""


#: SQLite's result codes (Python 3.11's ``sqlite_errorname``) for a damaged file.
_CORRUPT_CODES = frozenset({"SQLITE_CORRUPT", "SQLITE_NOTADB"})
_CORRUPT_WORDS = ("file is not a database", "malformed", "database corrupt")


def is_corruption(exc: BaseException) -> bool:
    """Whether ``exc``, or the DB-API error it wraps, says the SQLite file is damaged.

    Locking, I/O and constraint errors are not corruption: they pass or are
    someone else's mistake, and the file must never be set aside for them.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sqlite3.DatabaseError):
            code = getattr(current, "sqlite_errorname", "")
            if code in _CORRUPT_CODES or any(w in str(current) for w in _CORRUPT_WORDS):
                return True
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__
    return False


def shown_url(url: URL) -> str:
    """A database URL as messages show it: the password and every query value masked.

    SQLAlchemy's ``hide_password`` leaves the query, where a password or TLS
    key password may ride too (``?password=``, ``?sslpassword=``); this is
    ``mask_url`` of what it renders.
    """
    return mask_url(url.render_as_string(hide_password=True))


def resolve_url(target: str | Path | URL) -> URL:
    """A filesystem path becomes an SQLite URL (parent directories created)."""
    text = "" if isinstance(target, URL) else str(target)
    if not isinstance(target, URL) and not text:
        raise StoreTargetError("store target is empty; give a file path or a database URL")
    if isinstance(target, URL) or "://" in text:
        try:
            url = target if isinstance(target, URL) else make_url(text)
        except (ArgumentError, ValueError) as exc:  # ValueError: a port that is no number
            raise StoreTargetError(
                f"store URL {mask_url(text)!r} is not valid: {scrub_url(str(exc), text)}"
            ) from None
        backend = url.get_backend_name()
        if backend not in ("sqlite", "postgresql"):
            raise StoreTargetError(
                f"store URL {shown_url(url)!r}: backend"
                f" {backend!r} is not supported; use sqlite:/// or postgresql+psycopg://"
            )
        if backend == "postgresql" and (
            url.drivername == "postgresql" or url.get_driver_name() == "psycopg2"
        ):
            # psycopg 3 is the driver secperf ships; SQLAlchemy's default is psycopg2.
            url = url.set(drivername="postgresql+psycopg")
        if backend == "postgresql":
            schema = url.query.get("schema")
            if schema is not None and (not isinstance(schema, str) or not _SCHEMA_RE.match(schema)):
                raise StoreTargetError(
                    f"store URL {shown_url(url)!r}: schema"
                    f" {schema!r} must be one name of letters, digits and '_'"
                )
        if backend == "sqlite" and url.database not in (None, "", ":memory:"):
            _make_parent(Path(url.database))
        return url
    path = Path(text).expanduser()
    if path.exists() and path.is_dir():
        raise StoreTargetError(f"store path {path} is a directory; give a database file path")
    _make_parent(path)
    return URL.create("sqlite", database=str(path))


def _make_parent(path: Path) -> None:
    """Create the directory of an SQLite file; a file in the way is a clear error."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in (path.parent, *path.parent.parents) if p.is_file()), None)
        where = blocker if blocker is not None else path.parent
        raise StoreTargetError(
            f"store path {path}: {where} is a file, not a directory; move that file away"
            " (secperf keeps its store in that directory) or point store.url elsewhere"
        ) from None
    except OSError as exc:
        raise StoreTargetError(
            f"store path {path}: cannot create {path.parent}: {exc.strerror or exc}"
        ) from None


def _is_locked(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and (
        "locked" in str(exc) or "busy" in str(exc)
    )


def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # SQLAlchemy's "begin" listener emits BEGIN
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        _set_wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _set_wal(cursor: Any) -> None:
    """Switch to WAL, retrying while other processes hold the file.

    Turning a brand-new file to WAL needs an exclusive lock, and SQLite does
    not always call the busy handler for it: several processes creating the
    store at once get "database is locked" here. Retry with backoff up to the
    busy timeout.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    delay = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if not _is_locked(exc) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def _sqlite_begin(conn: Any) -> None:
    # Writers take the lock now (waiting their busy timeout); readers stay deferred.
    write = conn.get_execution_options().get(WRITE_OPTION, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _report_corruption(database: str) -> Any:
    """A handle_error listener: a damaged file is a ``StoreCorruptError`` naming it.

    Whenever it is found (opening, or a page read in the middle of a command),
    so every caller gets the same clear error and nothing tries to write on.
    """

    def on_error(context: Any) -> None:
        exc = context.original_exception
        if is_corruption(exc):
            raise StoreCorruptError(
                f"store {database} is damaged or is not an SQLite database ({exc})"
            ) from None

    return on_error


def write_engine(engine: Engine) -> Engine:
    """The same engine (same pool) whose transactions are write transactions.

    Every store write goes through it: on SQLite its ``begin()`` takes the
    write lock at BEGIN; on PostgreSQL it changes nothing.
    """
    return engine.execution_options(**{WRITE_OPTION: True})


def create_store_engine(target: str | Path | URL) -> Engine:
    """An Engine for ``target`` with the per-connection settings the store relies on."""
    url = resolve_url(target)
    if url.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        event.listen(engine, "handle_error", _report_corruption(str(url.database)))
        return engine
    schema = url.query.get("schema")
    if isinstance(schema, str):
        url = url.difference_update_query(["schema"])
    engine = create_engine(
        url,
        pool_pre_ping=True,
        pool_size=POOL_SIZE,
        max_overflow=POOL_OVERFLOW,
        pool_recycle=POOL_RECYCLE_S,
    )
    if isinstance(schema, str):
        event.listen(engine, "connect", _search_path(schema))
    return engine


def _search_path(schema: str) -> Any:
    """A connect listener putting new PostgreSQL connections in ``schema``."""

    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Outside a transaction, so the setting is the session's, not rolled back.
        autocommit = dbapi_conn.autocommit
        dbapi_conn.autocommit = True
        cursor = dbapi_conn.cursor()
        # Created concurrently, or no right to create: the SET below decides.
        with contextlib.suppress(Exception):
            cursor.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        try:
            cursor.execute(f'SET search_path TO "{schema}"')
        finally:
            cursor.close()
            dbapi_conn.autocommit = autocommit

    return on_connect
