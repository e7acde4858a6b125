"""The NATS JetStream bus against the real server: same contract and JSON as the memory bus."""

from __future__ import annotations

import asyncio
import socket
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

import pytest

from secperf.bus.factory import make_bus
from secperf.bus.interface import BusClosedError
from secperf.bus.memory import AsyncEventBus
from secperf.config import BusConfig
from secperf.events import (
    BaselineUpdated,
    Event,
    MetricsRecorded,
    ScanStarted,
    encode_event,
)
from secperf.model import Sample
from support.services import NATS_URL, nats_unreachable

pytest.importorskip("nats", reason="nats-py is not installed")

from secperf.bus.nats import BusConnectError, NatsEventBus, durable_name


@dataclass(frozen=True)
class Space:
    """A stream and subject prefix of this test alone."""

    stream: str
    prefix: str

    def bus(self, url: str = NATS_URL, **kwargs: object) -> NatsEventBus:
        return NatsEventBus(url, stream=self.stream, subject_prefix=self.prefix, **kwargs)  # type: ignore[arg-type]


async def delete_stream(stream: str) -> None:
    import nats

    nc = await nats.connect(NATS_URL)
    try:
        await nc.jetstream().delete_stream(stream)
    except Exception:  # never created: nothing to clean
        pass
    finally:
        await nc.close()


@pytest.fixture
def space() -> Iterator[Space]:
    reason = nats_unreachable()
    if reason is not None:
        pytest.skip(reason)
    tag = uuid.uuid4().hex[:12]
    sp = Space(f"SECPERF_T_{tag}", f"secperf_t_{tag}")
    yield sp
    asyncio.run(delete_stream(sp.stream))


async def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


def collector() -> tuple[list[Event], Callable[[Event], Awaitable[None]]]:
    got: list[Event] = []

    async def handler(event: Event) -> None:
        got.append(event)

    return got, handler


def metrics(n: int, host: str = "h1") -> MetricsRecorded:
    return MetricsRecorded(
        samples=tuple(
            Sample("cpu_percent", {"host": host}, 1_700_000_000_000 + i, float(i)) for i in range(n)
        ),
        host=host,
    )


def test_events_round_trip_with_the_same_json(space: Space) -> None:
    sent: list[Event] = [
        ScanStarted(scan_id="s1", target="/repo", scanners=("bandit",), files_total=3),
        metrics(5),
        BaselineUpdated(baseline="b", fingerprints=4, added=1),
    ]

    async def scenario() -> list[Event]:
        async with (bus := space.bus()):
            got, handler = collector()
            await bus.subscribe(">", handler, name="all")
            for event in sent:
                await bus.publish(event)
            await wait_for(lambda: len(got) == len(sent))
            stats = bus.stats()
            assert stats.published == 3 and stats.delivered == 3 and stats.dropped == 0
            return got

    got = asyncio.run(scenario())
    assert got == sent
    assert [encode_event(e) for e in got] == [encode_event(e) for e in sent]


def test_wildcards_match_like_the_memory_bus(space: Space) -> None:
    async def scenario() -> dict[str, list[str]]:
        async with (bus := space.bus()):
            seen: dict[str, list[str]] = {}
            for pattern in ("security.>", "*.scan.*", "metrics.recorded", "gate.*"):

                async def handler(event: Event, pattern: str = pattern) -> None:
                    seen.setdefault(pattern, []).append(event.topic)

                await bus.subscribe(pattern, handler)
            await bus.publish(ScanStarted(scan_id="s", target="/r"))
            await bus.publish(metrics(1))
            await bus.publish(BaselineUpdated(baseline="b", fingerprints=0))
            await wait_for(lambda: sum(len(v) for v in seen.values()) == 4)
            return seen

    seen = asyncio.run(scenario())
    assert sorted(seen["security.>"]) == ["security.baseline.updated", "security.scan.started"]
    assert seen["*.scan.*"] == ["security.scan.started"]
    assert seen["metrics.recorded"] == ["metrics.recorded"]
    assert "gate.*" not in seen


def test_a_durable_subscriber_resumes_where_it_stopped(space: Space) -> None:
    async def scenario() -> tuple[list[str], list[str]]:
        first, handler = collector()
        async with (bus := space.bus()):
            await bus.subscribe("security.>", handler, name="durable.one")
            await bus.publish(ScanStarted(scan_id="a", target="/r"))
            await wait_for(lambda: len(first) == 1)
        async with (publisher := space.bus()):  # the subscriber is away
            await publisher.publish(ScanStarted(scan_id="b", target="/r"))
            await publisher.publish(ScanStarted(scan_id="c", target="/r"))
            assert await publisher.flush(10)
        second, handler2 = collector()
        async with (bus := space.bus()):
            await bus.subscribe("security.>", handler2, name="durable.one")
            await wait_for(lambda: len(second) == 2)
        return [e.scan_id for e in first], [e.scan_id for e in second]  # type: ignore[attr-defined]

    first, second = asyncio.run(scenario())
    assert first == ["a"]
    assert second == ["b", "c"]


