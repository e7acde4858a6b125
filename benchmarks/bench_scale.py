"""Scale-out ingest: agents -> NATS JetStream -> server -> PostgreSQL.

Four agent processes each publish realistic metric batches (one collection of
500 series per batch, one batch per simulated second) to NATS JetStream; the
server side, in this process, is the NATS bus's durable consumer feeding a
StoreWriter on PostgreSQL, acknowledging only committed samples. The figure is
samples stored per second, from the moment the agents start publishing until
the last sample is committed. Anchor: the same samples written by a
StoreWriter straight into PostgreSQL (no NATS), in the same run.

Needs the PostgreSQL (``SECPERF_BENCH_POSTGRES``) and NATS
(``SECPERF_BENCH_NATS``) servers; each run uses its own schema and stream
and removes them afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

from benchmarks.common import Figure
from secperf.events import MetricsRecorded
from secperf.model import Sample
from secperf.store import Store, StoreWriter

AREA = "scale"
AGENTS = 4
SERIES = 500
TARGET = 50_000.0
POSTGRES = os.environ.get("SECPERF_BENCH_POSTGRES", "postgresql+psycopg://root@127.0.0.1:5432/test")
NATS = os.environ.get("SECPERF_BENCH_NATS", "nats://127.0.0.1:4222")
SRC = str(Path(__file__).resolve().parents[1] / "src")

AGENT = textwrap.dedent(
    """
    import asyncio, json, sys
    from secperf.bus.nats import NatsEventBus
    from secperf.events import MetricsRecorded
    from secperf.model import Sample

    async def main(url, stream, prefix, host, batches, series, base):
        batches, series, base = int(batches), int(series), int(base)
        events = [
            MetricsRecorded(
                host=host,
                samples=tuple(
                    Sample("node_metric_" + str(k % 25), {"host": host, "device": str(k)},
                           base + b * 1000, float((b * 7 + k) % 1000) / 10)
                    for k in range(series)
                ),
            )
            for b in range(batches)
        ]
        bus = NatsEventBus(url, stream=stream, subject_prefix=prefix, outbox_size=len(events) + 1)
        await bus.start()
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        for event in events:
            await bus.publish(event)
        flushed = await bus.flush(timeout=120)
        dropped = bus.stats().dropped
        await bus.close()
        print(json.dumps({"samples": batches * series, "dropped": dropped, "flushed": flushed}),
              flush=True)

    asyncio.run(main(*sys.argv[1:8]))
    """
)


def _base_ms() -> int:
    now = time.time_ns() // 1_000_000
    return now - now % 3_600_000 - 6 * 3_600_000


def _events(host: str, batches: int, base: int) -> list[MetricsRecorded]:
    """The same batches an agent builds (for the anchor)."""
    return [
        MetricsRecorded(
            host=host,
            samples=tuple(
                Sample(
                    "node_metric_" + str(k % 25),
                    {"host": host, "device": str(k)},
                    base + b * 1000,
                    float((b * 7 + k) % 1000) / 10,
                )
                for k in range(SERIES)
            ),
        )
        for b in range(batches)
    ]


def _store_url(schema: str) -> str:
    sep = "&" if "?" in POSTGRES else "?"
    return f"{POSTGRES}{sep}schema={schema}"


def _drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def _delete_stream(stream: str) -> None:
    import nats

    nc = await nats.connect(NATS)
    with contextlib.suppress(Exception):
        await nc.jetstream().delete_stream(stream)
    await nc.close()


async def _through_nats(batches: int, base: int) -> tuple[float, int]:
    """Samples/s from agents through NATS into PostgreSQL; returns (rate, samples)."""
    from secperf.bus.nats import NatsEventBus

    tag = uuid.uuid4().hex[:12]
    stream, prefix, schema = f"SECPERF_B_{tag}", f"secperf_b_{tag}", f"secperf_b_{tag}"
    store = Store.open(_store_url(schema))
    bus = NatsEventBus(NATS, stream=stream, subject_prefix=prefix, fetch_batch=64)
    writer = StoreWriter(store, flush_interval_s=0.5, max_batch=50_000)
    procs: list[asyncio.subprocess.Process] = []
    try:
        await bus.start()
        await writer.attach(bus)
        with tempfile.TemporaryDirectory() as tmp:
            script = Path(tmp) / "agent.py"
            script.write_text(AGENT)
            env = {**os.environ, "PYTHONPATH": SRC}
            for i in range(AGENTS):
                proc = await asyncio.create_subprocess_exec(
                    sys.executable,
                    str(script),
                    NATS,
                    stream,
                    prefix,
                    f"bench-host-{i}",
                    str(batches),
                    str(SERIES),
                    str(base),
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    env=env,
                )
                procs.append(proc)
            for proc in procs:
                assert proc.stdout is not None
                line = await asyncio.wait_for(proc.stdout.readline(), 60)
                if line.strip() != b"ready":
                    raise RuntimeError(f"benchmark agent did not start: {line!r}")
            start = time.perf_counter()
            for proc in procs:
                assert proc.stdin is not None
                proc.stdin.write(b"go\n")
                await proc.stdin.drain()
            expected = AGENTS * batches * SERIES
            results = []
            for proc in procs:
                assert proc.stdout is not None
                out = await asyncio.wait_for(proc.stdout.read(), 300)
                await proc.wait()
                results.append(json.loads(out.decode().strip().splitlines()[-1]))
            expected -= sum(r["dropped"] * SERIES for r in results)
            deadline = time.perf_counter() + 300
            while writer.samples_written < expected and time.perf_counter() < deadline:
                await asyncio.sleep(0.005)
            elapsed = time.perf_counter() - start
            written = writer.samples_written
        return written / elapsed, written
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        await bus.close()
        await writer.close()
        store.close()
        await _delete_stream(stream)
        _drop_schema(schema)


async def _direct(batches: int, base: int) -> float:
    """Samples/s of the same batches handed to a StoreWriter on PostgreSQL (no NATS)."""
    schema = f"secperf_b_{uuid.uuid4().hex[:12]}"
    store = Store.open(_store_url(schema))
    try:
        events = [e for i in range(AGENTS) for e in _events(f"bench-host-{i}", batches, base)]
        writer = StoreWriter(store, flush_interval_s=0.5, max_batch=50_000)
        start = time.perf_counter()
        for event in events:
            await writer.handle(event)
        await writer.close()
        elapsed = time.perf_counter() - start
        return writer.samples_written / elapsed
    finally:
        store.close()
        _drop_schema(schema)


def _unavailable() -> str | None:
    import socket
    from urllib.parse import urlsplit

    for name, url, port in (("PostgreSQL", POSTGRES, 5432), ("NATS", NATS, 4222)):
        parts = urlsplit(url)
        try:
            socket.create_connection((parts.hostname or "127.0.0.1", parts.port or port), 2).close()
        except OSError as exc:
            return f"{name} at {parts.hostname}:{parts.port or port} unreachable: {exc}"
    return None


def run(quick: bool) -> list[Figure]:
    """Agents -> NATS -> server -> PostgreSQL ingest, beside direct StoreWriter ingest."""
    reason = _unavailable()
    if reason is not None:
        return [
            Figure(AREA, "agents -> NATS -> PostgreSQL ingest", 0.0, "samples/s",
                   f">= {TARGET:,.0f} samples/s ({AGENTS} agents)", None,
                   note=f"not measured: {reason}")
        ]  # fmt: skip
    batches = 20 if quick else 150
    rounds = 1 if quick else 3
    base = _base_ms()
    nats_rates: list[float] = []
    direct_rates: list[float] = []
    stored = 0
    for _ in range(rounds):
        rate, stored = asyncio.run(_through_nats(batches, base))
        nats_rates.append(rate)
        direct_rates.append(asyncio.run(_direct(batches, base)))
    value = statistics.median(nats_rates)
    anchor = statistics.median(direct_rates)
    return [
        Figure(
            AREA,
            f"agents -> NATS -> PostgreSQL ingest ({AGENTS} agent processes)",
            value,
            "samples/s",
            f">= {TARGET:,.0f} samples/s",
            value >= TARGET,
            anchor_name="StoreWriter straight into PostgreSQL, same samples",
            anchor_value=anchor,
            note=(
                f"median of {rounds}; {stored:,} samples per run in batches of {SERIES}"
                f" (one collection of {SERIES} series), acknowledged after commit"
            ),
        )
    ]
