"""The embedded runtime: one bus with the store subscribed to it.

Commands that produce events (scan, gate, up, serve) open a ``Runtime``,
publish on its bus, and the ``StoreWriter`` persists what flows; closing the
runtime drains the bus and flushes the writer, so nothing published is lost.
"""

from __future__ import annotations

from types import TracebackType

from secperf.bus.interface import EventBus
from secperf.bus.memory import AsyncEventBus
from secperf.config import Config
from secperf.store import Store, StoreWriter


class Runtime:
    """An async context manager holding the store, the bus and the writer between them."""

    def __init__(self, config: Config, *, store_url: str | None = None) -> None:
        self.config = config
        self.store_url = store_url or config.store.url
        self.store: Store | None = None
        self.bus: EventBus | None = None
        self.writer: StoreWriter | None = None

    async def __aenter__(self) -> Runtime:
        self.store = Store.open(self.store_url)
        bus = AsyncEventBus(default_maxsize=self.config.bus.queue_size)
        await bus.start()
        self.bus = bus
        self.writer = StoreWriter(self.store)
        await self.writer.attach(bus)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.bus is not None:
            await self.bus.close(drain=True)
        if self.writer is not None:
            await self.writer.close()
        if self.store is not None:
            self.store.close()