def test_redelivered_copies_of_an_event_are_handled_once(space: Space) -> None:
    event = ScanStarted(scan_id="dup", target="/r")

    async def scenario() -> list[Event]:
        import nats

        got, handler = collector()
        async with (bus := space.bus()):
            await bus.subscribe(">", handler, name="dedupe")
            # Raw publishes without a message id: the server stores both copies.
            nc = await nats.connect(NATS_URL)
            js = nc.jetstream()
            for _ in range(2):
                await js.publish(bus.subject(event.topic), encode_event(event))
            await nc.close()
            await bus.publish(ScanStarted(scan_id="after", target="/r"))
            await wait_for(lambda: len(got) == 2)
            return got

    got = asyncio.run(scenario())
    assert [e.scan_id for e in got] == ["dup", "after"]  # type: ignore[attr-defined]


def test_a_failed_commit_delivers_the_batch_again(space: Space) -> None:
    async def scenario() -> tuple[list[str], int]:
        got, handler = collector()
        commits = 0

        async def commit() -> None:
            nonlocal commits
            commits += 1
            if commits == 1:
                raise RuntimeError("database away")

        async with (bus := space.bus()):
            await bus.publish(ScanStarted(scan_id="x", target="/r"))
            assert await bus.flush(10)
            await bus.subscribe_durable(">", handler, name="committer", commit=commit)
            await wait_for(lambda: commits >= 2)
        return [e.scan_id for e in got], commits  # type: ignore[attr-defined]

    ids, commits = asyncio.run(scenario())
    assert ids == ["x", "x"]  # seen again after the failed commit, acknowledged once
    assert commits >= 2


def test_publish_threadsafe_from_another_thread(space: Space) -> None:
    async def scenario() -> list[Event]:
        got, handler = collector()
        async with (bus := space.bus()):
            await bus.subscribe(">", handler, name="threads")

            def work() -> None:
                bus.publish_threadsafe(ScanStarted(scan_id="t", target="/r"), timeout=10)
                bus.publish_threadsafe(metrics(2))

            thread = threading.Thread(target=work)
            thread.start()
            await asyncio.to_thread(thread.join)
            await wait_for(lambda: len(got) == 2)
            with pytest.raises(RuntimeError, match="own thread"):
                bus.publish_threadsafe(ScanStarted(scan_id="t2", target="/r"))
        with pytest.raises(BusClosedError):
            await bus.publish(ScanStarted(scan_id="late", target="/r"))
        return got

    got = asyncio.run(scenario())
    assert {type(e).__name__ for e in got} == {"ScanStarted", "MetricsRecorded"}


def test_bad_settings_and_unreachable_servers_are_named(space: Space) -> None:
    with pytest.raises(ValueError, match="stream"):
        NatsEventBus(NATS_URL, stream="a.b")
    with pytest.raises(ValueError, match="outbox_size"):
        NatsEventBus(NATS_URL, outbox_size=0)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens once closed

    async def unreachable() -> None:
        bus = space.bus(f"nats://127.0.0.1:{port}", connect_timeout_s=1.0)
        await bus.start()

    with pytest.raises(BusConnectError, match=f"127.0.0.1:{port}"):
        asyncio.run(unreachable())

    async def bad_pattern() -> None:
        async with (bus := space.bus()):
            with pytest.raises(ValueError, match="'>' must be the last"):
                await bus.subscribe("a.>.b", collector()[1])

    asyncio.run(bad_pattern())


def test_durable_names_are_valid_consumer_names() -> None:
    assert durable_name("store-writer") == "store-writer"
    assert durable_name("Class.method#3") == "Class_method_3"
    assert durable_name("a b*c>") == "a_b_c_"


def test_make_bus_picks_the_engine_from_the_url() -> None:
    assert isinstance(make_bus(BusConfig()), AsyncEventBus)
    bus = make_bus(BusConfig(url="nats://127.0.0.1:4222", stream="S1", subject_prefix="p1"))
    assert isinstance(bus, NatsEventBus)
    assert (bus.stream, bus.prefix, bus.subject("security.violation")) == (
        "S1",
        "p1",
        "p1.security.violation",
    )


def test_runtime_on_nats_and_postgresql_stores_what_is_published(
    space: Space, postgres_url: str
) -> None:
    from secperf.config import Config
    from secperf.runtime import Runtime

    config = Config.model_validate(
        {"bus": {"stream": space.stream, "subject_prefix": space.prefix}}
    )

    async def scenario() -> None:
        async with Runtime(config, store_url=postgres_url, bus_url=NATS_URL, consume=True) as rt:
            assert isinstance(rt.bus, NatsEventBus) and rt.store is not None
            assert rt.store.dialect == "postgresql"
            await rt.bus.publish(ScanStarted(scan_id="rt-1", target="/repo"))
            await rt.bus.publish(metrics(3, host="h9"))
            store = rt.store
            await wait_for(
                lambda: store.scan("rt-1") is not None and bool(store.latest("cpu_percent"))
            )
        # A scan on an agent host publishes without consuming the server's durable stream.
        async with Runtime(config, store_url=postgres_url, bus_url=NATS_URL) as rt:
            assert rt.writer is None

    asyncio.run(scenario())
    with pytest.raises(ValueError, match="bus URL"):
        Runtime(config, bus_url="http://x")
