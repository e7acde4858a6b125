"""A bounded first-in first-out queue of syslog messages in a SQLite file.

Each message gets the next sequence number (it only grows, across restarts)
and is kept until ``confirm`` says the receiver took it, so a SIEM outage or a
killed secperf loses nothing that was queued: every append is one committed
transaction (WAL, ``synchronous=FULL``). The keys of the latest delivered
messages are remembered too, so an event seen again (an event log replayed
after a restart) is not queued a second time.

Bounded by ``max_events`` and ``max_bytes``: past either, the oldest messages
are dropped, counted and reported in the log (at most once a minute, with the
count since). A single message larger than ``max_bytes`` is refused the same way.

Thread-safe: the forwarder appends from worker threads while the sender reads
and confirms from its own; one connection behind one lock. One process at a
time: the queue holds an exclusive lock on ``<file>.lock`` while open (the
system releases it when the process dies, even by SIGKILL), so two secperf
processes on one store cannot both send its messages.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

#: Keys of delivered messages remembered, for refusing a replayed event.
REMEMBERED_KEYS = 20_000
#: The shortest pause between two warnings about dropped messages.
DROP_WARNING_INTERVAL_S = 60.0

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS entries (
        seq INTEGER PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        size INTEGER NOT NULL,
        message BLOB NOT NULL)""",
    "CREATE TABLE IF NOT EXISTS delivered (key TEXT PRIMARY KEY, seq INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS delivered_seq ON delivered (seq)",
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
)


class QueueError(ValueError):
    """The queue file cannot be opened or written (path, permissions, a damaged file).

    A ValueError: at start-up it is a configuration problem (``siem.queue_dir``).
    """


@dataclass(frozen=True, slots=True)
class Pending:
    """A message to queue: its key, kind, when it was made, and how to build it from its number."""

    key: str
    kind: str
    created_ms: int
    build: Callable[[int], bytes]


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    """One message waiting for delivery."""

    seq: int
    key: str
    kind: str
    message: bytes


