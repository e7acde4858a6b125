"""What every benchmark module returns, and small timing helpers.

A benchmark module is ``benchmarks/bench_<area>.py`` with a function
``run(quick: bool) -> list[Figure]``. ``python -m benchmarks`` runs them all and
writes ``docs/performance.md``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Figure:
    """One measured figure, its target, and the anchor measured in the same run."""

    area: str
    name: str
    value: float
    unit: str
    target: str  # human-readable target, e.g. ">= 200,000 events/s"
    met: bool | None  # None when the figure has no target
    anchor_name: str | None = None
    anchor_value: float | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """value / anchor, when an anchor was measured."""
        if self.anchor_value in (None, 0):
            return None
        assert self.anchor_value is not None
        return self.value / self.anchor_value


def median_of(runs: int, measure: Callable[[], float]) -> float:
    """The median of ``runs`` calls of ``measure`` (each returns one reading)."""
    return statistics.median(measure() for _ in range(runs))


def seconds(fn: Callable[[], object]) -> float:
    """Wall-clock seconds one call of ``fn`` takes."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


@contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    """Serve an ASGI ``app`` with secperf's server on a free loopback port; yield its URL."""
    import asyncio
    import threading

    from secperf.web.server import bind_socket, make_server, socket_url

    sock = bind_socket("127.0.0.1", 0)
    server = make_server(app, log_level="error")
    loop = asyncio.new_event_loop()
    thread = threading.Thread(
        target=lambda: loop.run_until_complete(server.serve(sockets=[sock])), daemon=True
    )
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield socket_url(sock)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        loop.close()
        sock.close()
