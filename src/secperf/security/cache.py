"""The scan cache: results by content, so unchanged files are never rescanned.

Key = scanner id + scanner version + config hash + file path + content hash.
The path is part of the key because a finding's fingerprint includes its path:
two files with the same bytes (empty ``__init__.py`` files) must not share
findings. A changed rule or tool version changes the key, so it invalidates
exactly the entries it must.

A second table remembers (path, size, mtime) -> content hash and line count, so
a warm rescan need not read files whose stat has not changed.

The cache is disposable: a damaged file (at open or found during a scan) is
moved aside as ``cache.db.corrupt-<UTC time>`` with its ``-wal``/``-shm``,
one warning is logged, and an empty cache takes its place. A cache that cannot
be used at all (its directory is a file, no permission, the disk is full)
makes the scan go on without it, with a warning. A cache never fails a scan.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

from pydantic import TypeAdapter, ValidationError

from secperf.events import now_ms
from secperf.model import Finding
from secperf.timefmt import file_stamp

log = logging.getLogger(__name__)

T = TypeVar("T")

_FINDINGS = TypeAdapter(list[Finding])
_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY,
    skipped TEXT,
    findings BLOB NOT NULL,
    created_ms INTEGER NOT NULL,
    partial INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS file_state (
    relpath TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    lines INTEGER NOT NULL
);
"""
# Keeps IN (...) lists under SQLite's bound-parameter limit.
_CHUNK = 500
#: Several scans may share the cache: wait this long for its lock.
_BUSY_TIMEOUT_S = 30.0
_CORRUPT_CODES = frozenset({"SQLITE_CORRUPT", "SQLITE_NOTADB"})
#: secperf's state directory in a project; it marks itself ignored for git.
STATE_DIR_NAME = ".secperf"
_STATE_GITIGNORE = "# Created by secperf: its cache, store and salt are local state.\n*\n"


def _add_partial_column(db: sqlite3.Connection) -> None:
    """Caches made before results could be partial get the column (0: not partial)."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(results)")}
    if "partial" not in columns:
        with db:
            db.execute("ALTER TABLE results ADD COLUMN partial INTEGER NOT NULL DEFAULT 0")


def mark_state_dir(directory: Path) -> None:
    """Create ``directory``; if it is a ``.secperf`` folder, put a ``.gitignore`` of ``*`` in it.

    As pytest does for its cache: the state never shows in ``git status``. A
    directory under another name is the user's choice of place and is left as
    it is. Raises OSError when the directory cannot be created.
    """
    directory.mkdir(parents=True, exist_ok=True)
    if directory.name != STATE_DIR_NAME:
        return
    ignore = directory / ".gitignore"
    if ignore.exists():
        return
    try:
        ignore.write_text(_STATE_GITIGNORE, encoding="utf-8")
    except OSError as exc:  # read-only checkouts still scan; git status just shows the folder
        log.debug("cannot write %s: %s", ignore, exc)


def _is_corrupt(exc: BaseException) -> bool:
    if not isinstance(exc, sqlite3.DatabaseError):
        return False
    text = str(exc)
    return (
        getattr(exc, "sqlite_errorname", "") in _CORRUPT_CODES
        or "file is not a database" in text
        or "malformed" in text
    )


def content_hash(content: bytes) -> str:
    """The content part of a cache key."""
    return hashlib.sha256(content).hexdigest()


def cache_key(scanner_id: str, version: str, config_hash: str, relpath: str, digest: str) -> str:
    """The full cache key of one scanner's result on one file."""
    raw = "\x00".join((scanner_id, version, config_hash, relpath, digest))
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


class CachedResult:
    """A cached scanner result: findings, or the reason the file was skipped."""

    __slots__ = ("findings", "partial", "skipped")

    def __init__(self, findings: list[Finding], skipped: str | None, partial: bool = False) -> None:
        self.findings = findings
        self.skipped = skipped
        self.partial = partial  # ``skipped`` names what was not checked; the rest was


def _set_wal(db: sqlite3.Connection) -> None:
    """Switch to WAL; scans creating the cache at once may find it locked for a moment."""
    deadline = time.monotonic() + _BUSY_TIMEOUT_S
    delay = 0.005
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