class DiskQueue:
    """A bounded on-disk FIFO of messages, kept until confirmed delivered."""

    def __init__(self, path: Path, *, max_events: int, max_bytes: int) -> None:
        if max_events < 1 or max_bytes < 1:
            raise ValueError("max_events and max_bytes must be at least 1")
        self.path = path
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.dropped = 0
        self.duplicates = 0
        self._lock = threading.Lock()
        self._unreported_drops = 0
        self._last_drop_warning = float("-inf")
        self._lock_file = _exclusive_lock(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=30.0
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            for statement in _SCHEMA:
                self._db.execute(statement)
            count, size = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM entries"
            ).fetchone()
        except (OSError, sqlite3.Error) as exc:
            os.close(self._lock_file)
            raise QueueError(
                f"cannot open the SIEM queue {path}: {exc} (siem.queue_dir sets where it lives)"
            ) from None
        self._count = int(count)
        self._bytes = int(size)

    # ------------------------------------------------------------------ reading state

    @property
    def depth(self) -> int:
        """Messages waiting."""
        return self._count

    @property
    def size_bytes(self) -> int:
        """Bytes of the messages waiting."""
        return self._bytes

    def _next_seq(self) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE name = 'next_seq'").fetchone()
        if row is not None:
            return int(row[0])
        newest = self._db.execute(
            "SELECT MAX(m) FROM (SELECT MAX(seq) AS m FROM entries"
            " UNION ALL SELECT MAX(seq) FROM delivered)"
        ).fetchone()[0]
        return int(newest or 0) + 1

    # ------------------------------------------------------------------ writing

    def append(
        self, key: str, kind: str, created_ms: int, build: Callable[[int], bytes]
    ) -> int | None:
        """Queue the message ``build(seq)`` under ``key``; its sequence number, or None.

        None when ``key`` is queued or was delivered already (counted in
        ``duplicates``) or the message alone is larger than ``max_bytes``
        (counted in ``dropped``).
        """
        return self.append_many([Pending(key, kind, created_ms, build)])[0]

    def append_many(self, items: Sequence[Pending]) -> list[int | None]:
        """Queue several messages in order, in one transaction (one disk sync for all)."""
        if not items:
            return []
        with self._lock:
            try:
                return self._append_many(items)
            except sqlite3.Error as exc:
                with_rollback(self._db)
                raise QueueError(f"cannot write to the SIEM queue {self.path}: {exc}") from None

    def _append_many(self, items: Sequence[Pending]) -> list[int | None]:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        count, total = self._count, self._bytes
        next_seq = self._next_seq()
        dropped = duplicates = 0
        too_large: list[int] = []
        out: list[int | None] = []
        for item in items:
            seen = db.execute(
                "SELECT 1 FROM entries WHERE key = ?"
                " UNION ALL SELECT 1 FROM delivered WHERE key = ?",
                (item.key, item.key),
            ).fetchone()
            if seen is not None:
                duplicates += 1
                out.append(None)
                continue
            message = item.build(next_seq)
            size = len(message)
            if size > self.max_bytes:
                too_large.append(size)
                out.append(None)
                continue
            while count > 0 and (count + 1 > self.max_events or total + size > self.max_bytes):
                oldest = db.execute(
                    "SELECT seq, size FROM entries ORDER BY seq LIMIT 64"
                ).fetchall()
                for old_seq, old_size in oldest:
                    if not (count + 1 > self.max_events or total + size > self.max_bytes):
                        break
                    db.execute("DELETE FROM entries WHERE seq = ?", (old_seq,))
                    count -= 1
                    total -= int(old_size)
                    dropped += 1
            db.execute(
                "INSERT INTO entries (seq, key, kind, created_ms, size, message)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (next_seq, item.key, item.kind, item.created_ms, size, message),
            )
            out.append(next_seq)
            next_seq += 1
            count += 1
            total += size
        db.execute(
            "INSERT INTO meta (name, value) VALUES ('next_seq', ?)"
            " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (next_seq,),
        )
        db.execute("COMMIT")
        self._count, self._bytes = count, total
        self.duplicates += duplicates
        if dropped:
            self._count_drops(dropped, "the queue is full (max_events / max_queue_bytes)")
        if too_large:
            self._count_drops(
                len(too_large), f"a {max(too_large)}-byte message is larger than max_queue_bytes"
            )
        return out

    def _count_drops(self, dropped: int, why: str) -> None:
        self.dropped += dropped
        self._unreported_drops += dropped
        now = time.monotonic()
        if now - self._last_drop_warning >= DROP_WARNING_INTERVAL_S:
            log.warning(
                "SIEM queue %s: %s; dropped %d message(s), the oldest first (%d in all so far)",
                self.path.name,
                why,
                self._unreported_drops,
                self.dropped,
            )
            self._unreported_drops = 0
            self._last_drop_warning = now

    def peek(self, limit: int = 100, max_bytes: int = 1 << 20) -> list[QueuedMessage]:
        """The oldest waiting messages, in order: at most ``limit`` and about ``max_bytes``."""
        with self._lock:
            try:
                rows = self._db.execute(
                    "SELECT seq, key, kind, message FROM entries ORDER BY seq LIMIT ?", (limit,)
                ).fetchall()
            except sqlite3.Error as exc:
                raise QueueError(f"cannot read the SIEM queue {self.path}: {exc}") from None
        out: list[QueuedMessage] = []
        total = 0
        for seq, key, kind, message in rows:
            if out and total + len(message) > max_bytes:
                break
            out.append(QueuedMessage(int(seq), str(key), str(kind), bytes(message)))
            total += len(message)
        return out

    def confirm(self, delivered: list[QueuedMessage]) -> None:
        """Remove ``delivered`` (the receiver took them) and remember their keys."""
        if not delivered:
            return
        with self._lock:
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
                removed = 0
                freed = 0
                for item in delivered:
                    row = db.execute(
                        "DELETE FROM entries WHERE seq = ? RETURNING size", (item.seq,)
                    ).fetchone()
                    if row is not None:
                        removed += 1
                        freed += int(row[0])
                db.executemany(
                    "INSERT OR REPLACE INTO delivered (key, seq) VALUES (?, ?)",
                    [(item.key, item.seq) for item in delivered],
                )
                db.execute(
                    "DELETE FROM delivered WHERE seq <= ?",
                    (delivered[-1].seq - REMEMBERED_KEYS,),
                )
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                with_rollback(db)
                raise QueueError(f"cannot write to the SIEM queue {self.path}: {exc}") from None
            self._count -= removed
            self._bytes -= freed

    def close(self) -> None:
        """Close the file (what is queued stays for the next start)."""
        with self._lock:
            self._db.close()
            if self._lock_file >= 0:
                with contextlib.suppress(OSError):
                    os.close(self._lock_file)  # closing releases the lock
                self._lock_file = -1


def _exclusive_lock(path: Path) -> int:
    """Hold an exclusive lock on ``<path>.lock`` (its descriptor); QueueError when taken."""
    lock_path = path.with_name(path.name + ".lock")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise QueueError(
            f"cannot open the SIEM queue {path}: {exc} (siem.queue_dir sets where it lives)"
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise QueueError(
            f"the SIEM queue {path} is in use by another secperf process: one process per"
            " store forwards to a SIEM; stop the other one first"
        ) from None
    return fd


def with_rollback(db: sqlite3.Connection) -> None:
    """Roll back an open transaction after a failure (nothing when none is open)."""
    if db.in_transaction:
        try:
            db.execute("ROLLBACK")
        except sqlite3.Error:
            log.debug("rollback failed", exc_info=True)
