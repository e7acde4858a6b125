"""Sending without ever blocking the engine: one bounded queue and one task per notifier.

The engine only enqueues. Each delivery is tried up to ``max_attempts`` times
with exponential backoff; a ``PermanentNotifyError`` (a 4xx answer other than
429) is not retried. Failures are logged and counted, never raised to the
engine. When the queue is full the oldest notification is dropped and counted.
A failure is logged with the notifier's name and its error, which never shows
the receiver's URL beyond ``scheme://host[:port]`` (see ``delivery``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from dataclasses import dataclass

from secperf.alerts.grouping import Notification
from secperf.alerts.notifiers.delivery import alert_status
from secperf.alerts.notifiers.interface import Notifier, PermanentNotifyError
from secperf.config.units import scrub_url

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class NotifierStats:
    """Counters of one notifier."""

    name: str
    sent: int
    failed: int
    retries: int
    dropped: int
    queued: int


class NotifierRunner:
    """One notifier's queue and sending task, with retries and backoff."""

    def __init__(
        self,
        notifier: Notifier,
        *,
        max_attempts: int = 4,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        queue_size: int = 1000,
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        self.notifier = notifier
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.queue_size = queue_size
        self.sent = 0
        self.failed = 0
        self.retries = 0
        self.dropped = 0
        self._queue: deque[Notification] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        """Start the sending task on the running loop."""
        if self._task is None:
            self._task = asyncio.create_task(self._work(), name=f"notifier-{self.notifier.name}")

    def submit(self, notification: Notification) -> None:
        """Queue a notification; never blocks (the oldest is dropped when full)."""
        if not self.notifier.send_resolved:
            firing = tuple(a for a in notification.alerts if alert_status(a) == "firing")
            if not firing:
                return
            notification = Notification(
                notification.receiver,
                notification.group_key,
                notification.group_labels,
                firing,
                notification.ts_ms,
            )
        if len(self._queue) >= self.queue_size:
            self._queue.popleft()
            self.dropped += 1
            log.warning("notifier %s: queue full, dropped the oldest notification", self.name)
        self._queue.append(notification)
        self._idle.clear()
        self._wake.set()

    @property
    def name(self) -> str:
        return self.notifier.name

    def stats(self) -> NotifierStats:
        return NotifierStats(
            self.name, self.sent, self.failed, self.retries, self.dropped, len(self._queue)
        )

    async def wait_idle(self) -> None:
        """Wait until everything queued has been sent or given up on."""
        await self._idle.wait()

    async def _work(self) -> None:
        while True:
            if not self._queue:
                self._idle.set()
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            notification = self._queue.popleft()
            await self._deliver(notification)

    async def _deliver(self, notification: Notification) -> None:
        delay = self.backoff_s
        for attempt in range(1, self.max_attempts + 1):
            try:
                await self.notifier.send(notification)
            except PermanentNotifyError as exc:
                self.failed += 1
                log.error(
                    "notifier %s: %s refused: %s", self.name, notification.group_key, self._why(exc)
                )
                return
            except Exception as exc:  # any failure of a receiver is counted, never raised
                if attempt == self.max_attempts:
                    self.failed += 1
                    log.error(
                        "notifier %s: giving up on %s after %d attempts: %s",
                        self.name,
                        notification.group_key,
                        attempt,
                        self._why(exc),
                    )
                    return
                self.retries += 1
                log.warning(
                    "notifier %s: attempt %d failed (%s); retrying in %.1fs",
                    self.name,
                    attempt,
                    self._why(exc),
                    delay,
                )
                # Jitter keeps many engines from retrying in step.
                await asyncio.sleep(delay * (1 + 0.1 * random.random()))  # noqa: S311
                delay = min(delay * 2, self.max_backoff_s)
            else:
                self.sent += 1
                return

    def _why(self, exc: BaseException) -> str:
        """A delivery's error for the log: any part of the receiver's URL in it masked.

        The HTTP notifiers' errors show no more than ``scheme://host[:port]``
        already; this holds for any notifier with a ``url`` and any exception.
        """
        text = str(exc) or type(exc).__name__
        url = getattr(self.notifier, "url", None)
        return scrub_url(text, url, hide_path=True) if isinstance(url, str) else text

    async def close(self, timeout: float = 5.0) -> None:
        """Send what is queued (within ``timeout``), then stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
                self.dropped += len(self._queue)
                self._queue.clear()
        with contextlib.suppress(Exception):
            await self.notifier.close()
