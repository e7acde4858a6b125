"""The SIEM forwarder: bus subscriber → records → one on-disk queue per output → sender.

``SiemForwarder`` subscribes to every topic on the bus (one subscription, so
events keep their order), turns each security event into records once
(``RecordBuilder``) and appends each record, formatted, to the queue of every
output that asked for its kind. Appending is a committed SQLite write: from
then on the message survives a SIEM outage and a restart of secperf.

Each ``SiemOutput`` has a sender thread: it sends the oldest waiting messages
in order, in batches, over one TCP or TLS connection, and removes them from
the queue only once their receipt is confirmed (see ``syslog.py``). A failed
connection or send is retried from the first unconfirmed message, after a
pause that doubles from ``retry_initial`` up to ``retry_max``. Queue depth,
sent, failed, dropped and the last error are in ``stats()`` (``/metrics``
``secperf_siem_*`` and ``GET /api/v1/integrations``).
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from secperf.bus.interface import EventBus, Subscription
from secperf.config.sections.siem import SiemConfig, SiemOutputConfig
from secperf.events import Event, MetricsRecorded, now_ms
from secperf.siem.format_cef import format_cef
from secperf.siem.format_ecs import format_ecs
from secperf.siem.queue import DiskQueue, Pending, QueuedMessage, QueueError
from secperf.siem.records import SYSLOG_SEVERITY, SiemRecord
from secperf.siem.syslog import (
    SyslogConnection,
    SyslogError,
    SyslogHeader,
    build_message,
    frame,
    tls_context,
)
from secperf.siem.translate import TOPICS, RecordBuilder
from secperf.store import Store

log = logging.getLogger(__name__)

#: Messages sent per batch at the most (one confirmation per batch).
BATCH_MESSAGES = 200
#: Bytes sent per batch, about.
BATCH_BYTES = 256 * 1024
#: How long the receiver's TCP stack has to acknowledge a batch.
CONFIRM_TIMEOUT_S = 15.0
#: Records queued per transaction at the most (a scan's findings come in chunks).
ENQUEUE_CHUNK = 200
#: The bus queue of the forwarder's subscription (security events are never dropped).
SUBSCRIPTION_QUEUE = 10_000

Formatter = Callable[[SiemRecord, int], str]
FORMATTERS: dict[str, Formatter] = {"cef": format_cef, "ecs": format_ecs}


@dataclass(frozen=True, slots=True)
class SiemOutputStats:
    """What one output has done: the numbers ``/metrics`` and the API show."""

    name: str
    address: str
    format: str
    queued: int
    queued_bytes: int
    sent: int
    failed: int
    dropped: int
    duplicates: int
    connected: bool
    last_error: str | None
    last_error_ms: int | None
    last_sent_ms: int | None


def queue_path(queue_dir: Path, output: SiemOutputConfig) -> Path:
    """Where ``output``'s queue lives: ``<queue_dir>/siem-<name>.db``."""
    return queue_dir / f"siem-{output.queue_name}.db"


def default_queue_dir(store: Store) -> Path:
    """The SQLite store's directory; ``.secperf/`` in the working directory for other stores."""
    database = store.engine.url.database
    if store.dialect == "sqlite" and database not in (None, "", ":memory:"):
        return Path(str(database)).resolve().parent
    return Path.cwd() / ".secperf"


class SiemSetupError(ValueError):
    """An output cannot be set up from its configuration (its TLS files); names the output."""


