"""The event bus: one contract, an in-process implementation and a NATS one."""

from secperf.bus.interface import BusStats, EventBus, Handler, Subscription, SubscriberStats

__all__ = ["BusStats", "EventBus", "Handler", "SubscriberStats", "Subscription"]
