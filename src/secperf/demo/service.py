"""The demo's HTTP service: prices orders and exposes its latency for Prometheus.

``POST /orders`` takes a JSON order, validates it (regular expressions over
SKUs and e-mail addresses), prices it and derives an order id from a
key-derivation hash of the canonical order - real CPU work per request, a
few milliseconds, so that anything else taking the CPU (a full security
scan) shows in its latency. A malformed order is answered 400 and counts as an
error.

``GET /metrics`` gives, over a sliding window of the latest requests (1 s by
default), the series secperf knows by name:

- ``response_time_ms{quantile="0.5"|"0.95"|"0.99"}``: request latency, measured
  in the service from the request's arrival to the end of the answer;
- ``throughput``: requests answered per second;
- ``error_rate``: the fraction of those answered with an error (4xx or 5xx).

Window statistics rather than a histogram: a scrape then carries the latency
of that moment, which is what a correlation with scan windows needs.

Run as ``python -m secperf.demo.service --port 0``: it prints
``listening on http://HOST:PORT`` on its first line and serves until SIGTERM,
SIGINT or (``--parent-pid``) the death of the process that started it.
Only the standard library and prometheus-client are used.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

#: Default iterations of the per-order key derivation: about 3 ms of CPU per
#: order, so that 50 orders a second keep a sixth of one core busy.
DEFAULT_WORK = 8_000
DEFAULT_WINDOW_S = 1.0
MAX_BODY_BYTES = 64 * 1024
MAX_ITEMS = 100
QUANTILES = (0.5, 0.95, 0.99)
PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_SKU = re.compile(r"^[A-Z]{3}-\d{4,6}$")
_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
_COUPON = re.compile(r"^(?:SAVE|DEAL)(\d{1,2})$")
# A fixed, public salt: the hash is an order id, not a password.
_ORDER_ID_SALT = b"acme-shop-order-id"


class OrderError(ValueError):
    """An order that cannot be priced; the message says which field and why."""


def price_order(body: bytes, work: int = DEFAULT_WORK) -> dict[str, Any]:
    """Validate and price one order; raises OrderError naming the bad field."""
    try:
        order = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise OrderError(f"body is not JSON: {exc}") from None
    if not isinstance(order, dict):
        raise OrderError("body must be a JSON object")
    email = order.get("email")
    if not isinstance(email, str) or not _EMAIL.match(email):
        raise OrderError("email: expected an e-mail address")
    items = order.get("items")
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_ITEMS:
        raise OrderError(f"items: expected a list of 1 to {MAX_ITEMS} items")
    subtotal = 0.0
    for index, item in enumerate(items):
        where = f"items[{index}]"
        if not isinstance(item, dict):
            raise OrderError(f"{where}: expected an object")
        sku, quantity, price = item.get("sku"), item.get("quantity"), item.get("price")
        if not isinstance(sku, str) or not _SKU.match(sku):
            raise OrderError(f"{where}.sku: expected a SKU such as ABC-1234")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or not 0 < quantity < 1000:
            raise OrderError(f"{where}.quantity: expected an integer from 1 to 999")
        if isinstance(price, bool) or not isinstance(price, int | float) or not price >= 0:
            raise OrderError(f"{where}.price: expected a non-negative number")
        subtotal += quantity * float(price)
    discount = 0.0
    coupon = order.get("coupon")
    if coupon is not None:
        match = _COUPON.match(coupon) if isinstance(coupon, str) else None
        if match is None:
            raise OrderError("coupon: expected a code such as SAVE10")
        discount = min(int(match.group(1)), 50) / 100
    canonical = json.dumps(order, sort_keys=True, separators=(",", ":")).encode()
    digest = hashlib.pbkdf2_hmac("sha256", canonical, _ORDER_ID_SALT, work)
    return {
        "order_id": digest.hex()[:20],
        "items": len(items),
        "subtotal": round(subtotal, 2),
        "total": round(subtotal * (1 - discount), 2),
    }


def quantile(ordered: Sequence[float], q: float) -> float:
    """The ``q`` quantile of sorted values by linear interpolation (as numpy's default)."""
    if not ordered:
        raise ValueError("no values")
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True, slots=True)
class WindowStats:
    """What the latest window of requests looked like."""

    count: int
    errors: int
    throughput: float
    error_rate: float
    quantiles_ms: dict[float, float]


class RequestWindow:
    """The latest requests (time, latency, error) over a sliding window; thread-safe."""

    def __init__(self, window_s: float = DEFAULT_WINDOW_S) -> None:
        if not window_s > 0:
            raise ValueError(f"window_s must be > 0, got {window_s}")
        self.window_s = window_s
        self._events: deque[tuple[float, float, bool]] = deque()
        self._lock = threading.Lock()

    def record(self, latency_ms: float, error: bool, at: float | None = None) -> None:
        """Count one answered request."""
        now = time.monotonic() if at is None else at
        with self._lock:
            self._events.append((now, latency_ms, error))
            self._expire(now)

    def _expire(self, now: float) -> None:
        cutoff = now - self.window_s
        while self._events and self._events[0][0] < cutoff:
            self._events.popleft()

    def stats(self, at: float | None = None) -> WindowStats:
        """Counts, rates and latency quantiles of the requests in the window."""
        now = time.monotonic() if at is None else at
        with self._lock:
            self._expire(now)
            events = list(self._events)
        latencies = sorted(e[1] for e in events)
        errors = sum(1 for e in events if e[2])
        return WindowStats(
            count=len(events),
            errors=errors,
            throughput=len(events) / self.window_s,
            error_rate=errors / len(events) if events else 0.0,
            quantiles_ms={q: quantile(latencies, q) for q in QUANTILES} if latencies else {},
        )


