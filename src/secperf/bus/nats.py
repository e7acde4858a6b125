"""The event bus over NATS JetStream: what secperf uses when one machine is not enough.

Layout on the server: one stream (``stream``) holds every subject under
``<subject_prefix>.>``; an event with topic ``security.scan.completed`` travels
on ``<subject_prefix>.security.scan.completed`` as ``events.encode_event``
JSON, so topic patterns keep the NATS wildcard meaning they have on the
in-process bus. The stream is created, or updated to this configuration, on
``start``.

Publishing goes through a bounded local outbox drained in order by one task
that waits for JetStream's publish acknowledgement. Each message carries
``Nats-Msg-Id`` = the event id, so a publish retried after a lost ack is
stored once (within the stream's duplicate window). While the server is away
the outbox fills: metric batches (droppable) are then dropped and counted,
any other event makes the publisher wait, and the outbox is flushed in order
once the connection is back.

Subscribing creates a pull consumer with explicit acks. A named subscriber is
a durable consumer: it survives restarts and resumes where it stopped. A
message is acknowledged only after its handler returned (and, for
``subscribe_durable``, after the subscriber's ``commit`` callback made the
batch durable), so delivery is at-least-once; each subscriber remembers the
ids it has completed recently and skips re-deliveries of them.

One idea, kept whole though it runs past 600 lines: the bus contract over
JetStream (stream set-up, the publishing outbox, durable consumers and their
acknowledgements) is one protocol whose parts share the connection's state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.client import JetStreamContext
from nats.js.errors import BadRequestError, NotFoundError

from secperf.bus.interface import (
    BusClosedError,
    BusStats,
    EventBus,
    Handler,
    SubscriberStats,
    Subscription,
    publish_from_thread,
    validate_pattern,
)
from secperf.events import Event, EventDecodeError, decode_event, encode_event

logger = logging.getLogger(__name__)

Commit = Callable[[], Awaitable[None]]

#: Events the local outbox holds while the server is slow or away.
DEFAULT_OUTBOX = 10_000
#: Messages a subscriber fetches (and acknowledges) at a time.
DEFAULT_FETCH = 256
#: Completed event ids a subscriber remembers to skip re-deliveries.
RECENT_IDS = 100_000
#: Publishes in flight at once (their acks are awaited together).
PUBLISH_WINDOW = 64
#: Deliveries after which a message that keeps failing is given up (and counted).
MAX_DELIVERIES = 10

_NAME_RE = re.compile(r"[^A-Za-z0-9_-]")


class BusConnectError(ConnectionError):
    """The NATS server could not be reached when the bus started."""


@dataclass(frozen=True, slots=True)
class NatsStats:
    """Counters particular to the NATS bus (besides ``BusStats``)."""

    connected: bool
    outbox: int
    outbox_max: int
    sent: int
    publish_retries: int
    reconnects: int
    redelivered_skipped: int


def durable_name(name: str) -> str:
    """A subscriber name as a valid JetStream consumer name (no dots or wildcards)."""
    cleaned = _NAME_RE.sub("_", name)
    return cleaned[:200] or "subscriber"


class _RecentIds:
    """A bounded set of ids, forgetting the oldest first."""

    __slots__ = ("_ids", "_limit")

    def __init__(self, limit: int) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._limit = limit

    def __contains__(self, key: str) -> bool:
        return key in self._ids

    def add(self, key: str) -> None:
        self._ids[key] = None
        if len(self._ids) > self._limit:
            self._ids.popitem(last=False)


class _NatsSubscriber(Subscription):
    """One pull consumer and the task that fetches, handles, commits and acknowledges."""

    def __init__(
        self,
        bus: NatsEventBus,
        name: str,
        consumer: str,
        pattern: str,
        handler: Handler,
        batch: int,
        commit: Commit | None,
        ephemeral: bool,
    ) -> None:
        self._bus = bus
        self.name = name
        self.consumer = consumer
        self.pattern = pattern
        self.handler = handler
        self.batch = batch
        self.commit = commit
        self.ephemeral = ephemeral
        self.recent = _RecentIds(RECENT_IDS)
        self.delivered = 0
        self.dropped = 0
        self.failed = 0
        self.skipped = 0
        self.in_hand = 0
        self.stopping = False
        self.fetching = False
        self.psub: JetStreamContext.PullSubscription | None = None
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        """Fetch and process batches until stopped."""
        backoff = 0.05
        while not self.stopping:
            psub = self.psub
            if psub is None:
                return
            self.fetching = True
            try:
                msgs = await psub.fetch(self.batch, timeout=1.0)
            except (TimeoutError, nats.errors.TimeoutError):
                continue
            except asyncio.CancelledError:
                if self._stopping():
                    return  # fetched-but-unacked messages come back after ack_wait
                raise
            except Exception as exc:  # disconnected, reconnecting, consumer gone
                logger.debug("subscriber %r: fetch failed: %s", self.name, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)
                continue
            finally:
                self.fetching = False
            backoff = 0.05
            # Once messages are in hand the batch is finished even when stopping.
            await asyncio.shield(self._process(msgs))

    def _stopping(self) -> bool:
        # A method, not the attribute: stop() flips it while run() awaits.
        return self.stopping

    async def _keep_alive(self, msgs: list[Msg], every_s: float) -> None:
        """Tell the server the batch is still being worked on (a long commit)."""
        while True:
            await asyncio.sleep(every_s)
            for msg in msgs:
                with contextlib.suppress(Exception):
                    await msg.in_progress()

    async def _process(self, msgs: list[Msg]) -> None:
        # A short ack_wait hands a killed consumer's messages on quickly; a slow
        # batch of a live one is kept by "in progress" notices.
        alive = asyncio.create_task(self._keep_alive(msgs, self._bus.ack_wait_s / 3))
        try:
            await self._process_batch(msgs)
        finally:
            alive.cancel()

    async def _process_batch(self, msgs: list[Msg]) -> None:
        self.in_hand = len(msgs)
        done: list[tuple[Msg, str | None]] = []
        in_batch: set[str] = set()
        try:
            for msg in msgs:
                try:
                    event = decode_event(msg.data)
                except EventDecodeError as exc:
                    self.failed += 1
                    logger.error(
                        "subscriber %r: undecodable message on %s dropped: %s",
                        self.name,
                        msg.subject,
                        exc,
                    )
                    done.append((msg, None))
                    continue
                if event.id in self.recent or event.id in in_batch:
                    self.skipped += 1
                    done.append((msg, None))
                    continue
                in_batch.add(event.id)
                try:
                    await self.handler(event)
                except Exception:
                    self.failed += 1
                    logger.exception(
                        "bus subscriber %r failed on %s %s (topic %s)",
                        self.name,
                        type(event).__name__,
                        event.id,
                        event.topic,
                    )
                else:
                    self.delivered += 1
                done.append((msg, event.id))
            if self.commit is not None:
                try:
                    await self.commit()
                except Exception:
                    logger.exception(
                        "subscriber %r: commit failed; %d message(s) will be redelivered",
                        self.name,
                        len(done),
                    )
                    await self._nak_or_give_up(done)
                    return
            for msg, event_id in done:
                if event_id is not None:
                    self.recent.add(event_id)
                with contextlib.suppress(Exception):  # an ack lost is a re-delivery skipped
                    await msg.ack()
        finally:
            self.in_hand = 0

    async def _nak_or_give_up(self, done: list[tuple[Msg, str | None]]) -> None:
        for msg, _ in done:
            try:
                deliveries = msg.metadata.num_delivered or 1
            except Exception:
                deliveries = 1
            with contextlib.suppress(Exception):
                if deliveries >= MAX_DELIVERIES:
                    self.dropped += 1
                    logger.error(
                        "subscriber %r: giving up a message on %s after %d deliveries",
                        self.name,
                        msg.subject,
                        deliveries,
                    )
                    await msg.term()
                else:
                    await msg.nak(delay=1.0)

    def snapshot(self) -> SubscriberStats:
        return SubscriberStats(
            name=self.name,
            pattern=self.pattern,
            delivered=self.delivered,
            dropped=self.dropped,
            failed=self.failed,
            queue_depth=self.in_hand,
            queue_max=self.batch,
        )

    async def stop(self) -> None:
        """Finish the batch in hand, then stop fetching."""
        self.stopping = True
        task = self.task
        if task is None or task.done():
            return
        if self.fetching:
            task.cancel()
        await asyncio.wait({task})

    async def unsubscribe(self) -> None:
        """Stop receiving; a durable consumer keeps its place on the server."""
        await self._bus._unsubscribe(self)

    def __repr__(self) -> str:
        return f"<NATS subscriber {self.name!r} on {self.pattern!r}>"


class NatsEventBus(EventBus):
    """The bus over NATS JetStream (see the module docstring for the guarantees)."""

    def __init__(
        self,
        url: str,
        *,
        stream: str = "SECPERF",
        subject_prefix: str = "secperf",
        outbox_size: int = DEFAULT_OUTBOX,
        fetch_batch: int = DEFAULT_FETCH,
        publish_timeout_s: float = 5.0,
        max_age_s: float = 7 * 24 * 3600.0,
        max_bytes: int = -1,
        duplicate_window_s: float = 120.0,
        ack_wait_s: float = 10.0,
        connect_timeout_s: float = 5.0,
    ) -> None:
        for what, value in (("outbox_size", outbox_size), ("fetch_batch", fetch_batch)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{what} must be an integer >= 1, got {value!r}")
        for what, name in (("stream", stream), ("subject_prefix", subject_prefix)):
            if not name or _NAME_RE.search(name):
                raise ValueError(
                    f"{what} {name!r} is not a NATS name: use letters, digits, '_' and '-'"
                )
        self.url = url
        self.stream = stream
        self.prefix = subject_prefix
        self.outbox_size = outbox_size
        self.fetch_batch = fetch_batch
        self.publish_timeout_s = publish_timeout_s
        self.max_age_s = max_age_s
        self.max_bytes = max_bytes
        self.duplicate_window_s = duplicate_window_s
        self.ack_wait_s = ack_wait_s
        self.connect_timeout_s = connect_timeout_s
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._start_lock: asyncio.Lock | None = None
        self._closed = False
        self._outbox: deque[tuple[str, bytes, str]] = deque()
        self._putters: deque[asyncio.Future[None]] = deque()
        self._wake_sender: asyncio.Event | None = None
        self._sender: asyncio.Task[None] | None = None
        self._subscribers: list[_NatsSubscriber] = []
        self._sequence = 0
        self._published = 0
        self._dropped = 0
        self._sent = 0
        self._retries = 0
        self._reconnects = 0
        self._retired: list[SubscriberStats] = []

    # ------------------------------------------------------------------ lifecycle

    def subject(self, topic: str) -> str:
        """The NATS subject of a topic (or topic pattern)."""
        return f"{self.prefix}.{topic}"

    async def start(self) -> None:
        """Connect, create or update the stream and start the publisher. Idempotent."""
        if self._closed:
            raise BusClosedError("the event bus is closed")
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            if self._nc is not None:
                return
            await self._connect()

    async def _connect(self) -> None:
        async def on_reconnect() -> None:
            self._reconnects += 1
            logger.info("NATS connection to %s restored", self._safe_url())
            if self._wake_sender is not None:
                self._wake_sender.set()

        async def on_disconnect() -> None:
            if not self._closed:
                logger.warning("NATS connection to %s lost; buffering locally", self._safe_url())

        async def on_error(exc: Exception) -> None:
            logger.debug("NATS client error: %s", exc)

        try:
            # With unlimited reconnects nats-py also retries the first connection
            # forever; an unreachable server at start must be an error instead.
            nc = await asyncio.wait_for(
                self._open(on_reconnect, on_disconnect, on_error), 2 * self.connect_timeout_s + 1
            )
        except Exception as exc:
            raise BusConnectError(
                f"cannot reach the NATS server at {self._safe_url()}:"
                f" {str(exc) or type(exc).__name__};"
                " check [bus] url and that nats-server runs with JetStream (-js)"
            ) from None
        js = nc.jetstream(timeout=self.publish_timeout_s)
        try:
            await self._ensure_stream(js)
        except BaseException:
            await nc.close()
            raise
        self._nc = nc
        self._js = js
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._wake_sender = asyncio.Event()
        self._sender = asyncio.create_task(self._send_loop(), name="secperf-nats-publisher")

    async def _open(
        self,
        on_reconnect: Callable[[], Awaitable[None]],
        on_disconnect: Callable[[], Awaitable[None]],
        on_error: Callable[[Exception], Awaitable[None]],
    ) -> Client:
        return await nats.connect(
            self.url,
            connect_timeout=self.connect_timeout_s,
            allow_reconnect=True,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.25,
            reconnected_cb=on_reconnect,
            disconnected_cb=on_disconnect,
            error_cb=on_error,
            # The outbox is the buffer that matters; keep the client's own modest.
            pending_size=8 * 1024 * 1024,
        )

    async def _ensure_stream(self, js: JetStreamContext) -> None:
        config = StreamConfig(
            name=self.stream,
            subjects=[f"{self.prefix}.>"],
            storage=StorageType.FILE,
            discard=DiscardPolicy.OLD,
            max_age=self.max_age_s,
            max_bytes=self.max_bytes,
            duplicate_window=self.duplicate_window_s,
        )
        try:
            await js.add_stream(config)
        except BadRequestError:
            # Already there with another configuration: bring it to this one.
            try:
                await js.update_stream(config)
            except Exception as exc:
                raise BusConnectError(
                    f"NATS stream {self.stream!r} exists and cannot be updated to subjects"
                    f" {self.prefix}.>: {exc}"
                ) from None
        except Exception as exc:
            raise BusConnectError(
                f"cannot create the NATS stream {self.stream!r} at {self._safe_url()}: {exc};"
                " is JetStream enabled (nats-server -js)?"
            ) from None

    def _safe_url(self) -> str:
        from secperf.config import mask_url

        return mask_url(self.url)

    async def close(self, *, drain: bool = True, timeout: float | None = 10.0) -> None:
        """Stop accepting events; with ``drain`` send the outbox and finish batches in hand."""
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        if drain and self._sender is not None:
            while (self._outbox or self._putters) and not self._sender.done():
                if deadline is not None and loop.time() >= deadline:
                    break
                await asyncio.sleep(0.01)
        left = len(self._outbox)
        if left:
            self._dropped += left
            logger.warning(
                "NATS bus closed with %d event(s) not sent to %s", left, self._safe_url()
            )
            self._outbox.clear()
        while self._putters:
            slot = self._putters.popleft()
            if not slot.done():
                slot.set_exception(BusClosedError("the event bus closed before sending"))
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
        for sub in list(self._subscribers):
            await self._unsubscribe(sub)
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.close()

    # ------------------------------------------------------------------ publishing

    async def publish(self, event: Event) -> None:
        """Queue ``event`` for sending; waits for room unless it is droppable (then dropped)."""
        if not isinstance(event, Event):
            raise TypeError(f"only secperf events can be published, got {type(event).__name__}")
        if self._closed:
            raise BusClosedError("cannot publish: the event bus is closed")
        if self._nc is None:
            await self.start()
        elif asyncio.get_running_loop() is not self._loop:
            raise RuntimeError(
                "publish() must run on the event bus's own event loop; "
                "use publish_threadsafe from other threads"
            )
        item = (self.subject(event.topic), encode_event(event), event.id)
        if len(self._outbox) >= self.outbox_size or self._putters:
            if event.droppable:
                self._dropped += 1
                return
            slot: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._putters.append(slot)
            try:
                await slot
            except BaseException:
                with contextlib.suppress(ValueError):
                    self._putters.remove(slot)
                if slot.done() and not slot.cancelled() and slot.exception() is None:
                    self._hand_slots()  # pass the room on
                raise
        self._outbox.append(item)
        self._published += 1
        assert self._wake_sender is not None
        self._wake_sender.set()

    def _publish_nowait(self, event: Event) -> None:
        """A droppable event from another thread (runs on the loop)."""
        if self._closed or len(self._outbox) >= self.outbox_size or self._putters:
            self._dropped += 1
            return
        self._outbox.append((self.subject(event.topic), encode_event(event), event.id))
        self._published += 1
        if self._wake_sender is not None:
            self._wake_sender.set()

    def publish_threadsafe(self, event: Event, timeout: float | None = None) -> None:
        """Publish from any thread other than the loop's (blocks while the outbox is full)."""
        publish_from_thread(
            self._loop,
            self._loop_thread,
            event,
            timeout,
            closed=self._closed,
            publish=self.publish,
            publish_dropping=self._publish_nowait,
            why_full="the outbox stayed full (is the NATS server reachable?)",
        )

    def _hand_slots(self) -> None:
        room = self.outbox_size - len(self._outbox)
        while room > 0 and self._putters:
            slot = self._putters.popleft()
            if not slot.done():
                slot.set_result(None)
                room -= 1

    async def _send_loop(self) -> None:
        """Send the outbox in order, retrying (same message ids) until acknowledged."""
        assert self._wake_sender is not None and self._js is not None
        wake = self._wake_sender
        js = self._js
        outbox = self._outbox
        backoff = 0.05
        failing = False
        while True:
            if not outbox:
                wake.clear()
                await wake.wait()
                continue
            window = [outbox[i] for i in range(min(PUBLISH_WINDOW, len(outbox)))]
            results = await asyncio.gather(
                *(
                    js.publish(
                        subject,
                        data,
                        timeout=self.publish_timeout_s,
                        headers={"Nats-Msg-Id": event_id},
                    )
                    for subject, data, event_id in window
                ),
                return_exceptions=True,
            )
            acked = 0
            error: BaseException | None = None
            for result in results:
                if isinstance(result, BaseException):
                    error = result
                    break
                acked += 1
            for _ in range(acked):
                outbox.popleft()
            self._sent += acked
            if self._putters:
                self._hand_slots()
            if error is None:
                if failing:
                    logger.info("NATS publishing resumed; %d event(s) still buffered", len(outbox))
                failing = False
                backoff = 0.05
                continue
            if isinstance(error, asyncio.CancelledError):
                raise error
            self._retries += 1
            if not failing:
                logger.warning(
                    "NATS publish failed (%s); %d event(s) buffered, retrying",
                    type(error).__name__,
                    len(outbox),
                )
            failing = True
            # Sleep unless the connection comes back first.
            wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), backoff)
            backoff = min(backoff * 2, 1.0)

    async def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything published so far was acknowledged; False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while self._outbox or self._putters:
            if deadline is not None and loop.time() >= deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    # ------------------------------------------------------------------ subscribing

    async def subscribe(
        self,
        pattern: str,
        handler: Handler,
        *,
        name: str | None = None,
        maxsize: int | None = None,
    ) -> Subscription:
        """Deliver events published from now on whose topic matches ``pattern``.

        A named subscriber is a durable consumer that resumes after a restart
        (an unused one expires after an hour); ``maxsize`` is the fetch batch.
        """
        return await self._subscribe(pattern, handler, name, maxsize, None, replay=False)

    async def subscribe_durable(
        self,
        pattern: str,
        handler: Handler,
        *,
        name: str,
        maxsize: int | None = None,
        commit: Commit | None = None,
    ) -> Subscription:
        """A durable subscriber that never misses an event the stream holds.

        A new consumer starts at the beginning of the stream; messages are
        acknowledged only after ``commit`` (called once per fetched batch,
        after the handler saw each event) returned. When ``commit`` raises,
        the batch is delivered again.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"a durable subscriber needs a non-empty name, got {name!r}")
        return await self._subscribe(pattern, handler, name, maxsize, commit, replay=True)

    async def _subscribe(
        self,
        pattern: str,
        handler: Handler,
        name: str | None,
        maxsize: int | None,
        commit: Commit | None,
        *,
        replay: bool,
    ) -> Subscription:
        if not isinstance(pattern, str):
            raise TypeError(f"topic pattern must be a string, got {type(pattern).__name__}")
        validate_pattern(pattern)
        if not callable(handler):
            raise TypeError(f"handler for {pattern!r} must be an async callable, got {handler!r}")
        batch = self.fetch_batch if maxsize is None else maxsize
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ValueError(f"maxsize must be an integer >= 1, got {maxsize!r}")
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"subscriber name must be a non-empty string, got {name!r}")
        await self.start()
        assert self._js is not None and self._nc is not None
        self._sequence += 1
        ephemeral = name is None
        if name is None:
            label = getattr(handler, "__qualname__", type(handler).__name__)
            name = f"{label}#{self._sequence}"
            consumer = f"eph_{self._nc._nuid.next().decode()}"
        else:
            consumer = durable_name(name)
        if any(sub.name == name for sub in self._subscribers):
            raise ValueError(f"a subscriber named {name!r} already exists on this bus")
        config = ConsumerConfig(
            durable_name=consumer,
            name=consumer,
            deliver_policy=DeliverPolicy.ALL if replay else DeliverPolicy.NEW,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait_s,
            filter_subject=self.subject(pattern),
            max_ack_pending=max(4 * batch, 1024),
            inactive_threshold=None if replay else (60.0 if ephemeral else 3600.0),
        )
        await self._ensure_consumer(config)
        psub = await self._js.pull_subscribe_bind(
            durable=consumer, stream=self.stream, name=consumer
        )
        sub = _NatsSubscriber(self, name, consumer, pattern, handler, batch, commit, ephemeral)
        sub.psub = psub
        sub.task = asyncio.create_task(sub.run(), name=f"secperf-nats:{name}")
        self._subscribers.append(sub)
        return sub

    async def _ensure_consumer(self, config: ConsumerConfig) -> None:
        assert self._js is not None
        name = config.durable_name
        assert name is not None
        try:
            info = await self._js.consumer_info(self.stream, name)
        except NotFoundError:
            await self._js.add_consumer(self.stream, config=config)
            return
        if info.config.filter_subject != config.filter_subject:
            # Same name, other topics: the old position means nothing for the new pattern.
            await self._js.delete_consumer(self.stream, name)
            await self._js.add_consumer(self.stream, config=config)

    async def _unsubscribe(self, sub: _NatsSubscriber) -> None:
        if sub not in self._subscribers:
            return
        self._subscribers.remove(sub)
        await sub.stop()
        if sub.psub is not None:
            with contextlib.suppress(Exception):
                await sub.psub.unsubscribe()
        if sub.ephemeral and self._js is not None:
            with contextlib.suppress(Exception):
                await self._js.delete_consumer(self.stream, sub.consumer)
        self._retired.append(sub.snapshot())

    # ------------------------------------------------------------------ stats

    def stats(self) -> BusStats:
        """Totals (including past subscribers) and one entry per live subscriber."""
        live = [sub.snapshot() for sub in self._subscribers]
        every = live + self._retired
        return BusStats(
            published=self._published,
            delivered=sum(s.delivered for s in every),
            dropped=self._dropped + sum(s.dropped for s in every),
            failed=sum(s.failed for s in every),
            subscribers=live,
        )

    def nats_stats(self) -> NatsStats:
        """Connection and outbox counters."""
        nc = self._nc
        return NatsStats(
            connected=bool(nc is not None and nc.is_connected),
            outbox=len(self._outbox),
            outbox_max=self.outbox_size,
            sent=self._sent,
            publish_retries=self._retries,
            reconnects=self._reconnects,
            redelivered_skipped=sum(s.skipped for s in self._subscribers),
        )

    def __repr__(self) -> str:
        return f"NatsEventBus({self._safe_url()!r}, stream={self.stream!r})"
