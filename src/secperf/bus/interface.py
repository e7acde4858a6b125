"""The bus contract every implementation (in-process, NATS JetStream) keeps.

Topics are dotted, NATS-subject style (``security.scan.completed``). Patterns
may use ``*`` for exactly one token and ``>`` (last) for one or more tokens, as
NATS does: ``security.>`` receives every security event, ``*.scan.*`` every
scan event.

Delivery policy under overload: events whose class is ``droppable``
(``MetricsRecorded``) are dropped for a full subscriber and counted; every other
event makes the publisher wait until there is room, so security events and
alerts are never lost.
"""

from __future__ import annotations

import abc
import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from secperf.events import Event

Handler = Callable[[Event], Awaitable[None]]


class BusClosedError(RuntimeError):
    """Raised when an event is published to, or a subscriber added on, a closed bus."""


def publish_from_thread(
    loop: asyncio.AbstractEventLoop | None,
    loop_thread: int | None,
    event: Event,
    timeout: float | None,
    *,
    closed: bool,
    publish: Callable[[Event], Coroutine[Any, Any, None]],
    publish_dropping: Callable[[Event], None],
    why_full: str,
) -> None:
    """``publish_threadsafe`` for every bus: hand ``event`` to the bus's loop.

    Droppable events go without blocking (``publish_dropping`` runs on the
    loop); any other event blocks the calling thread until ``publish`` has
    queued it, or raises TimeoutError after ``timeout`` naming ``why_full``.
    """
    if not isinstance(event, Event):
        raise TypeError(f"only secperf events can be published, got {type(event).__name__}")
    if closed:
        raise BusClosedError("cannot publish: the event bus is closed")
    if loop is None:
        raise RuntimeError(
            "the event bus is not started: await bus.start() on its event loop first"
        )
    if threading.get_ident() == loop_thread:
        raise RuntimeError(
            "publish_threadsafe was called on the event loop's own thread, where "
            "blocking would deadlock; use `await bus.publish(event)` there"
        )
    if loop.is_closed():
        raise BusClosedError("cannot publish: the event bus's event loop is closed")
    if event.droppable:
        loop.call_soon_threadsafe(publish_dropping, event)
        return
    future = asyncio.run_coroutine_threadsafe(publish(event), loop)
    try:
        future.result(timeout)
    except TimeoutError:
        future.cancel()
        raise TimeoutError(
            f"{type(event).__name__} {event.id} was not queued within {timeout} s: {why_full}"
        ) from None


def validate_pattern(pattern: str) -> None:
    """Raise ValueError when ``pattern`` is not a valid topic pattern."""
    tokens = pattern.split(".")
    if not pattern or any(not token for token in tokens):
        raise ValueError(f"invalid topic pattern {pattern!r}: empty token")
    for index, token in enumerate(tokens):
        if token == ">" and index != len(tokens) - 1:
            raise ValueError(f"invalid topic pattern {pattern!r}: '>' must be the last token")
        if token not in ("*", ">") and ("*" in token or ">" in token):
            raise ValueError(f"invalid topic pattern {pattern!r}: wildcards must be whole tokens")


def topic_matches(pattern: str, topic: str) -> bool:
    """True when ``topic`` is matched by ``pattern`` (NATS wildcard rules)."""
    if pattern == topic or pattern == ">":
        return True
    pattern_tokens = pattern.split(".")
    topic_tokens = topic.split(".")
    for index, token in enumerate(pattern_tokens):
        if token == ">":
            return len(topic_tokens) > index
        if index >= len(topic_tokens):
            return False
        if token != "*" and token != topic_tokens[index]:
            return False
    return len(pattern_tokens) == len(topic_tokens)


@dataclass
class SubscriberStats:
    """Counters of one subscriber."""

    name: str
    pattern: str
    delivered: int = 0
    dropped: int = 0
    failed: int = 0
    queue_depth: int = 0
    queue_max: int = 0


@dataclass
class BusStats:
    """Counters of the whole bus: totals plus one entry per subscriber."""

    published: int = 0
    delivered: int = 0
    dropped: int = 0
    failed: int = 0
    subscribers: list[SubscriberStats] = field(default_factory=list)


class Subscription(abc.ABC):
    """A live subscription; ``unsubscribe`` stops delivery after draining."""

    name: str
    pattern: str

    @abc.abstractmethod
    async def unsubscribe(self) -> None:
        """Stop receiving; events already queued are delivered first."""


class EventBus(abc.ABC):
    """Publish typed events by topic; deliver them to matching subscribers."""

    @abc.abstractmethod
    async def start(self) -> None:
        """Connect / bind to the running event loop. Idempotent."""

    @abc.abstractmethod
    async def subscribe(
        self,
        pattern: str,
        handler: Handler,
        *,
        name: str | None = None,
        maxsize: int | None = None,
    ) -> Subscription:
        """Deliver every event whose topic matches ``pattern`` to ``handler``.

        ``name`` identifies the subscriber in stats (and is the durable consumer
        name on NATS); ``maxsize`` bounds its queue. A handler that raises is
        logged and counted; other subscribers and later events are unaffected.
        """

    @abc.abstractmethod
    async def publish(self, event: Event) -> None:
        """Publish from the event loop's thread (waits for room, see module doc)."""

    @abc.abstractmethod
    def publish_threadsafe(self, event: Event, timeout: float | None = None) -> None:
        """Publish from any other thread; blocks that thread while it must wait."""

    def publish_many_threadsafe(
        self, events: Sequence[Event], timeout: float | None = None
    ) -> None:
        """Publish ``events`` in order from any other thread (one at a time unless overridden)."""
        for event in events:
            self.publish_threadsafe(event, timeout)

    @abc.abstractmethod
    async def close(self, *, drain: bool = True, timeout: float | None = 10.0) -> None:
        """Stop accepting events; with ``drain`` deliver what is queued first."""

    @abc.abstractmethod
    def stats(self) -> BusStats:
        """A snapshot of the counters."""

    async def __aenter__(self) -> EventBus:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
