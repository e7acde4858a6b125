"""What every record mixin of ``Store`` shares: JSON payloads, the clock, input checks.

Each row has the columns queries filter on plus the model object as a JSON
payload, serialised with pydantic's TypeAdapter of the model dataclass (as
``events.py`` does), so a row reads back as the exact object written. Writes
that may be delivered twice (bus re-delivery) are idempotent upserts written
as select-then-insert/update, which both engines run unchanged.

Every write transaction also appends the events it stores to the event log
(``store/event_log.py``), in the same transaction: the ones a record method
passes to ``_write_tx`` (people's actions: a triage, an acknowledgement) and
the ones queued with ``Store.outbox`` around a record call (the store writer,
for the bus events it persists).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import TypeAdapter
from sqlalchemy import Connection, Engine, select

from secperf.events import Event, now_ms
from secperf.store.event_log import (
    METRIC_TOPICS,
    PRUNE_BATCH,
    EventLogRetention,
    LogEntry,
    append_entries,
    last_seq,
    prune_batch,
    read_cursor,
    read_entries,
    save_cursor,
    seq_bounds,
)
from secperf.store.schema import event_log_cursors

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Most values bound in one ``IN (...)`` clause (SQLite's limit is far above).
IN_BATCH = 500

_ADAPTERS: dict[type[Any], TypeAdapter[Any]] = {}


def _adapter(cls: type[Any]) -> TypeAdapter[Any]:
    adapter = _ADAPTERS.get(cls)
    if adapter is None:
        adapter = _ADAPTERS[cls] = TypeAdapter(cls)
    return adapter


def to_json(obj: Any) -> str:
    """A model dataclass as JSON text."""
    return _adapter(type(obj)).dump_json(obj).decode()


def from_json(cls: type[T], text: str) -> T:
    """The model dataclass ``cls`` back from ``to_json``'s text."""
    value: T = _adapter(cls).validate_json(text)
    return value


def clock_ms() -> int:
    """The wall clock in UTC milliseconds."""
    return now_ms()


