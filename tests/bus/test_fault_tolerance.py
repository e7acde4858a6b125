"""Faults at scale, with real processes: a killed server and an unreachable NATS.

Agents and the server are subprocesses; the server is the NATS bus plus the
StoreWriter on PostgreSQL (through ``Runtime``). Counting is done in
PostgreSQL: every sample an agent published is stored, and stored once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from secperf.store import Store
from support.paths import REPO
from support.services import NATS_URL, nats_unreachable

pytest.importorskip("nats", reason="nats-py is not installed")

SRC = str(REPO / "src")

SERVER = textwrap.dedent(
    """
    import asyncio, signal, sys
    from secperf.config import Config
    from secperf.runtime import Runtime

    async def main(bus_url, stream, prefix, store_url):
        config = Config.model_validate(
            {"bus": {"url": bus_url, "stream": stream, "subject_prefix": prefix}}
        )
        async with Runtime(config, store_url=store_url, consume=True):
            print("ready", flush=True)
            stop = asyncio.Event()
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
            await stop.wait()

    asyncio.run(main(*sys.argv[1:5]))
    """
)

AGENT = textwrap.dedent(
    """
    import asyncio, json, sys, time
    from secperf.bus.nats import NatsEventBus
    from secperf.events import MetricsRecorded, now_ms
    from secperf.model import Sample

    async def main(bus_url, stream, prefix, host, batches, size, per_second):
        batches, size, per_second = int(batches), int(size), float(per_second)
        bus = NatsEventBus(bus_url, stream=stream, subject_prefix=prefix, outbox_size=100_000)
        await bus.start()
        print("ready", flush=True)
        base = now_ms() - 3_600_000
        loop = asyncio.get_running_loop()
        start = loop.time()
        for b in range(batches):
            samples = tuple(
                Sample("fault_test", {"host": host, "series": str(j % 10)},
                       base + b * size + j, float(j))
                for j in range(size)
            )
            await bus.publish(MetricsRecorded(samples=samples, host=host))
            await asyncio.sleep(max(0.0, start + (b + 1) / per_second - loop.time()))
        flushed = await bus.flush(timeout=60)
        stats = bus.stats()
        await bus.close()
        print(json.dumps({"published": batches * size, "dropped": stats.dropped,
                          "flushed": flushed}), flush=True)

    asyncio.run(main(*sys.argv[1:8]))
    """
)


@pytest.fixture
def space(postgres_url: str) -> Iterator[tuple[str, str, str]]:
    """(stream, subject prefix, store URL) of this test alone; removed afterwards."""
    reason = nats_unreachable()
    if reason is not None:
        pytest.skip(reason)
    tag = uuid.uuid4().hex[:12]
    stream = f"SECPERF_F_{tag}"
    yield stream, f"secperf_f_{tag}", postgres_url

    async def drop() -> None:
        import nats

        nc = await nats.connect(NATS_URL)
        with contextlib.suppress(Exception):
            await nc.jetstream().delete_stream(stream)
        await nc.close()

    asyncio.run(drop())


async def spawn(script: Path, *args: str) -> asyncio.subprocess.Process:
    env = {**os.environ, "PYTHONPATH": SRC}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(script), *args, stdout=asyncio.subprocess.PIPE, env=env
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 30)
    assert line.strip() == b"ready", f"{script.name} did not start: {line!r}"
    return proc


async def agent_result(proc: asyncio.subprocess.Process) -> dict[str, int]:
    assert proc.stdout is not None
    out = await asyncio.wait_for(proc.stdout.read(), 90)
    assert await proc.wait() == 0
    result: dict[str, int] = json.loads(out.decode().strip().splitlines()[-1])
    return result


def stored(store_url: str, host: str) -> tuple[int, int]:
    """(distinct points, raw samples in chunks) of ``host``'s series."""
    with Store.open(store_url) as store:
        points = store.query("fault_test", {"host": host}, 0, 2**62)
        distinct = sum(int(p.timestamps.size) for p in points)
        return distinct, store.sample_count()


