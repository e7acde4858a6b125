"""The services the tests talk to for real, and whether they can be reached.

PostgreSQL and NATS with JetStream are the servers on this machine
(``SECPERF_TEST_POSTGRES``, ``SECPERF_TEST_NATS`` override their URLs).
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

POSTGRES_URL = os.environ.get(
    "SECPERF_TEST_POSTGRES", "postgresql+psycopg://root@127.0.0.1:5432/test"
)
NATS_URL = os.environ.get("SECPERF_TEST_NATS", "nats://127.0.0.1:4222")


def postgres_unreachable() -> str | None:
    """Why PostgreSQL cannot be used, or None when it can."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed"
    dsn = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://", 1)
    try:
        psycopg.connect(dsn, connect_timeout=3).close()
    except Exception as exc:
        return f"PostgreSQL at {POSTGRES_URL} is unreachable: {exc}"
    return None


def nats_unreachable() -> str | None:
    """Why the NATS server cannot be used, or None when it can."""
    parts = urlsplit(NATS_URL)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 4222), 2).close()
    except OSError as exc:
        return f"NATS at {NATS_URL} is unreachable: {exc}"
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