class WindowCollector(Collector):
    """Exposes a ``RequestWindow`` as ``response_time_ms``, ``throughput``, ``error_rate``."""

    def __init__(self, window: RequestWindow) -> None:
        self.window = window

    def collect(self) -> Iterator[Metric]:
        stats = self.window.stats()
        latency = GaugeMetricFamily(
            "response_time_ms",
            f"Request latency over the last {self.window.window_s:g} s, in milliseconds.",
            labels=["quantile"],
        )
        for q, value in stats.quantiles_ms.items():
            latency.add_metric([f"{q:g}"], value)
        yield latency
        yield GaugeMetricFamily(
            "throughput",
            f"Requests answered per second over the last {self.window.window_s:g} s.",
            value=stats.throughput,
        )
        yield GaugeMetricFamily(
            "error_rate",
            "Fraction of the requests answered with an error over the last "
            f"{self.window.window_s:g} s.",
            value=stats.error_rate,
        )


class DemoService(ThreadingHTTPServer):
    """The order service: one thread per connection, keep-alive, its own metrics registry."""

    daemon_threads = True
    # Many clients connect at once when the load starts.
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        *,
        work: int = DEFAULT_WORK,
        window_s: float = DEFAULT_WINDOW_S,
    ) -> None:
        if work < 1:
            raise ValueError(f"work must be at least 1 iteration, got {work}")
        self.work = work
        self.window = RequestWindow(window_s)
        # Only the service's own series: no process or GC collectors to scrape.
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(WindowCollector(self.window))
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else str(host)
        shown = f"[{name}]" if ":" in name else name
        return f"http://{shown}:{port}"


class _Handler(BaseHTTPRequestHandler):
    server: DemoService
    protocol_version = "HTTP/1.1"  # keep-alive: the load generator reuses connections
    server_version = "acme-shop"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: a request log at 50 requests per second is noise in the demo's output."""

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, data: Any) -> None:
        self._send(status, json.dumps(data).encode())

    def do_GET(self) -> None:
        if self.path == "/metrics":
            self._send(
                HTTPStatus.OK, generate_latest(self.server.registry), PROMETHEUS_CONTENT_TYPE
            )
        elif self.path == "/healthz":
            self._json(HTTPStatus.OK, {"status": "ok"})
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no route {self.path}"})

    def do_POST(self) -> None:
        started = time.perf_counter()
        status = HTTPStatus.OK
        try:
            if self.path != "/orders":
                status = HTTPStatus.NOT_FOUND
                answer: dict[str, Any] = {"error": f"no route {self.path}"}
            else:
                status, answer = self._order()
            self._json(status, answer)
        finally:
            if self.path == "/orders":
                latency_ms = (time.perf_counter() - started) * 1000
                self.server.window.record(latency_ms, status >= HTTPStatus.BAD_REQUEST)

    def _order(self) -> tuple[HTTPStatus, dict[str, Any]]:
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self.close_connection = True
            return HTTPStatus.LENGTH_REQUIRED, {"error": "Content-Length is required"}
        if not 0 <= length <= MAX_BODY_BYTES:
            self.close_connection = True
            return HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {
                "error": f"body over {MAX_BODY_BYTES} bytes"
            }
        body = self.rfile.read(length)
        try:
            return HTTPStatus.OK, price_order(body, self.server.work)
        except OrderError as exc:
            return HTTPStatus.BAD_REQUEST, {"error": str(exc)}


def watch_parent(parent_pid: int, stop: threading.Event, every_s: float = 1.0) -> None:
    """Set ``stop`` once the process ``parent_pid`` is gone (so no demo process is orphaned)."""
    while not stop.wait(every_s):
        if os.getppid() != parent_pid:
            stop.set()


def install_stop_signals(stop: threading.Event) -> None:
    """SIGTERM and SIGINT set ``stop`` instead of killing the process mid-answer."""

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m secperf.demo.service", description="The secperf demo's order service."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (default 0: any free port)")
    parser.add_argument(
        "--work", type=int, default=DEFAULT_WORK, help="key-derivation iterations per order"
    )
    parser.add_argument(
        "--window", type=float, default=DEFAULT_WINDOW_S, help="seconds the metrics cover"
    )
    parser.add_argument("--parent-pid", type=int, default=None, help="exit when it exits")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until told to stop; print the URL first."""
    args = _parser().parse_args(argv)
    try:
        server = DemoService((args.host, args.port), work=args.work, window_s=args.window)
    except (OSError, ValueError) as exc:
        print(f"cannot start the demo service on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    install_stop_signals(stop)
    if args.parent_pid is not None:
        threading.Thread(
            target=watch_parent, args=(args.parent_pid, stop), daemon=True, name="parent"
        ).start()
    serving = threading.Thread(target=server.serve_forever, daemon=True, name="serve")
    serving.start()
    print(f"listening on {server.url}", flush=True)
    while not stop.wait(0.5):  # a timed wait lets signal handlers run promptly
        pass
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