async def wait_stored(store_url: str, host: str, expected: int, timeout: float = 60) -> int:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        distinct, _ = await asyncio.to_thread(stored, store_url, host)
        if distinct >= expected or loop.time() > deadline:
            return distinct
        await asyncio.sleep(0.25)


async def stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 20)
        except TimeoutError:
            proc.kill()
            await proc.wait()


def test_sigkill_of_the_server_loses_nothing_and_stores_nothing_twice(
    space: tuple[str, str, str], tmp_path: Path
) -> None:
    stream, prefix, store_url = space
    server_py = tmp_path / "server.py"
    server_py.write_text(SERVER)
    agent_py = tmp_path / "agent.py"
    agent_py.write_text(AGENT)
    host = "kill-test"

    async def scenario() -> tuple[dict[str, int], int, int]:
        server = await spawn(server_py, NATS_URL, stream, prefix, store_url)
        agent = await spawn(agent_py, NATS_URL, stream, prefix, host, "150", "200", "40")
        try:
            # Kill the server once part of the data is in PostgreSQL, mid-ingest.
            await wait_stored(store_url, host, 6_000, timeout=30)
            server.kill()
            await server.wait()
            await asyncio.sleep(1.0)
            server = await spawn(server_py, NATS_URL, stream, prefix, store_url)
            result = await agent_result(agent)
            distinct = await wait_stored(store_url, host, result["published"])
        finally:
            await stop(server)
            if agent.returncode is None:
                agent.kill()
                await agent.wait()
        with Store.open(store_url) as store:
            store.compact()  # merges any re-delivered copy into the one point it repeats
        distinct_after, raw_after = await asyncio.to_thread(stored, store_url, host)
        assert distinct_after == distinct
        return result, distinct, raw_after

    result, distinct, raw = asyncio.run(scenario())
    assert result["dropped"] == 0 and result["flushed"]
    assert distinct == result["published"] == 30_000  # 0 lost
    assert raw == result["published"]  # 0 stored twice


class TcpProxy:
    """A TCP forwarder that can be stopped (every connection cut) and started again."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers.discard(writer)
        self._writers.discard(up_writer)


def test_nats_unreachable_for_10_s_the_agent_buffers_and_delivers_everything(
    space: tuple[str, str, str], tmp_path: Path
) -> None:
    stream, prefix, store_url = space
    server_py = tmp_path / "server.py"
    server_py.write_text(SERVER)
    agent_py = tmp_path / "agent.py"
    agent_py.write_text(AGENT)
    host = "outage-test"
    parts = urlsplit(NATS_URL)

    async def scenario() -> tuple[dict[str, int], int, int]:
        proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 4222)
        await proxy.start()
        server = await spawn(server_py, NATS_URL, stream, prefix, store_url)
        agent = await spawn(
            agent_py, f"nats://127.0.0.1:{proxy.port}", stream, prefix, host, "280", "100", "20"
        )
        try:
            await wait_stored(store_url, host, 1_000, timeout=30)
            await proxy.stop()
            before = (await asyncio.to_thread(stored, store_url, host))[0]
            await asyncio.sleep(10.0)
            during = (await asyncio.to_thread(stored, store_url, host))[0]
            await proxy.start()  # same port
            result = await agent_result(agent)
            distinct = await wait_stored(store_url, host, result["published"])
        finally:
            await stop(server)
            if agent.returncode is None:
                agent.kill()
                await agent.wait()
            with contextlib.suppress(Exception):
                await proxy.stop()
        # Nothing reached the store through the cut link (bar what was in flight).
        assert during - before <= 200
        return result, distinct, during

    result, distinct, during = asyncio.run(scenario())
    assert result["dropped"] == 0 and result["flushed"]
    assert during < result["published"]
    assert distinct == result["published"] == 28_000
