"""Load shedding: the API takes the work it can do and answers the rest 503 quickly.

The store's connection pool is the real bound on how many API requests can
work at the same time. ``AdmissionLimiter`` lets at most ``limit`` requests
under ``/api/`` run and keeps others waiting in line (on the event loop: a
waiting request holds no thread and no connection) for at most ``wait_s``.
The line is as long as the working requests can serve within ``wait_s`` (from
their measured duration), never longer than ``queue``: a request that would
only wait to be refused is refused at once. Refusals are 503 ``overloaded``
with ``Retry-After``, counted by reason in ``ShedCounter`` and exported at
``/metrics`` as ``secperf_http_requests_shed_total{reason}``.

``StoreHealth`` checks the store in a thread of its own, so ``/healthz``
answers from memory whatever the load; ``SingleFlight`` lets concurrent
``/metrics`` scrapes share one rendering (one connection, whatever the number
of scrapers).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine, text
from sqlalchemy.pool import QueuePool
from starlette.types import ASGIApp, Receive, Scope, Send

from secperf.web.errors import REASON_POOL_TIMEOUT, REASON_STORE_UNAVAILABLE, error_body

log = logging.getLogger(__name__)

#: Requests at work at most, whatever the pool and the machine.
MAX_DEFAULT_LIMIT = 8
#: Pool connections kept for the store writer, the alert engine, /metrics and the health check.
POOL_RESERVE = 4
#: Most requests waiting for a slot, whatever the measured capacity.
DEFAULT_QUEUE = 256
#: Longest wait for a slot before the answer is 503.
DEFAULT_WAIT_S = 2.0
#: Weight of the newest request in the average service time.
_SERVICE_EWMA = 0.1
#: What ``Retry-After`` says (seconds).
RETRY_AFTER_S = 1
#: The web server's pool checkout timeout: fail fast to 503 rather than queue for 30 s.
POOL_TIMEOUT_S = 3.0

#: Why a request was shed (the ``reason`` label).
REASON_QUEUE_FULL = "queue_full"
REASON_QUEUE_TIMEOUT = "queue_timeout"
REASON_WRITER_BEHIND = "writer_behind"
SHED_REASONS = (
    REASON_QUEUE_FULL,
    REASON_QUEUE_TIMEOUT,
    REASON_POOL_TIMEOUT,
    REASON_STORE_UNAVAILABLE,
    REASON_WRITER_BEHIND,
)
#: Paths under /api/ the limiter leaves alone: the stream holds no store connection.
UNLIMITED_PATHS = frozenset({"/api/v1/stream"})


def pool_capacity(engine: Engine) -> int | None:
    """Connections the engine's pool hands out at most (None: no fixed bound)."""
    pool = engine.pool
    if not isinstance(pool, QueuePool):
        return None
    return pool.size() + max(0, pool._max_overflow)


def default_limit(engine: Engine, cpus: int | None = None) -> int:
    """API requests allowed at work: one per CPU (at least 2, at most 8), within the pool.

    The work of a request is mostly Python (rows to objects to JSON), so it
    holds the interpreter lock: more requests at work than CPUs do not finish
    sooner, they queue for the lock, and so does the event loop (every answer,
    /healthz included, waits behind them). Measured on 2 CPUs over SQLite: 2 at
    work serve the overview faster at 10 to 200 clients than 4 or 8 do, and
    /healthz's p99 under 200 clients is several times lower.
    """
    wanted = max(2, min(MAX_DEFAULT_LIMIT, cpus if cpus is not None else os.cpu_count() or 2))
    capacity = pool_capacity(engine)
    if capacity is None:
        return wanted
    return max(1, min(wanted, capacity - POOL_RESERVE))


def set_pool_timeout(engine: Engine, seconds: float) -> bool:
    """Make the pool's checkout wait at most ``seconds``; False when the pool has no queue.

    SQLAlchemy sets the timeout when the engine is created and has no public
    setter; the store creates the engine, the server decides how long a
    request may wait, so the server sets it here (QueuePool reads it at every
    checkout).
    """
    if seconds <= 0:
        raise ValueError(f"the pool timeout must be positive, got {seconds}")
    pool = engine.pool
    if not isinstance(pool, QueuePool):
        return False
    pool._timeout = seconds
    return True


