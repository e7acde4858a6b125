"""The notifier contract, and the runner that sends without ever blocking the engine.

A notifier turns one ``Notification`` (a group's alerts) into a delivery.
``NotifierRunner`` owns one bounded queue and one task per notifier: the engine
only enqueues. Each delivery is tried up to ``max_attempts`` times with
exponential backoff; a ``PermanentNotifyError`` (a 4xx answer other than 429)
is not retried. Failures are logged and counted, never raised to the engine.
When the queue is full the oldest notification is dropped and counted.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import json
import logging
import random
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from secperf.alerts.grouping import Notification
from secperf.model import Alert, AlertState

log = logging.getLogger(__name__)

#: What Alertmanager writes as the end of an alert that has not ended.
ZERO_TIME = "0001-01-01T00:00:00Z"


class NotifyError(Exception):
    """A delivery failed and may succeed when retried."""


class PermanentNotifyError(NotifyError):
    """A delivery the receiver refused; retrying would not help."""


def rfc3339(ms: int) -> str:
    """UTC milliseconds as RFC 3339 text (``2024-05-01T12:00:00.000Z``)."""
    text = datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def alert_status(alert: Alert) -> str:
    """``firing`` or ``resolved`` as receivers know them."""
    return "firing" if alert.state in (AlertState.FIRING, AlertState.ERROR) else "resolved"


def string_map(values: Mapping[str, Any]) -> dict[str, str]:
    """Labels or annotations as strings only (what receivers accept)."""
    return {str(k): str(v) for k, v in values.items()}


def _post(url: str, body: bytes, timeout_s: float, headers: Mapping[str, str]) -> int:
    request = urllib.request.Request(  # noqa: S310 (http(s) URLs only, checked by the caller)
        url, data=body, method="POST", headers={"Content-Type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            response.read(65536)
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, ValueError) as exc:  # refused, timed out, DNS, bad URL
        raise NotifyError(f"POST {url}: {exc}") from None


async def post_json(
    url: str, payload: Any, timeout_s: float, headers: Mapping[str, str] | None = None
) -> None:
    """POST ``payload`` as JSON; NotifyError on failure, PermanentNotifyError on 4xx but 429.

    Runs in a worker thread so a slow receiver never holds the event loop.
    """
    if not url.startswith(("http://", "https://")):
        raise PermanentNotifyError(f"not an http(s) URL: {url!r}")
    body = json.dumps(payload, separators=(",", ":")).encode()
    status = await asyncio.to_thread(_post, url, body, timeout_s, dict(headers or {}))
    if 200 <= status < 300:
        return
    message = f"POST {url}: HTTP {status}"
    if 400 <= status < 500 and status != 429:
        raise PermanentNotifyError(message)
    raise NotifyError(message)


class Notifier(abc.ABC):
    """Delivers notifications somewhere. Implementations raise NotifyError on failure."""

    #: Identifies the notifier in logs and stats.
    name: str = "notifier"
    #: Whether resolved alerts are sent.
    send_resolved: bool = True
    #: True for receivers that group by themselves (Alertmanager): they get every
    #: active alert on each push instead of grouped notifications.
    raw: bool = False

    @abc.abstractmethod
    async def send(self, notification: Notification) -> None:
        """Deliver one notification; raise NotifyError (or PermanentNotifyError)."""

    async def close(self) -> None:  # noqa: B027 (optional hook, not abstract)
        """Release resources (default: nothing)."""


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
                log.error("notifier %s: %s refused: %s", self.name, notification.group_key, exc)
                return
            except Exception as exc:  # any failure of a receiver is counted, never raised
                if attempt == self.max_attempts:
                    self.failed += 1
                    log.error(
                        "notifier %s: giving up on %s after %d attempts: %s",
                        self.name,
                        notification.group_key,
                        attempt,
                        exc,
                    )
                    return
                self.retries += 1
                log.warning(
                    "notifier %s: attempt %d failed (%s); retrying in %.1fs",
                    self.name,
                    attempt,
                    exc,
                    delay,
                )
                # Jitter keeps many engines from retrying in step.
                await asyncio.sleep(delay * (1 + 0.1 * random.random()))  # noqa: S311
                delay = min(delay * 2, self.max_backoff_s)
            else:
                self.sent += 1
                return

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
