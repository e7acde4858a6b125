"""The live stream: every bus event to every connected browser, as Server-Sent Events.

One ``SseHub`` per app subscribes to the whole bus. Each event is encoded
once (``id:`` the event id, ``event:`` its type name, ``data:`` its JSON from
``secperf.events``) and kept in a ring buffer of the last ``buffer_size``
events, so a client reconnecting with ``Last-Event-ID`` gets what it missed.
Metric batches are the exception: they are not replayed (charts re-query
their range on reconnect) and are encoded only when a client takes one.

Each client has a bounded queue. The hub only appends to it and never waits,
so a slow client cannot slow the bus: when its queue is full the client is
disconnected, and its browser reconnects with ``Last-Event-ID`` and catches
up from the ring buffer. ``MetricsRecorded`` batches are thinned to at most
``metrics_per_second`` per client (a browser chart needs no more); every other
event is always delivered. A client may ask for one ``target`` and one
``host`` (``StreamScope``): it then gets only the events in that scope, as
the API's filters judge it (see ``event_scope``). A comment line (``: ping``) goes out every
``heartbeat_s`` seconds so proxies and clients know the stream is alive.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import time
from collections import OrderedDict, deque
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field

from secperf.bus.interface import EventBus, Subscription, topic_matches, validate_pattern
from secperf.events import (
    AlertAcknowledged,
    AlertChanged,
    Event,
    GateEvaluated,
    MetricsRecorded,
    ScanCompleted,
    ScanStarted,
    ViolationDetected,
    encode_event,
)

log = logging.getLogger(__name__)

#: Longest ``Last-Event-ID`` taken into account (event ids are 24 hex digits).
MAX_EVENT_ID_LENGTH = 128
#: How long browsers wait before reconnecting after the stream ends (ms).
RETRY_MS = 2000
#: Scans whose target the hub remembers, to place their findings' events.
SCAN_TARGETS_KEPT = 1024


@dataclass(frozen=True, slots=True)
class StreamScope:
    """The target and host a client asked for (None: any)."""

    target: str | None = None
    host: str | None = None

    @property
    def everything(self) -> bool:
        """Whether this scope lets every event through."""
        return self.target is None and self.host is None


#: An event's scope: the targets and the hosts it is about; None where it is
#: about none (a baseline, a triage, a silence), so every filter lets it pass.
EventScope = tuple[frozenset[str] | None, frozenset[str] | None]


def _label_scope(labels: Sequence[Mapping[str, str]]) -> EventScope:
    """Labelled things (alerts, samples) are about the target and host they carry."""
    targets = frozenset(v for lab in labels if (v := lab.get("target")) is not None)
    hosts = frozenset(v for lab in labels if (v := lab.get("host")) is not None)
    return targets, hosts


def event_scope(event: Event, scan_targets: Mapping[str, str]) -> EventScope:
    """What an event is about, judged as the API's ``target``/``host`` filters judge it.

    Scans and gate runs are about their target; a finding about its scan's
    target (from ``scan_targets``: None when the scan is unknown); alerts and
    metric samples about their labels, so one without a ``target`` label is
    outside every target's scope.
    """
    if isinstance(event, ScanStarted):
        return frozenset({event.target}), None
    if isinstance(event, ScanCompleted):
        return frozenset({event.metrics.target}), None
    if isinstance(event, GateEvaluated):
        return frozenset({event.result.target}), None
    if isinstance(event, ViolationDetected):
        target = scan_targets.get(event.scan_id)
        return (frozenset({target}) if target is not None else None), None
    if isinstance(event, AlertChanged | AlertAcknowledged):
        return _label_scope([event.alert.labels])
    if isinstance(event, MetricsRecorded):
        return _label_scope([s.labels for s in event.samples])
    return None, None


def scope_admits(scope: EventScope, wanted: StreamScope) -> bool:
    """Whether an event of ``scope`` belongs to the client's ``wanted`` scope."""
    targets, hosts = scope
    if wanted.target is not None and targets is not None and wanted.target not in targets:
        return False
    return wanted.host is None or hosts is None or wanted.host in hosts