class ScanCache:
    """A small SQLite database of scanner results keyed by content.

    ``warn`` receives each warning (default: this module's logger), so a
    command can show it its own way.
    """

    def __init__(self, path: Path, warn: Callable[[str], None] | None = None) -> None:
        self.path = path
        self._warn = warn or log.warning
        self._lock = threading.RLock()
        self._warned_unusable = False
        self._db: sqlite3.Connection | None = None
        try:
            self._db = self._connect()
        except sqlite3.DatabaseError as exc:
            if _is_corrupt(exc):
                self._rebuild(exc)
            else:
                self._unusable(exc)
        except OSError as exc:
            self._unusable(exc)

    @property
    def usable(self) -> bool:
        """False when the scan goes on without a cache."""
        return self._db is not None

    def _connect(self) -> sqlite3.Connection:
        try:
            mark_state_dir(self.path.parent)
        except (FileExistsError, NotADirectoryError):
            raise NotADirectoryError(f"{self.path.parent} is not a directory") from None
        db = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_S, check_same_thread=False)
        try:
            _set_wal(db)
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            _add_partial_column(db)
            # A damaged file can open cleanly: its first query is what fails.
            db.execute("SELECT count(*) FROM results WHERE key = ''").fetchone()
        except BaseException:
            db.close()
            raise
        return db

    def _rebuild(self, exc: BaseException) -> None:
        """Move the damaged cache aside (with its -wal and -shm) and start an empty one."""
        if self._db is not None:
            self._db.close()
            self._db = None
        stamp = file_stamp(now_ms())
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        try:
            for suffix in ("", "-wal", "-shm"):
                part = self.path.with_name(self.path.name + suffix)
                if part.exists():
                    part.replace(aside.with_name(aside.name + suffix))
            self._db = self._connect()
        except (OSError, sqlite3.Error) as again:
            self._unusable(again)
            return
        self._warn(
            f"scan cache {self.path} was damaged ({exc}); moved it to {aside.name} and"
            " started an empty cache: this scan rescans every file"
        )

    def _unusable(self, exc: BaseException) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        if not self._warned_unusable:
            self._warned_unusable = True
            self._warn(f"scan cache {self.path} cannot be used ({exc}); scanning without it")

    def _use(self, what: Callable[[sqlite3.Connection], T], empty: T) -> T:
        """Run ``what`` on the cache; a damaged cache is rebuilt, a failing one skipped."""
        with self._lock:
            if self._db is None:
                return empty
            try:
                return what(self._db)
            except sqlite3.DatabaseError as exc:
                if _is_corrupt(exc):
                    self._rebuild(exc)
                else:  # locked past the timeout, disk full, I/O error: the scan goes on
                    self._warn(f"scan cache {self.path}: {exc}; this part of the cache is skipped")
                return empty

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def known_files(self) -> dict[str, tuple[int, int, str, int]]:
        """relpath -> (size, mtime_ns, sha256, lines) as last seen."""

        def read(db: sqlite3.Connection) -> dict[str, tuple[int, int, str, int]]:
            rows = db.execute("SELECT relpath, size, mtime_ns, sha256, lines FROM file_state")
            return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}

        return self._use(read, {})

    def remember_files(self, entries: Iterable[tuple[str, int, int, str, int]]) -> None:
        """Store (relpath, size, mtime_ns, sha256, lines) for the next scan."""
        rows = list(entries)

        def write(db: sqlite3.Connection) -> None:
            with db:
                db.executemany(
                    "INSERT OR REPLACE INTO file_state (relpath, size, mtime_ns, sha256, lines) "
                    "VALUES (?, ?, ?, ?, ?)",
                    rows,
                )

        self._use(write, None)

    def get_many(self, keys: Sequence[str]) -> dict[str, CachedResult]:
        """The cached results among ``keys``."""

        def read(db: sqlite3.Connection) -> dict[str, CachedResult]:
            found: dict[str, CachedResult] = {}
            for start in range(0, len(keys), _CHUNK):
                chunk = keys[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = db.execute(
                    f"SELECT key, skipped, findings, partial FROM results WHERE key IN ({marks})",  # noqa: S608
                    chunk,
                )
                for key, skipped, blob, partial in rows:
                    try:
                        found[key] = CachedResult(
                            _FINDINGS.validate_json(blob), skipped, bool(partial)
                        )
                    except ValidationError:  # written by another version: a miss
                        continue
            return found

        return self._use(read, {})

    def put_many(
        self,
        entries: Iterable[tuple[str, list[Finding], str | None]],
        partial_keys: Collection[str] = frozenset(),
    ) -> None:
        """Store (key, findings, skipped reason) results; ``partial_keys`` were partly checked."""
        now = now_ms()
        rows = [
            (key, skipped, _FINDINGS.dump_json(findings), now, int(key in partial_keys))
            for key, findings, skipped in entries
        ]

        def write(db: sqlite3.Connection) -> None:
            with db:
                db.executemany(
                    "INSERT OR REPLACE INTO results (key, skipped, findings, created_ms, partial) "
                    "VALUES (?, ?, ?, ?, ?)",
                    rows,
                )

        self._use(write, None)

    def clear(self) -> None:
        def wipe(db: sqlite3.Connection) -> None:
            with db:
                db.execute("DELETE FROM results")
                db.execute("DELETE FROM file_state")

        self._use(wipe, None)
