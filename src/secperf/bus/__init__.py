"""The event bus: one contract, an in-process implementation and a NATS one."""

from secperf.bus.interface import (
    BusClosedError,
    BusStats,
    EventBus,
    Handler,
    SubscriberStats,
    Subscription,
)
from secperf.bus.memory import AsyncEventBus

__all__ = [
    "AsyncEventBus",
    "BusClosedError",
    "BusStats",
    "EventBus",
    "Handler",
    "SubscriberStats",
    "Subscription",
]