class ShedCounter:
    """Requests answered 503 because the server could not take them, by reason."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(SHED_REASONS, 0)

    def add(self, reason: str) -> None:
        """Count one shed request."""
        with self._lock:
            self._counts[reason] = self._counts.get(reason, 0) + 1

    def counts(self) -> dict[str, int]:
        """Every reason with its count (zeros included)."""
        with self._lock:
            return dict(self._counts)


class AdmissionLimiter:
    """At most ``limit`` requests at work, the rest wait in line (FIFO) up to ``wait_s``.

    The line holds at most ``queue`` requests, and at most as many as the
    working ones are expected to serve within ``wait_s`` (``record`` feeds the
    average service time). Used on one event loop only (the server's); it
    holds no lock.
    """

    def __init__(self, limit: int, queue: int, wait_s: float) -> None:
        if limit < 1:
            raise ValueError(f"the admission limit must be at least 1, got {limit}")
        if queue < 0:
            raise ValueError(f"the admission queue must not be negative, got {queue}")
        if wait_s < 0:
            raise ValueError(f"the admission wait must not be negative, got {wait_s}")
        self.limit = limit
        self.queue = queue
        self.wait_s = wait_s
        self.active = 0
        self.service_s: float | None = None  # average time a request holds a slot
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        """Requests waiting for a slot now."""
        return sum(1 for w in self._waiters if not w.done())

    def queue_bound(self) -> int:
        """How many may wait now: what the slots serve within ``wait_s``, at most ``queue``."""
        if self.service_s is None:
            return self.queue
        servable = int(self.limit * self.wait_s / max(self.service_s, 1e-6))
        # At least one round of slots: a slow spell must not close the line entirely.
        return min(self.queue, max(self.limit, servable))

    def record(self, seconds: float) -> None:
        """Feed one admitted request's time in its slot into the average."""
        if self.service_s is None:
            self.service_s = seconds
        else:
            self.service_s += _SERVICE_EWMA * (seconds - self.service_s)

    async def acquire(self) -> str | None:
        """Take a slot: None once taken, else the reason the request is refused."""
        if self.active < self.limit and not self._waiters:
            self.active += 1
            return None
        if self.wait_s == 0 or self.waiting >= self.queue_bound():
            return REASON_QUEUE_FULL
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self.wait_s):
                await waiter
        except TimeoutError:
            # The slot may have been handed over just as the wait ran out: keep it.
            if waiter.done() and not waiter.cancelled():
                return None
            return REASON_QUEUE_TIMEOUT
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed over, but the request is gone: pass it on
            raise
        finally:
            if not waiter.done():
                waiter.cancel()
            with contextlib.suppress(ValueError):  # release() already took it off
                self._waiters.remove(waiter)
        return None

    def release(self) -> None:
        """Give the slot to the oldest waiter still waiting, or free it."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot changes hands; ``active`` stays
                return
        self.active -= 1


def _shed_headers(retry_after_s: int) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-type", b"application/json"),
        (b"retry-after", str(retry_after_s).encode()),
    ]


def shed_message(reason: str) -> str:
    """What a client reads in a 503 answer of the limiter."""
    if reason == REASON_QUEUE_TIMEOUT:
        return "the server is busy: no capacity freed up in time; retry after Retry-After seconds"
    return (
        "the server is busy: too many requests at work and waiting; retry after Retry-After seconds"
    )


class AdmissionMiddleware:
    """Runs /api/ requests (but the stream) through the limiter; 503 for the refused."""

    def __init__(
        self,
        app: ASGIApp,
        limiter: AdmissionLimiter,
        counter: ShedCounter,
        retry_after_s: int = RETRY_AFTER_S,
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.counter = counter
        self.retry_after_s = retry_after_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or not path.startswith("/api/") or path in UNLIMITED_PATHS:
            await self.app(scope, receive, send)
            return
        reason = await self.limiter.acquire()
        if reason is not None:
            self.counter.add(reason)
            await _send_shed(send, reason, self.retry_after_s)
            return
        began = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            self.limiter.record(time.perf_counter() - began)
            self.limiter.release()


async def _send_shed(send: Send, reason: str, retry_after_s: int) -> None:
    body = json.dumps(error_body("overloaded", shed_message(reason))).encode()
    headers = [*_shed_headers(retry_after_s), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@dataclass(frozen=True, slots=True)
class HealthStatus:
    """The last store check: whether it answered, and when (monotonic seconds)."""

    ok: bool
    checked_at: float


class StoreHealth:
    """Checks the store every ``interval_s`` in its own thread; ``/healthz`` reads the result.

    A check that has not answered for ``stale_after_s`` counts as a failure,
    so a store that hangs (not only one that refuses) makes /healthz say so.
    """

    def __init__(self, engine: Engine, *, interval_s: float = 5.0, stale_after_s: float = 30.0):
        self.engine = engine
        self.interval_s = interval_s
        self.stale_after_s = stale_after_s
        self.last: HealthStatus | None = None
        self._started_check: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check_once(self) -> bool:
        """One check now (in the calling thread); records and returns the result."""
        self._started_check = time.monotonic()
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            ok = True
        except Exception as exc:  # any failure means "cannot be reached" here
            log.warning("store health check failed: %s", type(exc).__name__)
            ok = False
        self.last = HealthStatus(ok, time.monotonic())
        self._started_check = None
        return ok

    def start(self) -> None:
        """Start checking in a daemon thread (idempotent)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="secperf-store-health", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop checking (the thread ends after its current check)."""
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.check_once()
            self._stop.wait(self.interval_s)

    def healthy(self) -> bool:
        """False when the last check failed or a check hangs; True before any check."""
        started = self._started_check
        if started is not None and time.monotonic() - started > self.stale_after_s:
            return False
        last = self.last
        return last is None or last.ok


class SingleFlight:
    """Concurrent callers share one run of ``fn`` in the thread pool."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
        self._task: asyncio.Future[Any] | None = None

    async def __call__(self) -> Any:
        task = self._task
        if task is None or task.done():
            task = asyncio.ensure_future(run_in_threadpool(self.fn))
            self._task = task
        # Shielded: a scraper that goes away does not cancel the others' rendering.
        return await asyncio.shield(task)
