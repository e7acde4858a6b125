"""The runtime: one bus with the store subscribed to it.

Commands that produce events (scan, gate, up, serve) open a ``Runtime``,
publish on its bus, and the ``StoreWriter`` persists what flows; closing the
runtime drains the bus and flushes the writer, so nothing published is lost.

The bus is the one ``[bus]`` asks for (``make_bus``): in-process by default,
NATS JetStream for a ``nats://`` URL. On NATS the store writer is a durable
consumer shared by every process that attaches it, so only the process that
owns the central store should consume: ``consume`` defaults to True on the
in-process bus and to False on NATS (``secperf serve`` passes True; a scan on
an agent host publishes and leaves storing to the server).

On the in-process bus the writer also appends what it stores to the store's
event log, which a running ``serve`` or ``up`` follows: so a scan or a gate
run here reaches their alert engine and dashboards.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from pydantic import ValidationError

from secperf.bus.factory import make_bus
from secperf.bus.interface import EventBus
from secperf.config import BusConfig, Config, StoreConfig, mask_url
from secperf.store import Store, StoreWriter
from secperf.store.event_log import EventLogRetention

if TYPE_CHECKING:
    from secperf.security.validator import ScanReport, SecurityValidator

log = logging.getLogger(__name__)


def bus_config(config: Config, bus_url: str | None) -> BusConfig:
    """``[bus]`` with its URL replaced by ``bus_url`` (validated) when one is given."""
    if bus_url is None:
        return config.bus
    try:
        return BusConfig.model_validate({**config.bus.model_dump(), "url": bus_url})
    except ValidationError:
        raise ValueError(
            f"bus URL {mask_url(bus_url)!r} is not valid: use 'memory://' or a NATS URL"
            " such as 'nats://127.0.0.1:4222'"
        ) from None


def event_log_retention(store: StoreConfig) -> EventLogRetention:
    """``[store] event_log_retention`` and ``event_log_metrics_retention`` for the store."""
    return EventLogRetention(store.event_log_retention, store.event_log_metrics_retention)


class Runtime:
    """An async context manager holding the store, the bus and the writer between them."""

    def __init__(
        self,
        config: Config,
        *,
        store_url: str | None = None,
        bus_url: str | None = None,
        consume: bool | None = None,
    ) -> None:
        self.config = config
        self.store_url = store_url or config.store.url
        self.bus_config = bus_config(config, bus_url)
        self.consume = (not self.bus_config.is_nats) if consume is None else consume
        self.store: Store | None = None
        self.bus: EventBus | None = None
        self.writer: StoreWriter | None = None

    async def __aenter__(self) -> Runtime:
        self.store = Store.open(self.store_url)
        self.store.configure_event_log(event_log_retention(self.config.store))
        try:
            bus = make_bus(self.bus_config)
            await bus.start()
            self.bus = bus
            if self.consume:
                self.writer = StoreWriter(self.store)
                await self.writer.attach(bus)
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self.bus is not None:
                await self.bus.close(drain=True)
            if self.writer is not None:
                await self.writer.close()
        finally:
            if self.store is not None:
                self.store.close()


@contextlib.contextmanager
def sigterm_cancels_task() -> Iterator[None]:
    """Within: SIGTERM cancels the current task, as Ctrl-C does under ``asyncio.run``.

    So the task's cleanup runs (an interrupted scan is recorded as such, the bus
    drains, the store writer flushes) where SIGTERM used to end the process on
    the spot. On leaving after a SIGTERM, the signal is delivered again with its
    default action: the process ends as SIGTERM ends it (status 143), as before.
    A second SIGTERM during the cleanup ends it at once. Outside the main
    thread (no signal handlers there) this does nothing.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    previous = signal.getsignal(signal.SIGTERM)
    received = False

    def on_sigterm() -> None:
        nonlocal received
        if received:
            _end_by_sigterm()
        received = True
        if task is not None:
            task.cancel()

    try:
        loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    except (NotImplementedError, RuntimeError, ValueError):
        yield
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        if received:
            _end_by_sigterm()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


async def scan_interruptibly(
    validator: SecurityValidator, root: Path, paths: Sequence[str]
) -> ScanReport:
    """``validator.scan`` in a thread; cancelling the caller interrupts the scan.

    On cancellation (Ctrl-C, SIGTERM, a server shutting down) the scan is told
    to stop and this waits until it has published its ``interrupted`` outcome,
    so that closing the bus and the store writer afterwards records it; then
    the cancellation goes on.
    """
    scan = asyncio.ensure_future(asyncio.to_thread(validator.scan, root, paths))
    try:
        return await asyncio.shield(scan)
    except asyncio.CancelledError:
        validator.interrupt()
        try:
            await scan
        except Exception:
            log.exception("the interrupted scan of %s failed", root)
        raise


def _end_by_sigterm() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.raise_signal(signal.SIGTERM)
