"""The event log (outbox): events appended with their records, for other processes.

On the embedded default (SQLite store, in-process bus) each process has its own
bus, so a ``secperf scan`` in a terminal would never reach a running
``secperf serve``. The store carries the events instead: every write
transaction that stores records appends the events they come from to
``event_log`` (see ``RecordMixin._write_tx``), and servers follow the log onto
their own bus (``store/follower.py``).

Each entry holds ``events.encode_event``'s JSON (zlib-compressed when that
saves space), the event's id, topic and time, when it was appended, and its
``origin``: the id of the bus the event was on already (the appending
process's store writer), or None for what was written straight to the store
(a triage from the CLI, an acknowledgement). A follower skips its own origin.

Sequence numbers grow in commit order: SQLite has one writer at a time, and on
PostgreSQL appending takes a transaction-scoped advisory lock, held until the
commit, so no reader ever sees a later number before an earlier one commits.
The append also sends ``NOTIFY secperf_event_log`` there, which followers
LISTEN to, with the store's schema as payload: followers of stores in other
schemas of the database ignore it.

The log has its own retention (``[store] event_log_retention``, metric batches
``event_log_metrics_retention``), pruned in small transactions.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, delete, func, select, text, update

from secperf.events import Event, MetricsRecorded, encode_event
from secperf.store.schema import event_log, event_log_cursors

#: The PostgreSQL channel appends notify and followers listen to.
NOTIFY_CHANNEL = "secperf_event_log"
#: The advisory lock that orders appends on PostgreSQL ("secl" in ASCII); the
#: second key is the schema's hash, as for migrations.
_PG_APPEND_LOCK = 0x7365636C
#: Payloads from this size up are compressed (smaller ones gain nothing).
COMPRESS_FROM = 1024
ENCODING_JSON = 0
ENCODING_ZLIB = 1
#: Entries deleted per pruning transaction, so no lock is held for long.
PRUNE_BATCH = 500
#: How long entries stay, and metric batches (only live charts need them).
DEFAULT_RETENTION_MS = 24 * 3_600_000
DEFAULT_METRICS_RETENTION_MS = 10 * 60_000


@dataclass(frozen=True, slots=True)
class EventLogRetention:
    """How long log entries stay: ``all_ms`` for events, ``metrics_ms`` for metric batches."""

    all_ms: int = DEFAULT_RETENTION_MS
    metrics_ms: int = DEFAULT_METRICS_RETENTION_MS

    def __post_init__(self) -> None:
        for name in ("all_ms", "metrics_ms"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"event log retention {name} must be a positive integer")


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One stored entry, not yet decoded (``payload`` as stored)."""

    seq: int
    event_id: str
    topic: str
    ts_ms: int
    written_ms: int
    origin: str | None
    encoding: int
    payload: bytes


class EntryDecodeError(ValueError):
    """An entry's payload cannot be read; ``kind`` names the sort of problem (for logs)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def encode_payload(event: Event) -> tuple[int, bytes]:
    """``(encoding, bytes)`` of an event: its JSON, compressed when it is large."""
    raw = encode_event(event)
    if len(raw) >= COMPRESS_FROM:
        packed = zlib.compress(raw, 1)
        if len(packed) < len(raw):
            return ENCODING_ZLIB, packed
    return ENCODING_JSON, raw


def payload_json(entry: LogEntry) -> bytes:
    """The entry's event JSON; EntryDecodeError when the encoding is unknown or damaged."""
    if entry.encoding == ENCODING_JSON:
        return entry.payload
    if entry.encoding == ENCODING_ZLIB:
        try:
            return zlib.decompress(entry.payload)
        except zlib.error as exc:
            raise EntryDecodeError("damaged compression", f"cannot decompress: {exc}") from None
    raise EntryDecodeError(
        "unknown encoding",
        f"unknown payload encoding {entry.encoding} (written by a newer secperf?)",
    )


