"""Choose the bus a configuration asks for: in-process (``memory://``) or NATS JetStream."""

from __future__ import annotations

from secperf.bus.interface import EventBus
from secperf.bus.memory import AsyncEventBus
from secperf.config import BusConfig


def make_bus(config: BusConfig) -> EventBus:
    """A new, not yet started bus for ``config`` (``[bus]``)."""
    if not config.is_nats:
        return AsyncEventBus(default_maxsize=config.queue_size)
    # Imported here so that the in-process default does not need nats-py.
    from secperf.bus.nats import NatsEventBus

    return NatsEventBus(
        config.url,
        stream=config.stream,
        subject_prefix=config.subject_prefix,
        outbox_size=config.queue_size,
    )
