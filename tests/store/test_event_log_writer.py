"""The store writer's log entries: what others hear matches what was stored.

Real SQLite files and the real PostgreSQL (``store_url``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from secperf.bus.memory import AsyncEventBus
from secperf.events import MetricsRecorded, decode_event, now_ms
from secperf.model import Sample
from secperf.store import Store, StoreWriter
from secperf.store.event_log import payload_json


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = Store.open(store_url)
    yield opened
    opened.close()


def test_a_metric_batch_logs_only_the_samples_the_store_accepted(
    store: Store,
) -> None:
    t = now_ms() - 60_000
    future = now_ms() + 365 * 86_400_000
    rejected = (Sample("cpu_percent", {"host": "a"}, future, 1.0),)
    mixed = (
        Sample("cpu_percent", {"host": "a"}, t, 1.0),
        Sample("cpu_percent", {"host": "a"}, future, 2.0),
        Sample("cpu_percent", {"host": "a"}, t + 1, 3.0),
    )

    async def scenario() -> None:
        bus = AsyncEventBus()
        writer = StoreWriter(store, flush_interval_s=30.0)
        await writer.attach(bus)
        await bus.publish(MetricsRecorded(samples=rejected))
        await bus.close(drain=True)
        await writer.close()
        bus = AsyncEventBus()
        writer = StoreWriter(store, flush_interval_s=30.0)
        await writer.attach(bus)
        await bus.publish(MetricsRecorded(samples=mixed))
        await bus.close(drain=True)
        await writer.close()

    asyncio.run(scenario())
    logged = [decode_event(payload_json(e)) for e in store.read_event_log(0, 100)]
    batches = [e for e in logged if isinstance(e, MetricsRecorded)]
    # Nothing for the batch the store refused whole; the accepted two of the other.
    assert [b.samples for b in batches] == [(mixed[0], mixed[2])]