def append_entries(
    conn: Connection, events: Sequence[Event], origin: str | None, now_ms: int
) -> int:
    """Append ``events`` in ``conn``'s transaction (in order); returns how many.

    An event already in the log (same id: a write delivered twice) is not
    appended again.
    """
    if not events:
        return 0
    postgres = conn.dialect.name == "postgresql"
    if postgres:
        conn.execute(
            text("SELECT pg_advisory_xact_lock(:k, hashtext(current_schema()))"),
            {"k": _PG_APPEND_LOCK},
        )
    ids = [e.id for e in events]
    present: set[str] = set()
    for i in range(0, len(ids), 500):
        present.update(
            conn.execute(
                select(event_log.c.event_id).where(event_log.c.event_id.in_(ids[i : i + 500]))
            ).scalars()
        )
    rows = []
    for event in events:
        if event.id in present:
            continue
        present.add(event.id)
        encoding, payload = encode_payload(event)
        rows.append(
            {
                "event_id": event.id,
                "topic": event.topic,
                "ts_ms": event.ts_ms,
                "written_ms": now_ms,
                "origin": origin,
                "encoding": encoding,
                "payload": payload,
            }
        )
    if rows:
        conn.execute(event_log.insert(), rows)
        if postgres:
            # The schema as payload: followers of stores in other schemas of the
            # database hear the channel too, and ignore it.
            conn.execute(text("SELECT pg_notify(:c, current_schema())"), {"c": NOTIFY_CHANNEL})
    return len(rows)


def read_entries(conn: Connection, after_seq: int, limit: int) -> list[LogEntry]:
    """Up to ``limit`` entries after ``after_seq``, oldest first."""
    stmt = (
        select(event_log).where(event_log.c.seq > after_seq).order_by(event_log.c.seq).limit(limit)
    )
    return [
        LogEntry(
            int(r.seq),
            r.event_id,
            r.topic,
            int(r.ts_ms),
            int(r.written_ms),
            r.origin,
            int(r.encoding),
            bytes(r.payload),
        )
        for r in conn.execute(stmt)
    ]


def seq_bounds(conn: Connection) -> tuple[int, int]:
    """``(oldest, newest)`` sequence numbers in the log; ``(0, 0)`` when it is empty."""
    row = conn.execute(select(func.min(event_log.c.seq), func.max(event_log.c.seq))).one()
    return int(row[0] or 0), int(row[1] or 0)


def last_seq(conn: Connection) -> int:
    """The newest sequence number ever given, even when its entry is pruned (0: none)."""
    if conn.dialect.name == "sqlite":
        row = conn.exec_driver_sql(
            "SELECT seq FROM sqlite_sequence WHERE name = 'event_log'"
        ).first()
        return int(row[0]) if row is not None else 0
    if conn.dialect.name == "postgresql":
        # The column's sequence: a log pruned to empty still knows the last number
        # (NULL when none was ever given).
        value = conn.execute(
            text(
                "SELECT pg_sequence_last_value("
                "CAST(pg_get_serial_sequence('event_log', 'seq') AS regclass))"
            )
        ).scalar()
        return int(value or 0)
    return seq_bounds(conn)[1]


def read_cursor(conn: Connection, name: str) -> int | None:
    """Where the follower ``name`` has read up to, or None when it never read."""
    found = conn.execute(
        select(event_log_cursors.c.seq).where(event_log_cursors.c.name == name)
    ).scalar()
    return None if found is None else int(found)


def save_cursor(conn: Connection, name: str, seq: int, now_ms: int) -> None:
    """Record that the follower ``name`` has read up to ``seq``."""
    changed = conn.execute(
        update(event_log_cursors)
        .where(event_log_cursors.c.name == name)
        .values(seq=seq, updated_ms=now_ms)
    ).rowcount
    if not changed:
        conn.execute(event_log_cursors.insert().values(name=name, seq=seq, updated_ms=now_ms))


def prune_batch(conn: Connection, cutoff_ms: int, topics: Iterable[str] | None = None) -> int:
    """Delete up to ``PRUNE_BATCH`` entries appended before ``cutoff_ms`` (only ``topics``)."""
    oldest = select(event_log.c.seq).where(event_log.c.written_ms < cutoff_ms)
    if topics is not None:
        oldest = oldest.where(event_log.c.topic.in_(list(topics)))
    found = conn.execute(oldest.order_by(event_log.c.seq).limit(PRUNE_BATCH)).scalars()
    chosen = [int(s) for s in found]
    if not chosen:
        return 0
    conn.execute(delete(event_log).where(event_log.c.seq.in_(chosen)))
    return len(chosen)


#: Topics of the short-lived entries.
METRIC_TOPICS = (MetricsRecorded.topic,)
