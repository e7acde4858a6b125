"""The demo's load generator: N clients sending orders at a steady total rate.

Each client holds one keep-alive connection and sends on its own fixed
timetable (client *i* of *N* at ``start + (k + i / N) * N / rps``), so the
total rate stays steady whatever the service's latency: a slow answer makes a
client late, and a late client sends its next order at once rather than
skipping it, catching up without ever bursting past one order per answer.
The generator records nothing itself - the service measures its own latency
and secperf scrapes it.

A small fraction of the orders is malformed on purpose (as real clients
sometimes are), so the service's ``error_rate`` is not a flat zero.

Run as ``python -m secperf.demo.load URL --rps 50 --clients 4``; it stops on
SIGTERM, SIGINT, after ``--duration`` seconds or (``--parent-pid``) when the
process that started it exits.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import sys
import threading
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field

from secperf.demo.service import install_stop_signals, watch_parent

DEFAULT_RPS = 50.0
DEFAULT_CLIENTS = 4
DEFAULT_BAD_FRACTION = 0.01
#: After a failed request (the service restarting, refusing), wait this long.
RETRY_PAUSE_S = 0.5


def make_order(rng: random.Random, bad_fraction: float = DEFAULT_BAD_FRACTION) -> bytes:
    """One order as JSON; with probability ``bad_fraction`` a malformed one."""
    items = [
        {
            "sku": f"{rng.choice(('ABC', 'KIT', 'MUG', 'TEE'))}-{rng.randint(1000, 99999)}",
            "quantity": rng.randint(1, 5),
            "price": round(rng.uniform(2.0, 120.0), 2),
        }
        for _ in range(rng.randint(1, 8))
    ]
    order: dict[str, object] = {
        "email": f"customer{rng.randint(1, 5000)}@example.com",
        "items": items,
    }
    if rng.random() < 0.2:
        order["coupon"] = f"SAVE{rng.choice((5, 10, 15))}"
    if rng.random() < bad_fraction:
        # A client bug: a quantity sent as text.
        items[0]["quantity"] = str(items[0]["quantity"])
    return json.dumps(order).encode()


@dataclass
class ClientStats:
    """What one client did (for the generator's own summary, not for metrics)."""

    sent: int = 0
    failed: int = 0
    last_error: str | None = None


@dataclass
class LoadGenerator:
    """Sends orders to ``url`` (the service's base URL) from ``clients`` threads."""

    url: str
    rps: float = DEFAULT_RPS
    clients: int = DEFAULT_CLIENTS
    bad_fraction: float = DEFAULT_BAD_FRACTION
    seed: int = 0
    timeout_s: float = 10.0
    stats: list[ClientStats] = field(default_factory=list)

    def __post_init__(self) -> None:
        parsed = urllib.parse.urlsplit(self.url)
        if parsed.scheme != "http" or not parsed.hostname or parsed.port is None:
            raise ValueError(f"service URL {self.url!r} must be http://HOST:PORT")
        if not self.rps > 0:
            raise ValueError(f"rps must be > 0, got {self.rps}")
        if self.clients < 1:
            raise ValueError(f"clients must be at least 1, got {self.clients}")
        if not 0 <= self.bad_fraction <= 1:
            raise ValueError(f"bad_fraction must be from 0 to 1, got {self.bad_fraction}")
        self.host = parsed.hostname
        self.port = parsed.port
        self.stats = [ClientStats() for _ in range(self.clients)]

    def run(self, stop: threading.Event) -> None:
        """Send until ``stop`` is set; returns when every client has stopped."""
        start = time.monotonic()
        threads = [
            threading.Thread(
                target=self._client, args=(i, start, stop), daemon=True, name=f"client-{i}"
            )
            for i in range(self.clients)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _client(self, index: int, start: float, stop: threading.Event) -> None:
        # Order contents only: nothing here needs a cryptographic generator.
        rng = random.Random(self.seed * 1_000 + index)  # noqa: S311  # nosec B311
        period = self.clients / self.rps
        due = start + period * index / self.clients
        stats = self.stats[index]
        conn: http.client.HTTPConnection | None = None
        while not stop.is_set():
            wait = due - time.monotonic()
            if wait > 0 and stop.wait(wait):
                break
            due += period
            body = make_order(rng, self.bad_fraction)
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
                conn.request("POST", "/orders", body, {"Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
                if response.will_close:
                    conn.close()
                    conn = None
                stats.sent += 1
            except (OSError, http.client.HTTPException) as exc:
                stats.failed += 1
                stats.last_error = f"{type(exc).__name__}: {exc}"
                if conn is not None:
                    conn.close()
                    conn = None
                stop.wait(RETRY_PAUSE_S)
                due = max(due, time.monotonic())
        if conn is not None:
            conn.close()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m secperf.demo.load", description="Steady load on the demo's order service."
    )
    parser.add_argument("url", help="the service's base URL, http://HOST:PORT")
    parser.add_argument("--rps", type=float, default=DEFAULT_RPS, help="total requests per second")
    parser.add_argument("--clients", type=int, default=DEFAULT_CLIENTS, help="concurrent clients")
    parser.add_argument(
        "--bad-fraction", type=float, default=DEFAULT_BAD_FRACTION, help="share of bad orders"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the orders' contents")
    parser.add_argument("--duration", type=float, default=None, help="stop after this many s")
    parser.add_argument("--parent-pid", type=int, default=None, help="exit when it exits")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the load until told to stop; print one summary line on stderr."""
    args = _parser().parse_args(argv)
    try:
        generator = LoadGenerator(
            args.url,
            rps=args.rps,
            clients=args.clients,
            bad_fraction=args.bad_fraction,
            seed=args.seed,
        )
    except ValueError as exc:
        print(f"load generator: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    install_stop_signals(stop)
    if args.parent_pid is not None:
        threading.Thread(
            target=watch_parent, args=(args.parent_pid, stop), daemon=True, name="parent"
        ).start()
    if args.duration is not None:
        timer = threading.Timer(args.duration, stop.set)
        timer.daemon = True
        timer.start()
    worker = threading.Thread(target=generator.run, args=(stop,), daemon=True, name="load")
    worker.start()
    while worker.is_alive():  # a timed join lets signal handlers run promptly
        worker.join(0.5)
    sent = sum(s.sent for s in generator.stats)
    failed = sum(s.failed for s in generator.stats)
    errors = [s.last_error for s in generator.stats if s.last_error]
    detail = f" (last: {errors[-1]})" if errors else ""
    print(f"load generator: {sent} orders sent, {failed} failed{detail}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