class SiemOutput:
    """One receiver: its queue, its message format and its sender thread."""

    def __init__(self, config: SiemOutputConfig, queue: DiskQueue) -> None:
        self.config = config
        self.queue = queue
        self.kinds = frozenset(config.events)
        self.formatter = FORMATTERS[config.format]
        self.header = SyslogHeader(facility=config.facility, app_name=config.app_name)
        context = None
        if config.is_tls:
            try:
                context = tls_context(
                    ca_file=config.ca_file,
                    verify=config.verify,
                    cert_file=config.cert_file,
                    key_file=config.key_file,
                )
            except (OSError, ssl.SSLError) as exc:
                raise SiemSetupError(
                    f"SIEM output {config.queue_name}: cannot load its TLS files"
                    f" (ca_file, cert_file, key_file): {exc}"
                ) from None
        self.connection = SyslogConnection(
            config.host,
            config.port,
            context=context,
            server_name=config.server_name,
            timeout_s=config.connect_timeout / 1000,
        )
        self.sent = 0
        self.failed = 0
        self.last_error: str | None = None
        self.last_error_ms: int | None = None
        self.last_sent_ms: int | None = None
        self._logged_error: str | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def name(self) -> str:
        return self.config.queue_name

    def wants(self, record: SiemRecord) -> bool:
        """Whether this output forwards records of ``record.kind``."""
        return record.kind in self.kinds

    def enqueue(self, records: Sequence[SiemRecord]) -> list[int | None]:
        """Format and queue ``records`` in one transaction (blocking); their numbers.

        None for a record refused (already queued or delivered, or too large).
        """
        created = now_ms()
        seqs = self.queue.append_many(
            [Pending(r.key, r.kind, created, partial(self._message, r)) for r in records]
        )
        if any(seq is not None for seq in seqs):
            self._wake.set()
        return seqs

    def _message(self, record: SiemRecord, seq: int) -> bytes:
        return build_message(
            self.header,
            severity=SYSLOG_SEVERITY[record.severity],
            ts_ms=record.ts_ms,
            hostname=record.host,
            msgid=record.kind,
            sequence=seq,
            key=record.key,
            text=self.formatter(record, seq),
        )

    def stats(self) -> SiemOutputStats:
        """A snapshot of this output's numbers."""
        return SiemOutputStats(
            name=self.name,
            address=self.config.address,
            format=self.config.format,
            queued=self.queue.depth,
            queued_bytes=self.queue.size_bytes,
            sent=self.sent,
            failed=self.failed,
            dropped=self.queue.dropped,
            duplicates=self.queue.duplicates,
            connected=self.connection.connected,
            last_error=self.last_error,
            last_error_ms=self.last_error_ms,
            last_sent_ms=self.last_sent_ms,
        )

    # ------------------------------------------------------------------ sending thread

    def start(self) -> None:
        """Start the sender thread (it sends what an earlier run left queued first)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"siem-{self.name}", daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop sending (blocking); what is queued stays on disk for the next start."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout_s)
            if thread.is_alive():
                log.warning(
                    "SIEM output %s: the sender did not stop within %.0f s", self.name, timeout_s
                )
        self.connection.close()
        self.queue.close()

    def _run(self) -> None:
        delay_s = self.config.retry_initial / 1000
        while not self._stop.is_set():
            try:
                batch = self.queue.peek(BATCH_MESSAGES, BATCH_BYTES)
            except QueueError as exc:
                self.record_failure(str(exc))
                self._stop.wait(delay_s)
                continue
            if not batch:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            try:
                self._deliver(batch)
            except Exception as exc:  # the sender must outlive any failure; it retries
                if not isinstance(exc, SyslogError | QueueError):
                    log.exception("SIEM output %s: unexpected failure", self.name)
                self.record_failure(str(exc) or type(exc).__name__)
                # Jitter keeps many servers from retrying in step.
                self._stop.wait(delay_s * (1 + 0.1 * random.random()))  # noqa: S311
                delay_s = min(delay_s * 2, self.config.retry_max / 1000)
                continue
            delay_s = self.config.retry_initial / 1000

    def _deliver(self, batch: list[QueuedMessage]) -> None:
        connection = self.connection
        if not connection.connected or connection.peer_closed():
            connection.connect()
            log.info("SIEM output %s: connected to %s", self.name, self.config.address)
        connection.send([frame(m.message) for m in batch], CONFIRM_TIMEOUT_S)
        self.queue.confirm(batch)
        self.sent += len(batch)
        self.last_sent_ms = now_ms()
        if self._logged_error is not None:
            log.info("SIEM output %s: delivering again", self.name)
            self._logged_error = None

    def record_failure(self, why: str) -> None:
        """Count a failed attempt and keep its reason as the last error."""
        self.failed += 1
        self.last_error = why
        self.last_error_ms = now_ms()
        # One line per new reason (or outage); the same failure again is counted, not repeated.
        first = self._logged_error != why
        self._logged_error = why
        (log.warning if first else log.debug)("SIEM output %s: %s; retrying", self.name, why)


class SiemForwarder:
    """Forwards security events from the bus to every configured SIEM output."""

    def __init__(self, store: Store, bus: EventBus, outputs: list[SiemOutput]) -> None:
        self.bus = bus
        self.outputs = outputs
        self.builder = RecordBuilder(store)
        self.forwarded = 0
        self._subscription: Subscription | None = None

    @classmethod
    def from_config(cls, config: SiemConfig, store: Store, bus: EventBus) -> SiemForwarder | None:
        """The forwarder ``[siem]`` asks for, or None without outputs.

        Opens each output's queue; raises QueueError (a ValueError: the queue's
        path is at fault) when one cannot be opened.
        """
        if not config.outputs:
            return None
        directory = config.queue_dir or default_queue_dir(store)
        outputs: list[SiemOutput] = []
        try:
            for output in config.outputs:
                path = queue_path(directory, output)
                queue = DiskQueue(
                    path, max_events=output.max_events, max_bytes=output.max_queue_bytes
                )
                try:
                    outputs.append(SiemOutput(output, queue))
                except Exception:
                    queue.close()
                    raise
        except Exception:
            for made in outputs:
                made.queue.close()
            raise
        return cls(store, bus, outputs)

    async def start(self) -> None:
        """Start the senders and subscribe to the bus."""
        for output in self.outputs:
            output.start()
        if self._subscription is None:
            self._subscription = await self.bus.subscribe(
                ">", self.handle, name="siem-forwarder", maxsize=SUBSCRIPTION_QUEUE
            )

    async def handle(self, event: Event) -> None:
        """The bus handler: queue the event's records for every output that wants them."""
        if isinstance(event, MetricsRecorded) or type(event).topic not in TOPICS:
            return
        await asyncio.to_thread(self._queue_records, event)

    def _queue_records(self, event: Event) -> None:
        records = self.builder.records(event)
        if not records:
            return
        for output in self.outputs:
            wanted = [r for r in records if output.wants(r)]
            try:
                # In chunks: the sender starts on the first while the rest are formatted.
                for start in range(0, len(wanted), ENQUEUE_CHUNK):
                    output.enqueue(wanted[start : start + ENQUEUE_CHUNK])
            except QueueError as exc:
                output.record_failure(str(exc))
                log.error("SIEM output %s: %d event(s) lost: %s", output.name, len(wanted), exc)
        self.forwarded += len(records)

    def stats(self) -> list[SiemOutputStats]:
        """Each output's numbers."""
        return [output.stats() for output in self.outputs]

    async def stop(self) -> None:
        """Unsubscribe (what the bus queued is handled first), then stop the senders."""
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            try:
                await subscription.unsubscribe()
            except Exception:  # the bus may be closing already
                log.debug("SIEM: unsubscribe failed", exc_info=True)
        await asyncio.to_thread(self.close)

    def close(self) -> None:
        """Stop the senders and close the queues (blocking; idempotent)."""
        for output in self.outputs:
            output.stop()
