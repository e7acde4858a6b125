"""Turn a store target (a path or an SQLAlchemy URL) into a configured Engine.

SQLite gets WAL mode, ``synchronous=NORMAL`` (a committed transaction survives a
killed process; only a power cut may lose the last ones), foreign keys and a
busy timeout, all set per connection. Python's sqlite3 module is put in
autocommit mode and SQLAlchemy emits BEGIN itself, so DDL is transactional and
migrations are all-or-nothing (the recipe from SQLAlchemy's SQLite notes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

BUSY_TIMEOUT_MS = 10_000


class StoreTargetError(ValueError):
    """The store target is neither a usable path nor a supported database URL."""


def resolve_url(target: str | Path | URL) -> URL:
    """A filesystem path becomes an SQLite URL (parent directories created)."""
    if isinstance(target, URL):
        return target
    text = str(target)
    if not text:
        raise StoreTargetError("store target is empty; give a file path or a database URL")
    if "://" in text:
        try:
            url = make_url(text)
        except ArgumentError as exc:
            raise StoreTargetError(f"store URL {text!r} is not valid: {exc}") from None
        backend = url.get_backend_name()
        if backend not in ("sqlite", "postgresql"):
            raise StoreTargetError(
                f"store URL {url.render_as_string(hide_password=True)!r}: backend"
                f" {backend!r} is not supported; use sqlite:/// or postgresql+psycopg://"
            )
        if backend == "sqlite" and url.database not in (None, "", ":memory:"):
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        return url
    path = Path(text).expanduser()
    if path.exists() and path.is_dir():
        raise StoreTargetError(f"store path {path} is a directory; give a database file path")
    path.parent.mkdir(parents=True, exist_ok=True)
    return URL.create("sqlite", database=str(path))


def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # SQLAlchemy's "begin" listener emits BEGIN
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _sqlite_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN")


def create_store_engine(target: str | Path | URL) -> Engine:
    """An Engine for ``target`` with the per-connection settings the store relies on."""
    url = resolve_url(target)
    if url.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True)
