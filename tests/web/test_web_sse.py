"""The live stream over a real uvicorn server, and the hub's flow control."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from secperf.bus import AsyncEventBus
from secperf.config import ServerConfig
from secperf.events import Event, MetricsRecorded, ScanStarted, event_from_dict
from secperf.model import Sample
from secperf.store import Store
from secperf.web import create_app
from secperf.web.sse import SseHub
from support.prometheus import RunningApp, running_app

TOKEN = "stream-token-0123456789"


class Frames:
    """Reads SSE frames (id, event, data) and comments from a streaming response."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.iter_lines()
        self.comments: list[str] = []

    def next_event(self) -> dict[str, Any]:
        frame: dict[str, Any] = {}
        for line in self.lines:
            if line == "":
                if "data" in frame:
                    return frame
                continue
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
                continue
            key, _, value = line.partition(": ")
            frame[key] = value
        raise AssertionError("the stream ended")

    def next_comment(self, text: str) -> None:
        for line in self.lines:
            if line.startswith(":") and line[1:].strip() == text:
                return
        raise AssertionError(f"the stream ended before the comment {text!r}")


@pytest.fixture()
def served(tmp_path: Path) -> Iterator[tuple[RunningApp, AsyncEventBus]]:
    store = Store.open(tmp_path / "s.db")
    bus = AsyncEventBus()
    app = create_app(store, bus, heartbeat_s=0.3, stream_metrics_per_second=1000)
    with running_app(app) as server:
        yield server, bus
    store.close()


def _publish(server: RunningApp, bus: AsyncEventBus, event: Event) -> None:
    server.call(bus.publish(event))


def _scan(n: int) -> ScanStarted:
    return ScanStarted(scan_id=f"scan-{n}", target="repo")


def _open(client: httpx.Client, url: str, **kw: Any) -> Any:
    return client.stream("GET", url, timeout=httpx.Timeout(10.0), **kw)


def _wait_for_clients(server: RunningApp, count: int) -> None:
    # The stream registers when its response starts; wait until it has.
    deadline = time.monotonic() + 10
    with httpx.Client() as client:
        while time.monotonic() < deadline:
            text = client.get(f"{server.url}/metrics").text
            if f"secperf_stream_clients {float(count)}" in text:
                return
            time.sleep(0.02)
    raise AssertionError(f"{count} stream client(s) never connected")


def test_events_arrive_with_id_type_and_json(served: tuple[RunningApp, AsyncEventBus]) -> None:
    server, bus = served
    with httpx.Client() as client, _open(client, f"{server.url}/api/v1/stream") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "server" not in response.headers
        frames = Frames(response)
        frames.next_comment("connected")
        sent = _scan(1)
        _publish(server, bus, sent)
        frame = frames.next_event()
        assert frame["id"] == sent.id
        assert frame["event"] == "ScanStarted"
        assert event_from_dict(json.loads(frame["data"])) == sent


def test_reconnect_with_last_event_id_replays_what_was_missed(
    served: tuple[RunningApp, AsyncEventBus],
) -> None:
    server, bus = served
    events = [_scan(n) for n in range(6)]
    with httpx.Client() as client:
        with _open(client, f"{server.url}/api/v1/stream") as response:
            frames = Frames(response)
            frames.next_comment("connected")
            for event in events[:2]:
                _publish(server, bus, event)
            seen = [frames.next_event()["id"] for _ in range(2)]
        assert seen == [e.id for e in events[:2]]
        # Disconnected: these happen while nobody listens.
        for event in events[2:]:
            _publish(server, bus, event)
        headers = {"Last-Event-ID": seen[-1]}
        with _open(client, f"{server.url}/api/v1/stream", headers=headers) as response:
            frames = Frames(response)
            replayed = [frames.next_event()["id"] for _ in range(4)]
            assert replayed == [e.id for e in events[2:]]
            later = _scan(99)
            _publish(server, bus, later)
            assert frames.next_event()["id"] == later.id


def test_topic_filter_and_heartbeat(served: tuple[RunningApp, AsyncEventBus]) -> None:
    server, bus = served
    url = f"{server.url}/api/v1/stream?topics=security.>"
    with httpx.Client() as client, _open(client, url) as response:
        frames = Frames(response)
        frames.next_comment("connected")
        _wait_for_clients(server, 1)
        metrics = MetricsRecorded(samples=(Sample("cpu_percent", {}, 1, 1.0),))
        _publish(server, bus, metrics)
        scan = _scan(7)
        _publish(server, bus, scan)
        frame = frames.next_event()
        assert frame["event"] == "ScanStarted"
        assert frame["id"] == scan.id
        frames.next_comment("ping")  # heartbeat_s=0.3 in this app


