"""The in-process event bus on asyncio: the default when secperf runs on one machine.

Each subscriber owns a bounded FIFO (a deque) and one worker task that drains
it into the subscriber's handler. Publishing appends the event to every
matching subscriber's queue; the topic -> subscribers routing is cached so
wildcard patterns are matched once per topic, not once per event.

Overload (a subscriber's queue is full): a ``droppable`` event (metric
batches) is dropped for that subscriber and counted; any other event makes
the publisher wait until the worker frees a slot, so security events and
alerts are never lost. Waiting publishers are served in arrival order.

The hot path (``publish`` and the worker loop) avoids logging, stats building
and per-event allocations beyond the handler's own coroutine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Sequence

from secperf.bus.interface import (
    BusClosedError,
    BusStats,
    EventBus,
    Handler,
    SubscriberStats,
    Subscription,
    publish_from_thread,
    topic_matches,
    validate_pattern,
)
from secperf.events import Event

logger = logging.getLogger(__name__)

#: Queue bound of a subscriber that does not choose its own.
DEFAULT_MAXSIZE = 10_000


def _check_maxsize(maxsize: int, what: str) -> int:
    if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
        raise ValueError(f"{what} must be an integer >= 1, got {maxsize!r}")
    return maxsize


def _remaining(loop: asyncio.AbstractEventLoop, deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - loop.time())


class _Subscriber(Subscription):
    """One subscriber: its queue, the publishers waiting for room, its worker and counters."""

    __slots__ = (
        "_bus",
        "delivered",
        "discarding",
        "dropped",
        "failed",
        "handler",
        "maxsize",
        "name",
        "pattern",
        "putters",
        "queue",
        "reserved",
        "retired",
        "stopping",
        "task",
        "waiter",
    )

    def __init__(
        self, bus: AsyncEventBus, name: str, pattern: str, handler: Handler, maxsize: int
    ) -> None:
        self._bus = bus
        self.name = name
        self.pattern = pattern
        self.handler = handler
        self.maxsize = maxsize
        self.queue: deque[Event] = deque()
        # Publishers waiting for room, oldest first; each gets one freed slot.
        self.putters: deque[asyncio.Future[None]] = deque()
        # Slots handed to woken publishers that have not appended yet; counting
        # them keeps the queue within maxsize and the waiting publishers first.
        self.reserved = 0
        # Set by a publisher when it wakes the sleeping worker.
        self.waiter: asyncio.Future[None] | None = None
        self.delivered = 0
        self.dropped = 0
        self.failed = 0
        self.stopping = False
        self.discarding = False
        self.retired = False
        self.task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ queue side

    def append(self, event: Event) -> None:
        """Enqueue ``event`` (room already checked) and wake the worker if it sleeps."""
        self.queue.append(event)
        self.wake()

    def has_room(self) -> bool:
        """True when an event can be queued now without jumping waiting publishers."""
        return len(self.queue) + self.reserved < self.maxsize and not self.putters

    def wake(self) -> None:
        """Wake the worker if it sleeps."""
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def put_waiting(self, event: Event, loop: asyncio.AbstractEventLoop) -> None:
        """Wait for a free slot (in arrival order), then enqueue ``event``."""
        slot: asyncio.Future[None] = loop.create_future()
        self.putters.append(slot)
        try:
            await slot
        except BaseException:
            if slot.done() and not slot.cancelled() and slot.exception() is None:
                # Cancelled after being handed a slot: pass the slot on.
                self.reserved -= 1
                self._hand_slot()
            else:
                with contextlib.suppress(ValueError):
                    self.putters.remove(slot)
            # A stopping worker waits for the publishers it knows of: tell it.
            self.wake()
            raise
        self.reserved -= 1
        if self.discarding:
            self.dropped += 1
            self.wake()
            raise BusClosedError(
                f"bus closed without draining: {type(event).__name__} {event.id} "
                f"was not delivered to subscriber {self.name!r}"
            )
        self.append(event)

    def _hand_slot(self) -> None:
        putters = self.putters
        while putters:
            slot = putters.popleft()
            if not slot.done():
                self.reserved += 1
                slot.set_result(None)
                return

    # ------------------------------------------------------------------ worker side

    async def work(self) -> None:
        """Deliver queued events to the handler until stopped and empty."""
        queue = self.queue
        putters = self.putters
        handler = self.handler
        loop = asyncio.get_running_loop()
        while True:
            # Drain everything available before sleeping: one wake-up per burst.
            while queue:
                event = queue.popleft()
                if putters:
                    self._hand_slot()
                try:
                    await handler(event)
                except Exception:
                    self.failed += 1
                    self._log_failure(event)
                except asyncio.CancelledError:
                    task = asyncio.current_task()
                    if task is not None and task.cancelling():
                        # The worker itself is being stopped: the event is lost.
                        self.dropped += 1
                        raise
                    # The handler's own work was cancelled: a failure like any other.
                    self.failed += 1
                    self._log_failure(event)
                else:
                    self.delivered += 1
            if self.stopping and not putters and not self.reserved:
                return
            waiter: asyncio.Future[None] = loop.create_future()
            self.waiter = waiter
            await waiter

    def _log_failure(self, event: Event) -> None:
        logger.exception(
            "bus subscriber %r failed on %s %s (topic %s)",
            self.name,
            type(event).__name__,
            event.id,
            event.topic,
        )

    def stop(self) -> None:
        """Ask the worker to finish once its queue and waiting publishers are served."""
        self.stopping = True
        self.wake()

    def discard(self) -> None:
        """Drop everything queued (counted) and fail the publishers still waiting."""
        self.discarding = True
        self.dropped += len(self.queue)
        self.queue.clear()
        while self.putters:
            slot = self.putters.popleft()
            if not slot.done():
                slot.set_exception(
                    BusClosedError(f"bus closed without draining subscriber {self.name!r}")
                )

    def snapshot(self) -> SubscriberStats:
        return SubscriberStats(
            name=self.name,
            pattern=self.pattern,
            delivered=self.delivered,
            dropped=self.dropped,
            failed=self.failed,
            queue_depth=len(self.queue),
            queue_max=self.maxsize,
        )

    # ------------------------------------------------------------------ Subscription

    async def unsubscribe(self) -> None:
        """Stop receiving; events already queued are delivered first."""
        await self._bus._unsubscribe(self)

    def __repr__(self) -> str:
        return f"<bus subscriber {self.name!r} on {self.pattern!r}>"


class AsyncEventBus(EventBus):
    """The in-process bus: bounded per-subscriber queues drained by one task each.

    Bind it to a loop with ``await bus.start()`` (``subscribe`` and ``publish``
    also bind it). ``publish`` must run on that loop; other threads use
    ``publish_threadsafe``.
    """

    def __init__(self, *, default_maxsize: int = DEFAULT_MAXSIZE) -> None:
        self._default_maxsize = _check_maxsize(default_maxsize, "default_maxsize")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        # The loop publish() accepts; None before start and after close, so the
        # hot path checks "bound, open and on the right loop" in one comparison.
        self._publish_loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._subscribers: list[_Subscriber] = []  # receiving new events
        self._members: list[_Subscriber] = []  # shown in stats (includes draining ones)
        self._routes: dict[str, tuple[_Subscriber, ...]] = {}
        self._published = 0
        self._sequence = 0
        # Counters of subscribers that have unsubscribed, so totals never go back.
        self._retired_delivered = 0
        self._retired_dropped = 0
        self._retired_failed = 0
        # Droppable events handed over from a thread that arrived after close.
        self._dropped_after_close = 0
        # Publishes suspended waiting for room; close(drain=True) lets them finish.
        self._inflight = 0
        self._idle: asyncio.Event | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Bind the bus to the running event loop. Idempotent."""
        self._bind()

    def _bind(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._closed:
            raise BusClosedError("the event bus is closed")
        if self._loop is None:
            self._loop = loop
            self._loop_thread = threading.get_ident()
            self._publish_loop = loop
        elif self._loop is not loop:
            raise RuntimeError(
                "the event bus is bound to another event loop; "
                "use publish_threadsafe from other threads"
            )
        return loop

    async def close(self, *, drain: bool = True, timeout: float | None = 10.0) -> None:
        """Stop accepting events; with ``drain`` deliver what is queued, then stop workers.

        With ``drain=False`` queued events are discarded and counted as dropped;
        publishers still waiting for room get ``BusClosedError``. Workers still
        busy after ``timeout`` seconds are cancelled and what they held is
        counted as dropped (and logged).
        """
        if self._closed:
            return
        self._closed = True
        self._publish_loop = None
        if self._loop is None:
            return
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        members = list(self._members)
        if drain and self._inflight:
            # Publishes already under way still reach every subscriber they matched.
            self._idle = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), _remaining(loop, deadline))
        self._subscribers = []
        self._routes.clear()
        for sub in members:
            if not drain:
                sub.discard()
            sub.stop()
        tasks = {sub.task for sub in members if sub.task is not None and not sub.task.done()}
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=_remaining(loop, deadline))
        if not pending:
            return
        for task in pending:
            task.cancel()
        await asyncio.wait(pending)
        for sub in members:
            if sub.task in pending:
                left = len(sub.queue)
                sub.discard()
                logger.warning(
                    "bus subscriber %r did not finish within %s s of close; "
                    "%d queued event(s) dropped",
                    sub.name,
                    timeout,
                    left,
                )

    # ------------------------------------------------------------------ subscribing

    async def subscribe(
        self,
        pattern: str,
        handler: Handler,
        *,
        name: str | None = None,
        maxsize: int | None = None,
    ) -> Subscription:
        """Deliver every event whose topic matches ``pattern`` to ``handler``.

        ``pattern`` is a topic or a NATS-style wildcard (``*`` one token, ``>``
        the rest). ``maxsize`` bounds the subscriber's queue (default: the bus's).
        """
        if not isinstance(pattern, str):
            raise TypeError(f"topic pattern must be a string, got {type(pattern).__name__}")
        validate_pattern(pattern)
        if not callable(handler):
            raise TypeError(f"handler for {pattern!r} must be an async callable, got {handler!r}")
        size = self._default_maxsize if maxsize is None else _check_maxsize(maxsize, "maxsize")
        loop = self._bind()
        self._sequence += 1
        if name is None:
            label = getattr(handler, "__qualname__", type(handler).__name__)
            name = f"{label}#{self._sequence}"
        elif not isinstance(name, str) or not name:
            raise ValueError(f"subscriber name must be a non-empty string, got {name!r}")
        if any(sub.name == name for sub in self._members):
            raise ValueError(f"a subscriber named {name!r} already exists on this bus")
        sub = _Subscriber(self, name, pattern, handler, size)
        sub.task = loop.create_task(sub.work(), name=f"secperf-bus:{name}")
        self._subscribers.append(sub)
        self._members.append(sub)
        self._routes.clear()
        return sub

    async def _unsubscribe(self, sub: _Subscriber) -> None:
        if sub in self._subscribers:
            self._subscribers.remove(sub)
            self._routes.clear()
        sub.stop()
        task = sub.task
        if task is None:
            return
        current = asyncio.current_task()
        if current is task:
            # Unsubscribing from inside its own handler: the worker ends by itself
            # after the queue is drained; waiting here would deadlock.
            current.add_done_callback(lambda _: self._retire(sub))
            return
        # asyncio.wait, unlike awaiting the task, does not cancel the worker
        # when the caller is cancelled.
        await asyncio.wait({task})
        self._retire(sub)

    def _retire(self, sub: _Subscriber) -> None:
        if sub.retired or self._closed:
            return
        sub.retired = True
        self._members.remove(sub)
        self._retired_delivered += sub.delivered
        self._retired_dropped += sub.dropped
        self._retired_failed += sub.failed

    def _route(self, topic: str) -> tuple[_Subscriber, ...]:
        matched = tuple(sub for sub in self._subscribers if topic_matches(sub.pattern, topic))
        self._routes[topic] = matched
        return matched

    # ------------------------------------------------------------------ publishing

    async def publish(self, event: Event) -> None:
        """Publish from the event loop's thread.

        Droppable events never wait (dropped for a full subscriber, counted);
        any other event waits for room in every matching subscriber's queue.
        """
        if asyncio.get_running_loop() is not self._publish_loop:
            self._refuse_or_bind()
        if not isinstance(event, Event):
            raise TypeError(f"only secperf events can be published, got {type(event).__name__}")
        self._published += 1
        topic = event.topic
        subscribers = self._routes.get(topic)
        if subscribers is None:
            subscribers = self._route(topic)
        for sub in subscribers:
            if len(sub.queue) + sub.reserved < sub.maxsize and not sub.putters:
                sub.queue.append(event)
                waiter = sub.waiter
                if waiter is not None:
                    sub.waiter = None
                    if not waiter.done():
                        waiter.set_result(None)
            elif event.droppable:
                sub.dropped += 1
            else:
                await self._publish_waiting(event, subscribers, subscribers.index(sub))
                return

    async def _publish_waiting(
        self, event: Event, subscribers: tuple[_Subscriber, ...], start: int
    ) -> None:
        """The slow path: wait for room at ``subscribers[start]``, then serve the rest."""
        loop = asyncio.get_running_loop()
        self._inflight += 1
        try:
            await subscribers[start].put_waiting(event, loop)
            for sub in subscribers[start + 1 :]:
                if sub.task is None or sub.task.done():
                    continue  # unsubscribed and finished while this publish waited
                if sub.has_room():
                    sub.append(event)
                else:
                    await sub.put_waiting(event, loop)
        finally:
            self._inflight -= 1
            if not self._inflight and self._idle is not None:
                self._idle.set()

    def _refuse_or_bind(self) -> None:
        if self._closed:
            raise BusClosedError("cannot publish: the event bus is closed")
        if self._loop is None:
            self._bind()
            return
        raise RuntimeError(
            "publish() must run on the event bus's own event loop; "
            "use publish_threadsafe from other threads"
        )

    def _publish_dropping(self, event: Event) -> None:
        """Publish a droppable event without waiting (runs on the loop, from a thread)."""
        if self._closed:
            self._dropped_after_close += 1
            return
        self._published += 1
        topic = event.topic
        subscribers = self._routes.get(topic)
        if subscribers is None:
            subscribers = self._route(topic)
        for sub in subscribers:
            if sub.has_room():
                sub.append(event)
            else:
                sub.dropped += 1

    def publish_threadsafe(self, event: Event, timeout: float | None = None) -> None:
        """Publish from any thread other than the loop's.

        A droppable event is handed to the loop without blocking. Any other
        event blocks this thread until every matching subscriber has queued it;
        after ``timeout`` seconds it raises TimeoutError (subscribers that had
        room may already have received the event).
        """
        publish_from_thread(
            self._loop,
            self._loop_thread,
            event,
            timeout,
            closed=self._closed,
            publish=self.publish,
            publish_dropping=self._publish_dropping,
            why_full="a subscriber's queue stayed full",
        )

    def publish_many_threadsafe(
        self, events: Sequence[Event], timeout: float | None = None
    ) -> None:
        """Publish ``events`` in order from any thread other than the loop's, in one hand-over.

        The same delivery as ``publish_threadsafe`` on each event in turn
        (droppable ones never wait, others wait for room), but the calling
        thread crosses to the loop once and waits once for the whole batch:
        a scan's thousands of findings are not a thousand round trips. After
        ``timeout`` seconds it raises TimeoutError (earlier events of the batch
        may already be queued).
        """
        batch = list(events)
        for event in batch:
            if not isinstance(event, Event):
                raise TypeError(f"only secperf events can be published, got {type(event).__name__}")
        if not batch:
            return
        if len(batch) == 1:
            self.publish_threadsafe(batch[0], timeout)
            return
        loop = self._loop
        if self._closed:
            raise BusClosedError("cannot publish: the event bus is closed")
        if loop is None:
            raise RuntimeError(
                "the event bus is not started: await bus.start() on its event loop first"
            )
        if threading.get_ident() == self._loop_thread:
            raise RuntimeError(
                "publish_many_threadsafe was called on the event loop's own thread, where "
                "blocking would deadlock; use `await bus.publish(event)` there"
            )
        if loop.is_closed():
            raise BusClosedError("cannot publish: the event bus's event loop is closed")
        future = asyncio.run_coroutine_threadsafe(self._publish_all(batch), loop)
        try:
            future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise TimeoutError(
                f"{len(batch)} events were not all queued within {timeout} s:"
                " a subscriber's queue stayed full"
            ) from None

    async def _publish_all(self, events: list[Event]) -> None:
        for event in events:
            await self.publish(event)

    # ------------------------------------------------------------------ stats

    def stats(self) -> BusStats:
        """A snapshot of the counters: totals (including past subscribers) and per subscriber."""
        per_subscriber = [sub.snapshot() for sub in self._members]
        return BusStats(
            published=self._published,
            delivered=self._retired_delivered + sum(s.delivered for s in per_subscriber),
            dropped=self._retired_dropped
            + self._dropped_after_close
            + sum(s.dropped for s in per_subscriber),
            failed=self._retired_failed + sum(s.failed for s in per_subscriber),
            subscribers=per_subscriber,
        )
