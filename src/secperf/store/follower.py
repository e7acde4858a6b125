"""``EventLogFollower``: the store's event log, republished onto this process's bus.

``secperf serve`` and ``secperf up`` run one over an in-process bus, so what
other processes store (a ``secperf scan`` in a terminal, a gate, an import, a
triage or an acknowledgement from the CLI, the actions behind another page)
reaches their alert engine and their open dashboards. With NATS configured,
events travel between processes through NATS and no follower runs.

The follower reads the log in order from where it left off: a named cursor in
the store (``event_log_cursors``), saved about once a second and at stop, so a
restarted server catches up on what was written while it was down. A cursor
older than what the log's retention kept starts at the oldest entry, with a
warning saying how many entries were missed; a follower that never ran starts
at the end (it does not replay history).

Each entry is republished once, in order, except the entries its own store
writer appended (same ``origin``: those events are on this bus already). The
writer is told about each republished event (``StoreWriter.skip_replayed``)
so it does not store it a second time. An entry that cannot be decoded (a
newer secperf's event, a damaged payload) is skipped and counted, its reason
logged once per kind; it never stops the follower.

Waking up is cheap. On SQLite a dedicated connection polls ``PRAGMA
data_version`` (which changes when another connection commits; it reads no
table) every ``poll_interval_s`` and the log is read only when it changed. On
PostgreSQL a dedicated connection LISTENs to the channel appends NOTIFY, and
the log is read at least every ``fallback_poll_s`` all the same; a lost
LISTEN connection is opened again with a growing pause, never in a tight
loop. The follower also prunes the log past its retention every
``prune_interval_s``; entries pruned before it read them are counted as
``missed``. ``stop`` is prompt: what is left stays in the log for the next
start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import text

from secperf.bus.interface import EventBus
from secperf.events import Event, EventDecodeError, decode_event, local_host
from secperf.store.event_log import NOTIFY_CHANNEL, EntryDecodeError, LogEntry, payload_json
from secperf.store.store import Store

if TYPE_CHECKING:
    from secperf.store.writer import StoreWriter

log = logging.getLogger(__name__)

#: How often SQLite's data_version is looked at.
POLL_INTERVAL_S = 0.075
#: The longest wait for a PostgreSQL notification before reading anyway.
FALLBACK_POLL_S = 1.0
#: Entries read (and republished) per read.
READ_BATCH = 500
#: How often the cursor is saved while entries are followed.
CURSOR_SAVE_INTERVAL_S = 1.0
#: How often the follower prunes the log.
PRUNE_INTERVAL_S = 60.0
#: The longest single wait on PostgreSQL's connection.
_NOTIFY_SLICE_S = 0.25
#: The first and the longest pause before opening a lost LISTEN connection again.
RECONNECT_MIN_S = 0.25
RECONNECT_MAX_S = 30.0
#: The longest wait for a LISTEN connection to open (seconds).
CONNECT_TIMEOUT_S = 5


def cursor_name(kind: str, instance: str) -> str:
    """The cursor of a ``kind`` of server (``serve``, ``up``) on this host.

    ``instance`` tells apart servers of one kind on one host and stays the same
    across restarts (what they listen on, e.g. ``127.0.0.1:8080``), so two
    servers never share a cursor and a restarted one resumes its own.
    """
    if not instance.strip():
        raise ValueError("an event log cursor name needs what tells its server apart")
    return f"{kind}@{local_host()}/{instance}"


@dataclass(frozen=True, slots=True)
class FollowerStats:
    """Counters of one follower."""

    position: int  # the last sequence number read
    followed: int  # entries republished onto the bus
    own: int  # entries of this process's own writer, skipped
    undecodable: int  # entries that could not be decoded, skipped
    missed: int  # entries pruned before this follower read them
    lag: int  # entries in the log not yet read, at the last read
    prune_removed: int  # entries this follower pruned


def _decode_kind(exc: EventDecodeError) -> str:
    """A fixed name for the sort of problem (messages vary: positions, type names)."""
    message = str(exc)
    for prefix, kind in _DECODE_KINDS:
        if message.startswith(prefix):
            return kind
    return "undecodable event"


#: ``EventDecodeError`` message beginnings and the kind each is reported as.
_DECODE_KINDS = (
    ("event is not valid JSON", "not JSON"),
    ("an event must be a JSON object", "not a JSON object"),
    ("unknown event type", "unknown event type (a newer secperf's?)"),
    ("invalid ", "invalid fields (a newer or older secperf's?)"),
)


class _Waiter(Protocol):
    def wait(self, timeout_s: float) -> bool:
        """Block up to ``timeout_s``; True when the log may have changed."""

    def close(self) -> None:
        """Release the connection."""


class _DataVersionWaiter:
    """SQLite: poll ``PRAGMA data_version`` on a connection of its own."""

    def __init__(self, path: str, interval_s: float) -> None:
        self.interval_s = interval_s
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()
        self._version = self._read()

    def _read(self) -> int:
        row = self._conn.execute("PRAGMA data_version").fetchone()
        return int(row[0])

    def wait(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                version = self._read()
            if version != self._version:
                self._version = version
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(self.interval_s, left))

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class _NotifyWaiter:
    """PostgreSQL: LISTEN on a connection of its own; a bounded wait for a NOTIFY.

    A lost connection (server restart, killed backend) is opened again and
    LISTENs again, with a growing pause between attempts; until then ``wait``
    sleeps its whole timeout, so the follower reads at its fallback pace
    instead of spinning.
    """

    def __init__(self, connect_kwargs: dict[str, Any], schema: str | None = None) -> None:
        self._kwargs = connect_kwargs
        # Appends name their schema; others' (or none: an older secperf) wake it too.
        self._wakes = {"", schema} if schema else None
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._conn: Any = None
        self._backoff_s = RECONNECT_MIN_S
        self._next_attempt = 0.0
        self.reconnects = 0
        self._conn = self._connect()

    def _connect(self) -> Any:
        import psycopg

        # Bounded, so an unreachable server never holds ``close`` for long.
        options = {"connect_timeout": CONNECT_TIMEOUT_S, **self._kwargs}
        conn = psycopg.connect(**options, autocommit=True)
        try:
            conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
        except BaseException:
            conn.close()
            raise
        return conn

    def _lost(self, why: object) -> None:
        """Drop the connection (lock held); the next attempt comes after the pause."""
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None
            log.warning(
                "event log follower: the PostgreSQL connection listening for appends was lost"
                " (%s); connecting again",
                why,
            )
        self._next_attempt = time.monotonic() + self._backoff_s
        self._backoff_s = min(self._backoff_s * 2, RECONNECT_MAX_S)

    def _reconnect(self) -> bool:
        """One attempt (lock held); True when LISTENing again."""
        try:
            self._conn = self._connect()
        except Exception as exc:
            log.debug("event log follower: connecting again failed: %s", exc)
            self._next_attempt = time.monotonic() + self._backoff_s
            self._backoff_s = min(self._backoff_s * 2, RECONNECT_MAX_S)
            return False
        self._backoff_s = RECONNECT_MIN_S
        self.reconnects += 1
        log.info("event log follower: listening for appends again")
        return True

    def wait(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while not self._closing.is_set():
            now = time.monotonic()
            left = deadline - now
            if left <= 0:
                return False
            with self._lock:
                if self._closing.is_set():
                    return False
                if self._conn is None and now >= self._next_attempt and self._reconnect():
                    return True  # notifications may have been missed meanwhile: read
                conn = self._conn
                if conn is not None:
                    if conn.closed:
                        self._lost("closed")
                        continue
                    # In short slices, so ``close`` never waits long for the connection.
                    try:
                        slice_s = min(left, _NOTIFY_SLICE_S)
                        for note in conn.notifies(timeout=slice_s, stop_after=1):
                            if self._wakes is None or note.payload in self._wakes:
                                return True
                    except Exception as exc:
                        self._lost(exc)
                    continue
            # Not connected: sleep until the next attempt (or the deadline, or close).
            self._closing.wait(max(0.0, min(left, self._next_attempt - time.monotonic())))
        return False

    def close(self) -> None:
        self._closing.set()
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class _TimerWaiter:
    """A store no other process can reach (SQLite in memory): read now and then."""

    def wait(self, timeout_s: float) -> bool:
        time.sleep(timeout_s)
        return True

    def close(self) -> None:
        return None


class EventLogFollower:
    """Republish the store's event log onto ``bus`` (see the module doc).

    ``writer`` is this process's store writer on ``bus``: its entries are
    skipped and the events republished are not stored again by it.
    """

    def __init__(
        self,
        store: Store,
        bus: EventBus,
        *,
        name: str,
        writer: StoreWriter | None = None,
        poll_interval_s: float = POLL_INTERVAL_S,
        fallback_poll_s: float = FALLBACK_POLL_S,
        read_batch: int = READ_BATCH,
        cursor_save_interval_s: float = CURSOR_SAVE_INTERVAL_S,
        prune_interval_s: float = PRUNE_INTERVAL_S,
    ) -> None:
        if not name.strip():
            raise ValueError("an event log follower needs a cursor name")
        if read_batch < 1:
            raise ValueError(f"read_batch must be at least 1, got {read_batch}")
        self.store = store
        self.bus = bus
        self.name = name
        self.writer = writer
        self.origin = writer.origin if writer is not None else None
        self.poll_interval_s = poll_interval_s
        self.fallback_poll_s = fallback_poll_s
        self.read_batch = read_batch
        self.cursor_save_interval_s = cursor_save_interval_s
        self.prune_interval_s = prune_interval_s
        self.position = 0
        self.followed = 0
        self.own = 0
        self.undecodable = 0
        self.missed = 0
        self.lag = 0
        self.prune_removed = 0
        self._saved = 0
        self._last_save = 0.0
        self._last_prune = time.monotonic()
        self._reported: set[str] = set()
        self._waiter: _Waiter | None = None
        self._task: asyncio.Task[None] | None = None
        self._read_lock = asyncio.Lock()
        self._stopping = False

    # ------------------------------------------------------------------ life

    async def start(self) -> None:
        """Find where to begin (the cursor), then follow in the background."""
        if self._task is not None:
            raise RuntimeError("the event log follower is already started")
        self._stopping = False
        await asyncio.to_thread(self._begin)
        self._waiter = await asyncio.to_thread(self._open_waiter)
        self._task = asyncio.create_task(self._run(), name=f"event-log-follower {self.name}")

    def _begin(self) -> None:
        cursor = self.store.event_log_cursor(self.name)
        oldest, _, last = self.store.event_log_bounds()
        if cursor is None or cursor > last:
            # Never ran here (or the log was rebuilt): begin with what comes next.
            self.position = last
        elif oldest and cursor < oldest - 1:
            self._count_missed(cursor, oldest)
            self.position = oldest - 1
        else:
            self.position = cursor
        self.store.save_event_log_cursor(self.name, self.position)
        self._saved = self.position
        self._last_save = time.monotonic()

    def _count_missed(self, position: int, oldest: int) -> None:
        """Entries between ``position`` and ``oldest`` were pruned before they were read."""
        missed = oldest - 1 - position
        self.missed += missed
        log.warning(
            "event log follower %s: its position (%d) is older than the log keeps; up to %d"
            " entries were pruned before they were read; going on from the oldest (%d)",
            self.name,
            position,
            missed,
            oldest,
        )

    def _open_waiter(self) -> _Waiter:
        engine = self.store.engine
        if engine.dialect.name == "postgresql":
            _, kwargs = engine.dialect.create_connect_args(engine.url)
            with engine.connect() as conn:  # the store's schema (its URL's ``schema=``)
                schema = conn.execute(text("SELECT current_schema()")).scalar()
            return _NotifyWaiter(dict(kwargs), str(schema) if schema else None)
        database = engine.url.database
        if database in (None, "", ":memory:"):
            return _TimerWaiter()
        return _DataVersionWaiter(str(database), self.poll_interval_s)

    async def stop(self) -> None:
        """Stop following promptly: save the cursor, release the connection.

        What is left to read stays in the log: the cursor keeps the position,
        the next start resumes there. A batch being republished is finished
        first, so no entry is half delivered.
        """
        self._stopping = True
        if self._task is not None:
            async with self._read_lock:  # ``follow`` gives it up after its batch
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None
        self._stopping = False  # a later ``follow`` reads everything again
        try:
            await self._save_cursor(force=True)
        except Exception as exc:
            log.warning("event log follower %s: saving its cursor failed: %s", self.name, exc)
        if self._waiter is not None:
            waiter, self._waiter = self._waiter, None
            await asyncio.to_thread(waiter.close)

    async def _run(self) -> None:
        waiter = self._waiter
        assert waiter is not None
        postgres = self.store.dialect == "postgresql"
        # The first pass reads what came between reading the cursor and opening the waiter.
        changed = True
        while True:
            try:
                if not changed:
                    changed = await asyncio.to_thread(waiter.wait, self.fallback_poll_s)
                if changed or postgres:  # PostgreSQL: the bounded poll reads anyway
                    changed = False
                    await self.follow()
                await self._save_cursor()
                if time.monotonic() - self._last_prune >= self.prune_interval_s:
                    self._last_prune = time.monotonic()
                    self.prune_removed += await asyncio.to_thread(self.store.prune_event_log)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store may come back: never stop following
                log.warning("event log follower %s: %s; trying again", self.name, exc)
                await asyncio.sleep(self.fallback_poll_s)
                changed = True

    # ------------------------------------------------------------------ following

    async def follow(self) -> int:
        """Read every entry after the position and republish it; returns how many."""
        published = 0
        async with self._read_lock:
            while True:
                batch = await asyncio.to_thread(self._read, self.position)
                for entry, event in batch:
                    if event is not None:
                        if self.writer is not None:
                            self.writer.skip_replayed(event.id)
                        await self.bus.publish(event)
                        self.followed += 1
                        published += 1
                    self.position = entry.seq
                if len(batch) < self.read_batch or self._stopping:
                    break
        return published

    def _read(self, after: int) -> list[tuple[LogEntry, Event | None]]:
        """Read and decode a batch (worker thread); own and bad entries come back as None."""
        entries = self.store.read_event_log(after, self.read_batch)
        if entries:
            oldest, newest, _ = self.store.event_log_bounds()
            self.lag = max(0, newest - entries[-1].seq)
            # Nothing older than what came first: the log was pruned past the position.
            first = min(oldest, entries[0].seq) if oldest else entries[0].seq
            if first > after + 1 and first == entries[0].seq:
                self._count_missed(after, first)
        else:
            self.lag = 0
        out: list[tuple[LogEntry, Event | None]] = []
        for entry in entries:
            if self.origin is not None and entry.origin == self.origin:
                self.own += 1
                out.append((entry, None))
                continue
            out.append((entry, self._decode(entry)))
        return out

    def _decode(self, entry: LogEntry) -> Event | None:
        try:
            return decode_event(payload_json(entry))
        except (EntryDecodeError, EventDecodeError) as exc:
            self.undecodable += 1
            kind = exc.kind if isinstance(exc, EntryDecodeError) else _decode_kind(exc)
            if kind not in self._reported:
                self._reported.add(kind)
                log.warning(
                    "event log follower %s: entry %d (%s) skipped, it cannot be read: %s"
                    " (further entries like it are skipped and counted without a word)",
                    self.name,
                    entry.seq,
                    entry.topic,
                    exc,
                )
            return None

    async def _save_cursor(self, *, force: bool = False) -> None:
        if self.position == self._saved:
            return
        if not force and time.monotonic() - self._last_save < self.cursor_save_interval_s:
            return
        position = self.position
        await asyncio.to_thread(self.store.save_event_log_cursor, self.name, position)
        self._saved = position
        self._last_save = time.monotonic()

    def stats(self) -> FollowerStats:
        """A snapshot of the counters."""
        return FollowerStats(
            self.position,
            self.followed,
            self.own,
            self.undecodable,
            self.missed,
            self.lag,
            self.prune_removed,
        )