def test_a_bad_topic_pattern_is_a_422(served: tuple[RunningApp, AsyncEventBus]) -> None:
    server, _ = served
    response = httpx.get(f"{server.url}/api/v1/stream?topics=security.>.x", timeout=10)
    assert response.status_code == 422
    assert response.json()["error"]["where"] == "query.topics"


def test_stream_takes_the_token_as_a_query_parameter(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.db")
    # Bound beyond loopback with a token: reads need it, and EventSource sends it as ?token=.
    config = ServerConfig(host="0.0.0.0", token=TOKEN)
    app = create_app(store, AsyncEventBus(), config=config)
    with running_app(app) as server, httpx.Client() as client:
        assert client.get(f"{server.url}/api/v1/stream").status_code == 401
        bad = client.get(f"{server.url}/api/v1/stream?token=wrong-token-0000000")
        assert bad.status_code == 403
        assert TOKEN not in bad.text
        with _open(client, f"{server.url}/api/v1/stream?token={TOKEN}") as response:
            assert response.status_code == 200
            Frames(response).next_comment("connected")
    store.close()


# --------------------------------------------------------------------------- the hub itself


def test_a_slow_client_is_disconnected_without_slowing_the_bus() -> None:
    async def scenario() -> tuple[list[str], int, int]:
        bus = AsyncEventBus()
        hub = SseHub(bus, client_queue=10, metrics_per_second=0)
        await hub.start()
        stream = hub.stream((">",), None)
        first = await anext(stream)
        assert first.startswith("retry:")
        # The client reads nothing while 50 events go by; publishing never waits on it.
        for n in range(50):
            await asyncio.wait_for(bus.publish(_scan(n)), timeout=1)
        await asyncio.sleep(0.05)  # let the bus deliver to the hub
        rest = [chunk async for chunk in stream]
        clients = hub.clients
        await hub.stop()
        await bus.close()
        return rest, hub.slow_disconnects, clients

    rest, slow, clients = asyncio.run(scenario())
    assert rest == []  # the stream ended at once: the browser reconnects and replays
    assert slow == 1
    assert clients == 0


def test_metric_batches_are_thinned_per_client_but_other_events_are_not() -> None:
    async def scenario() -> str:
        bus = AsyncEventBus()
        hub = SseHub(bus, metrics_per_second=3)
        await hub.start()
        stream = hub.stream((">",), None)
        await anext(stream)
        for n in range(20):
            await bus.publish(MetricsRecorded(samples=(Sample("m", {}, n, 1.0),)))
            await bus.publish(_scan(n))
        await asyncio.sleep(0.05)
        chunk = await anext(stream)
        await hub.stop()
        await bus.close()
        return chunk

    chunk = asyncio.run(scenario())
    assert chunk.count("event: ScanStarted") == 20
    assert 1 <= chunk.count("event: MetricsRecorded") <= 4


def test_replay_after_an_id_that_left_the_buffer_sends_newer_events() -> None:
    async def scenario() -> tuple[list[str], list[str]]:
        bus = AsyncEventBus()
        hub = SseHub(bus, buffer_size=5)
        events = [_scan(n) for n in range(12)]
        for event in events:
            hub.publish_local(event)
        stream = hub.stream((">",), events[2].id)  # evicted long ago
        await anext(stream)
        replay = await anext(stream)
        await stream.aclose()
        ids = [line[4:] for line in replay.splitlines() if line.startswith("id: ")]
        return ids, [e.id for e in events[-5:]]

    ids, expected = asyncio.run(scenario())
    assert ids == expected


def test_metric_batches_go_live_but_are_not_kept_for_replay() -> None:
    async def scenario() -> tuple[str, str]:
        bus = AsyncEventBus()
        hub = SseHub(bus, metrics_per_second=100)
        live = hub.stream((">",), None)
        await anext(live)
        first = _scan(1)
        hub.publish_local(first)
        hub.publish_local(MetricsRecorded(samples=(Sample("m", {}, 1, 1.0),)))
        hub.publish_local(_scan(2))
        live_chunk = await anext(live)
        await live.aclose()
        again = hub.stream((">",), first.id)
        await anext(again)
        replay = await anext(again)
        await again.aclose()
        return live_chunk, replay

    live_chunk, replay = asyncio.run(scenario())
    assert live_chunk.count("event: ") == 3
    assert "event: MetricsRecorded" in live_chunk
    assert replay.count("event: ") == 1
    assert "scan-2" in replay
