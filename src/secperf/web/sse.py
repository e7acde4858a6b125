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
event is always delivered. A comment line (``: ping``) goes out every
``heartbeat_s`` seconds so proxies and clients know the stream is alive.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field

from secperf.bus.interface import EventBus, Subscription, topic_matches, validate_pattern
from secperf.events import Event, MetricsRecorded, encode_event

log = logging.getLogger(__name__)

#: Longest ``Last-Event-ID`` taken into account (event ids are 24 hex digits).
MAX_EVENT_ID_LENGTH = 128
#: How long browsers wait before reconnecting after the stream ends (ms).
RETRY_MS = 2000


class StreamEntry:
    """One event as the stream sends it; its text is built once, when first needed."""

    __slots__ = ("_event", "_frame", "event_id", "is_metrics", "seq", "topic")

    def __init__(self, seq: int, event: Event) -> None:
        self.seq = seq
        self.event_id = event.id
        self.topic = event.topic
        self.is_metrics = isinstance(event, MetricsRecorded)
        self._event: Event | None = event
        self._frame: str | None = None

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
        if self.closed or self.overflowed or not self.wants(entry):
            return
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
        entry = StreamEntry(next(self._seq), event)
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
        self, patterns: tuple[str, ...], last_event_id: str | None
    ) -> tuple[SseClient, list[StreamEntry]]:
        """Register a client; returns it with the entries to replay first.

        Registration and the replay snapshot happen without yielding to the
        loop, so no event falls between them or arrives twice.
        """
        client = SseClient(patterns, self.client_queue, self.metrics_per_second)
        if last_event_id is not None and len(last_event_id) > MAX_EVENT_ID_LENGTH:
            last_event_id = None
        replay = [e for e in self._after(last_event_id) if client.wants(e)]
        self._clients.add(client)
        self.connections += 1
        return client, replay

    def disconnect(self, client: SseClient) -> None:
        """Forget a client."""
        client.closed = True
        self._clients.discard(client)

    async def stream(
        self, patterns: tuple[str, ...], last_event_id: str | None
    ) -> AsyncGenerator[str, None]:
        """The text of one stream: retry hint, replay, live events and heartbeats.

        The client registers when the response starts sending, so a request
        that never gets that far leaves nothing behind.
        """
        client, replay = self.connect(patterns, last_event_id)
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
