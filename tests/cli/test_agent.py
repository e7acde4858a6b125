"""The agent: collectors and scans published with its host, and ``secperf agent`` end to end."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from secperf.agent import Agent, HostBus, stamp_host
from secperf.bus.memory import AsyncEventBus
from secperf.config import load_config
from secperf.events import Event, MetricsRecorded, ScanCompleted, ScanStarted
from secperf.model import Sample
from secperf.perf.collectors.interface import Collector
from support.cli import run_cli
from support.services import NATS_URL, nats_unreachable


class Counter(Collector):
    """A collector whose samples are known in advance."""

    def __init__(self, host: str) -> None:
        super().__init__("counter", 0.05, host)
        self.n = 0

    def collect(self, now_ms: int) -> list[Sample]:
        self.n += 1
        return [Sample("agent_test", {"host": self.host, "k": str(self.n)}, now_ms, 1.0)]


def test_stamp_host_sets_the_event_host_and_every_sample_label() -> None:
    event = MetricsRecorded(
        samples=(Sample("m", {"host": "other"}, 1, 1.0), Sample("m", {}, 2, 2.0)), host="x"
    )
    stamped = stamp_host(event, "web-1")
    assert isinstance(stamped, MetricsRecorded)
    assert stamped.host == "web-1" and stamped.id == event.id
    assert [s.labels["host"] for s in stamped.samples] == ["web-1", "web-1"]
    scan = ScanStarted(scan_id="s", target="/r", host="x")
    assert stamp_host(scan, "web-1").host == "web-1"
    same = ScanStarted(scan_id="s", target="/r", host="web-1")
    assert stamp_host(same, "web-1") is same
    with pytest.raises(ValueError, match="host label"):
        HostBus(AsyncEventBus(), "")


def test_agent_publishes_collections_and_a_scan_with_its_host(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "app.py").write_text("import subprocess\nsubprocess.call('ls', shell=True)\n")
    (project / "secperf.toml").write_text('[scan]\nscanners = ["bandit"]\n')
    loaded = load_config(None, project)

    async def scenario() -> list[Event]:
        got: list[Event] = []

        async def handler(event: Event) -> None:
            got.append(event)

        bus = AsyncEventBus()
        await bus.subscribe(">", handler)
        stop = asyncio.Event()
        agent = Agent(
            loaded,
            bus,
            host="web-7",
            collectors=[Counter("ignored-host")],
            scan_root=project,
            scan_interval_s=3600,
        )
        task = asyncio.create_task(agent.run(stop))
        deadline = asyncio.get_running_loop().time() + 60
        while not any(isinstance(e, ScanCompleted) for e in got) or not any(
            isinstance(e, MetricsRecorded) for e in got
        ):
            assert asyncio.get_running_loop().time() < deadline, "agent published nothing"
            await asyncio.sleep(0.05)
        stop.set()
        await task
        await bus.close()
        assert agent.stats.scans_started == 1 and agent.stats.scans_failed == 0
        return got

    got = asyncio.run(scenario())
    assert {e.host for e in got} == {"web-7"}
    samples = [s for e in got if isinstance(e, MetricsRecorded) for s in e.samples]
    assert samples and {s.labels["host"] for s in samples} == {"web-7"}
    completed = [e for e in got if isinstance(e, ScanCompleted)]
    assert completed[0].metrics.violations_found >= 1


def test_agent_refuses_an_in_process_bus(tmp_path: Path) -> None:
    result = run_cli(["--project-dir", str(tmp_path), "agent", "--duration", "1s"], cwd=tmp_path)
    assert result.returncode == 2
    assert "--bus nats://" in result.stderr


@pytest.fixture
def nats_space() -> Iterator[tuple[str, str]]:
    reason = nats_unreachable()
    if reason is not None:
        pytest.skip(reason)
    pytest.importorskip("nats", reason="nats-py is not installed")
    tag = uuid.uuid4().hex[:12]
    stream = f"SECPERF_A_{tag}"
    yield stream, f"secperf_a_{tag}"

    async def drop() -> None:
        import nats

        nc = await nats.connect(NATS_URL)
        with contextlib.suppress(Exception):
            await nc.jetstream().delete_stream(stream)
        await nc.close()

    asyncio.run(drop())


@pytest.mark.slow
def test_secperf_agent_command_publishes_host_labelled_metrics_to_nats(
    nats_space: tuple[str, str], tmp_path: Path
) -> None:
    stream, prefix = nats_space
    (tmp_path / "secperf.toml").write_text(
        f'[bus]\nstream = "{stream}"\nsubject_prefix = "{prefix}"\n'
        '[monitor]\ninterval = "200ms"\n[monitor.process]\nenabled = false\n'
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "secperf",
            "--project-dir",
            str(tmp_path),
            "agent",
            "--bus",
            NATS_URL,
            "--host",
            "db-3",
            "--no-scan",
            "--duration",
            "1500ms",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "agent db-3 stopped" in result.stderr

    async def read_back() -> list[Event]:
        from secperf.bus.nats import NatsEventBus

        got: list[Event] = []

        async def handler(event: Event) -> None:
            got.append(event)

        async with NatsEventBus(NATS_URL, stream=stream, subject_prefix=prefix) as bus:
            assert isinstance(bus, NatsEventBus)
            await bus.subscribe_durable(">", handler, name="reader")
            deadline = asyncio.get_running_loop().time() + 20
            while not got and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)
        return got

    got = asyncio.run(read_back())
    batches = [e for e in got if isinstance(e, MetricsRecorded)]
    assert batches, "nothing reached NATS"
    assert {e.host for e in batches} == {"db-3"}
    assert {s.labels["host"] for e in batches for s in e.samples} == {"db-3"}
    assert any(s.name == "cpu_percent" for e in batches for s in e.samples)