class StreamEntry:
    """One event as the stream sends it; its text is built once, when first needed."""

    __slots__ = ("_event", "_frame", "_metrics", "event_id", "is_metrics", "scope", "seq", "topic")

    def __init__(
        self, seq: int, event: Event, scan_targets: Mapping[str, str] | None = None
    ) -> None:
        self.seq = seq
        self.event_id = event.id
        self.topic = event.topic
        self.is_metrics = isinstance(event, MetricsRecorded)
        # A metric batch's scope is judged per sample, and only for scoped clients.
        self._metrics = event if isinstance(event, MetricsRecorded) else None
        self.scope: EventScope = (
            (None, None) if self.is_metrics else event_scope(event, scan_targets or {})
        )
        self._event: Event | None = event
        self._frame: str | None = None

    def scoped(self, wanted: StreamScope) -> StreamEntry | None:
        """This entry as a client of ``wanted`` scope gets it, or None when outside it.

        A metric batch keeps only the samples in scope (a new entry with the
        same id); any other event passes whole or not at all.
        """
        if wanted.everything:
            return self
        batch = self._metrics
        if batch is None:
            return self if scope_admits(self.scope, wanted) else None
        kept = tuple(s for s in batch.samples if scope_admits(_label_scope([s.labels]), wanted))
        if not kept:
            return None
        if len(kept) == len(batch.samples):
            return self
        return StreamEntry(self.seq, dataclasses.replace(batch, samples=kept))

    @property
    def frame(self) -> str:
        """``id:``, ``event:`` and ``data:`` lines of the event."""
        if self._frame is None:
            event = self._event
            assert event is not None
            data = encode_event(event).decode("utf-8")
            self._frame = f"id: {event.id}\nevent: {type(event).__name__}\ndata: {data}\n\n"
            self._event = None
        return self._frame


def parse_topics(text: str | None) -> tuple[str, ...]:
    """``"security.>,alerts.>"`` -> patterns; raises ValueError naming a bad one."""
    if text is None or not text.strip():
        return (">",)
    patterns = tuple(part.strip() for part in text.split(",") if part.strip())
    if not patterns:
        return (">",)
    for pattern in patterns:
        validate_pattern(pattern)
    return patterns


@dataclass(eq=False)
class SseClient:
    """One connected stream: its filter, its bounded queue and its thinning budget."""

    patterns: tuple[str, ...]
    queue_max: int
    metrics_per_second: float
    scope: StreamScope = field(default_factory=StreamScope)
    queue: deque[StreamEntry] = field(default_factory=deque)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    overflowed: bool = False
    closed: bool = False
    thinned: int = 0
    _tokens: float = 0.0
    _refilled: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self._tokens = self.metrics_per_second

    def wants(self, entry: StreamEntry) -> bool:
        """Whether the entry passes this client's topic filter and metric thinning."""
        if not any(topic_matches(p, entry.topic) for p in self.patterns):
            return False
        if entry.is_metrics and self.metrics_per_second > 0:
            now = time.monotonic()
            self._tokens = min(
                self.metrics_per_second,
                self._tokens + (now - self._refilled) * self.metrics_per_second,
            )
            self._refilled = now
            if self._tokens < 1.0:
                self.thinned += 1
                return False
            self._tokens -= 1.0
        return True

    def offer(self, entry: StreamEntry) -> None:
        """Queue a live entry; a full queue marks the client for disconnection."""
        if self.closed or self.overflowed:
            return
        scoped = entry.scoped(self.scope)
        if scoped is None or not self.wants(scoped):
            return
        entry = scoped
        if len(self.queue) >= self.queue_max:
            self.overflowed = True
            self.queue.clear()
        else:
            self.queue.append(entry)
        self.wakeup.set()

    def close(self) -> None:
        """End this client's stream."""
        self.closed = True
        self.wakeup.set()