def require_text(what: str, value: Any) -> str:
    """``value`` when it is a non-empty string; ValueError naming ``what`` otherwise."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")
    return value


#: A store appending this many log entries prunes the log once (so the log is
#: bounded even where no server runs).
PRUNE_EVERY_APPENDS = 500
#: Writers prune the log at most this often, across processes: each prune reads
#: every old entry (~40 ms per 100,000), and a scan appends thousands of them.
PRUNE_INTERVAL_MS = 60_000
#: The ``event_log_cursors`` row whose ``updated_ms`` says when a writer last pruned.
PRUNED_MARKER = "secperf:pruned"

#: Events queued with ``Store.outbox``, per thread and per store.
_OUTBOX = threading.local()


@dataclass(slots=True)
class _Pending:
    """Events queued for the next write transaction of one store in one thread."""

    events: list[Event]
    origin: str | None
    appended: bool = False


def _pending_for(store: object) -> _Pending | None:
    table: dict[int, _Pending] | None = getattr(_OUTBOX, "pending", None)
    return None if table is None else table.get(id(store))


class RecordMixin:
    """Base of the record mixins; ``Store`` provides ``_engine``, ``_writer`` and ``_lock``.

    Reads go through ``_engine``; every write transaction through ``_writer``
    (``engine.write_engine``), which takes SQLite's write lock at BEGIN.
    """

    _engine: Engine
    _writer: Engine
    _lock: threading.RLock

    @contextlib.contextmanager
    def _write_tx(self, events: Sequence[Event] = ()) -> Iterator[Connection]:
        """One write transaction, under the store's lock; every record write goes here.

        ``events`` (and the events queued with ``outbox``, the first time)
        are appended to the event log inside it, after the records.
        """
        pending = _pending_for(self)
        queued = pending is not None and not pending.appended
        appended = 0
        with self._lock:
            with self._writer.begin() as conn:
                yield conn
                now = clock_ms()
                if queued:
                    assert pending is not None
                    appended += append_entries(conn, pending.events, pending.origin, now)
                if events:
                    appended += append_entries(conn, list(events), None, now)
            if queued:
                assert pending is not None
                pending.appended = True  # only once committed
            if appended:
                self._appended_since_prune = getattr(self, "_appended_since_prune", 0) + appended
        if getattr(self, "_appended_since_prune", 0) >= PRUNE_EVERY_APPENDS:
            self._appended_since_prune = 0
            try:
                self.prune_event_log_if_due()
            except Exception as exc:  # a later append tries again; the write itself is done
                log.warning("pruning the event log failed: %s", exc)

    @contextlib.contextmanager
    def outbox(self, events: Sequence[Event], *, origin: str | None = None) -> Iterator[None]:
        """Append ``events`` to the event log in the first write transaction within.

        ``origin`` names the bus the events are on already (its followers skip
        them). When nothing within writes (or everything within was written
        already), the events are appended in a transaction of their own on the
        way out; when the block raises, they are not appended at all.
        """
        table: dict[int, _Pending] | None = getattr(_OUTBOX, "pending", None)
        if table is None:
            table = _OUTBOX.pending = {}
        if id(self) in table:
            raise RuntimeError("Store.outbox blocks do not nest")
        pending = table[id(self)] = _Pending(list(events), origin)
        try:
            yield
        finally:
            del table[id(self)]
        if not pending.appended and pending.events:
            self.append_events(pending.events, origin=origin)

    def append_events(self, events: Sequence[Event], *, origin: str | None = None) -> int:
        """Append ``events`` to the event log in a transaction of their own; returns how many."""
        with self._lock, self._writer.begin() as conn:
            count = append_entries(conn, list(events), origin, clock_ms())
        return count

    def configure_event_log(self, retention: EventLogRetention) -> None:
        """How long this store's event log keeps entries (``[store] event_log_*``)."""
        self._event_log_retention = retention

    @property
    def event_log_retention(self) -> EventLogRetention:
        """How long the event log keeps entries (defaults until ``configure_event_log``)."""
        found = getattr(self, "_event_log_retention", None)
        return found if isinstance(found, EventLogRetention) else EventLogRetention()

    def prune_event_log(self, now_ms: int | None = None) -> int:
        """Delete log entries past their retention, in small transactions; returns how many."""
        now = clock_ms() if now_ms is None else now_ms
        keep = self.event_log_retention
        removed = 0
        for cutoff, topics in ((now - keep.metrics_ms, METRIC_TOPICS), (now - keep.all_ms, None)):
            while True:
                with self._lock, self._writer.begin() as conn:
                    done = prune_batch(conn, cutoff, topics)
                removed += done
                if done < PRUNE_BATCH:
                    break
        return removed

    def prune_event_log_if_due(self, now_ms: int | None = None) -> int:
        """``prune_event_log`` unless a writer of any process did within ``PRUNE_INTERVAL_MS``.

        What writers call: a terminal's scans, each appending thousands of
        entries, prune at most once a minute between them. Returns how many
        entries were deleted (0 when not due).
        """
        now = clock_ms() if now_ms is None else now_ms
        with self._engine.connect() as conn:
            last = conn.execute(
                select(event_log_cursors.c.updated_ms).where(
                    event_log_cursors.c.name == PRUNED_MARKER
                )
            ).scalar()
        # A clock set back makes the last prune look in the future: prune then.
        if last is not None and 0 <= now - int(last) < PRUNE_INTERVAL_MS:
            return 0
        removed = self.prune_event_log(now)
        with self._lock, self._writer.begin() as conn:
            save_cursor(conn, PRUNED_MARKER, 0, now)
        return removed

    # ------------------------------------------------------------------ reading the log

    def read_event_log(self, after_seq: int, limit: int = 500) -> list[LogEntry]:
        """Up to ``limit`` event log entries after ``after_seq``, oldest first."""
        with self._engine.connect() as conn:
            return read_entries(conn, after_seq, limit)

    def event_log_bounds(self) -> tuple[int, int, int]:
        """``(oldest, newest, last given)`` sequence numbers of the event log (0: none)."""
        with self._engine.connect() as conn:
            oldest, newest = seq_bounds(conn)
            return oldest, newest, max(newest, last_seq(conn))

    def event_log_cursor(self, name: str) -> int | None:
        """Where the event log follower ``name`` has read up to (None: never read)."""
        with self._engine.connect() as conn:
            return read_cursor(conn, name)

    def save_event_log_cursor(self, name: str, seq: int) -> None:
        """Record that the event log follower ``name`` has read up to ``seq``."""
        require_text("event log cursor name", name)
        with self._lock, self._writer.begin() as conn:
            save_cursor(conn, name, seq, clock_ms())
