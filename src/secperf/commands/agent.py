"""``secperf agent``: run the agent on this host until SIGINT/SIGTERM (or a duration)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass
from pathlib import Path

from secperf.agent import Agent, AgentStats
from secperf.bus.factory import make_bus
from secperf.bus.interface import EventBus
from secperf.config import LoadedConfig
from secperf.runtime import bus_config

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AgentOptions:
    """What the command line may override of ``[bus]`` and ``[agent]``."""

    bus_url: str | None = None
    host: str | None = None
    scan_root: Path | None = None
    scan: bool = True
    scan_interval_s: float | None = None
    duration_s: float | None = None


@dataclass(frozen=True, slots=True)
class AgentRun:
    """What one agent run did."""

    host: str
    bus_url: str
    stats: AgentStats
    published: int
    dropped: int


def resolve_options(loaded: LoadedConfig, options: AgentOptions) -> tuple[str, str, float | None]:
    """The bus URL, host label and scan interval (None: no scans); ValueError when unusable."""
    bus = bus_config(loaded.config, options.bus_url)
    if not bus.is_nats:
        raise ValueError(
            "secperf agent publishes to a central server: give --bus nats://HOST:4222"
            " or set [bus] url in the config"
        )
    host = options.host or loaded.config.agent.host_label
    if not host.strip():
        raise ValueError("--host must not be empty")
    interval: float | None = None
    if options.scan:
        ms = loaded.config.agent.scan_interval
        interval = options.scan_interval_s if options.scan_interval_s is not None else ms / 1000
        if interval <= 0:
            interval = None  # scan_interval = "0" switches scheduled scans off
    return bus.url, host, interval


async def run_agent(loaded: LoadedConfig, options: AgentOptions) -> AgentRun:
    """Run until a signal (or ``duration_s``), then stop collecting and flush the bus."""
    url, host, interval = resolve_options(loaded, options)
    bus: EventBus = make_bus(bus_config(loaded.config, url))
    await bus.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    if options.duration_s is not None:
        loop.call_later(options.duration_s, stop.set)
    agent = Agent(
        loaded,
        bus,
        host=host,
        scan_root=(options.scan_root or loaded.root) if interval is not None else None,
        scan_interval_s=interval,
    )
    try:
        await agent.run(stop)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
        # What is still buffered (the server was away) gets a bounded chance to go out.
        await bus.close(drain=True, timeout=30.0)
    stats = bus.stats()
    return AgentRun(host, url, agent.stats, stats.published, stats.dropped)