class SseHub:
    """Fans bus events out to stream clients, keeping a replay buffer."""

    def __init__(
        self,
        bus: EventBus,
        *,
        buffer_size: int = 10_000,
        client_queue: int = 5_000,
        heartbeat_s: float = 15.0,
        metrics_per_second: float = 10.0,
    ) -> None:
        if buffer_size < 1 or client_queue < 1:
            raise ValueError("buffer_size and client_queue must be at least 1")
        if heartbeat_s <= 0:
            raise ValueError(f"heartbeat_s must be positive, got {heartbeat_s}")
        self.bus = bus
        self.buffer_size = buffer_size
        self.client_queue = client_queue
        self.heartbeat_s = heartbeat_s
        self.metrics_per_second = metrics_per_second
        self._buffer: deque[StreamEntry] = deque()
        self._index: dict[str, int] = {}
        self._seq = itertools.count(1)
        self._clients: set[SseClient] = set()
        self._scan_targets: OrderedDict[str, str] = OrderedDict()
        self._subscription: Subscription | None = None
        self.events_seen = 0
        self.slow_disconnects = 0
        self.connections = 0

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Subscribe to every topic of the bus."""
        if self._subscription is None:
            self._subscription = await self.bus.subscribe(
                ">", self._on_event, name=f"web-stream-{id(self):x}"
            )

    def close_clients(self) -> None:
        """End every open stream (at shutdown, so the server need not wait for them)."""
        for client in list(self._clients):
            client.close()

    async def stop(self) -> None:
        """Close every stream and unsubscribe."""
        self.close_clients()
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            await subscription.unsubscribe()

    @property
    def clients(self) -> int:
        """Streams open now."""
        return len(self._clients)

    # ------------------------------------------------------------------ events

    async def _on_event(self, event: Event) -> None:
        self.publish_local(event)

    def publish_local(self, event: Event) -> None:
        """Buffer an event and hand it to every client (runs on the event loop).

        Metric batches are not kept for replay (they can be large, and charts
        re-query on reconnect) and are encoded only if some client takes them.
        """
        self.events_seen += 1
        if isinstance(event, ScanStarted):
            self._scan_targets[event.scan_id] = event.target
            if len(self._scan_targets) > SCAN_TARGETS_KEPT:
                self._scan_targets.popitem(last=False)
        entry = StreamEntry(next(self._seq), event, self._scan_targets)
        if not entry.is_metrics:
            entry.frame  # noqa: B018 - encode now, while the event is fresh
            buffer = self._buffer
            if len(buffer) >= self.buffer_size:
                old = buffer.popleft()
                if self._index.get(old.event_id) == old.seq:
                    del self._index[old.event_id]
            buffer.append(entry)
            self._index[event.id] = entry.seq
        for client in self._clients:
            client.offer(entry)

    def _after(self, last_event_id: str | None) -> Sequence[StreamEntry]:
        """Buffered entries after ``last_event_id`` (none when it is None)."""
        if not last_event_id or not self._buffer:
            return ()
        seq = self._index.get(last_event_id)
        if seq is not None:
            first = self._buffer[0].seq
            return list(itertools.islice(self._buffer, seq - first + 1, None))
        # An id that left the buffer (or came from another server): event ids
        # start with their creation time in ms (12 hex digits), so send every
        # event from that millisecond on. Ids within one millisecond are not
        # ordered, so a few may come twice; none is lost.
        since = last_event_id[:12]
        return [e for e in self._buffer if e.event_id[:12] >= since and e.event_id != last_event_id]

    # ------------------------------------------------------------------ clients

    def connect(
        self,
        patterns: tuple[str, ...],
        last_event_id: str | None,
        scope: StreamScope | None = None,
    ) -> tuple[SseClient, list[StreamEntry]]:
        """Register a client; returns it with the entries to replay first.

        Registration and the replay snapshot happen without yielding to the
        loop, so no event falls between them or arrives twice.
        """
        client = SseClient(
            patterns, self.client_queue, self.metrics_per_second, scope or StreamScope()
        )
        if last_event_id is not None and len(last_event_id) > MAX_EVENT_ID_LENGTH:
            last_event_id = None
        replay = [
            e
            for e in self._after(last_event_id)
            if e.scoped(client.scope) is not None and client.wants(e)
        ]
        self._clients.add(client)
        self.connections += 1
        return client, replay

    def disconnect(self, client: SseClient) -> None:
        """Forget a client."""
        client.closed = True
        self._clients.discard(client)

    async def stream(
        self,
        patterns: tuple[str, ...],
        last_event_id: str | None,
        scope: StreamScope | None = None,
    ) -> AsyncGenerator[str, None]:
        """The text of one stream: retry hint, replay, live events and heartbeats.

        The client registers when the response starts sending, so a request
        that never gets that far leaves nothing behind.
        """
        client, replay = self.connect(patterns, last_event_id, scope)
        try:
            yield f"retry: {RETRY_MS}\n: connected\n\n"
            if replay:
                yield "".join(e.frame for e in replay)
            queue = client.queue
            while not client.closed:
                if not queue and not client.overflowed:
                    client.wakeup.clear()
                    try:
                        await asyncio.wait_for(client.wakeup.wait(), self.heartbeat_s)
                    except TimeoutError:
                        yield ": ping\n\n"
                        continue
                if client.overflowed:
                    self.slow_disconnects += 1
                    log.info("live stream client fell behind; disconnected to resume by id")
                    return
                if queue:
                    # One write per wake-up: everything queued so far.
                    chunk = "".join(e.frame for e in queue)
                    queue.clear()
                    yield chunk
        finally:
            self.disconnect(client)
