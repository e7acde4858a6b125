"""Running the app under uvicorn, programmatically.

``serve`` is what ``secperf serve`` calls: it checks the bind address against
the token (any non-loopback address needs one), binds the socket itself (so
the URL is known even for port 0), runs uvicorn until Ctrl-C or SIGTERM, ends
open live streams promptly at shutdown and finally closes the bus. Given an
``[alerts]`` config it also runs the alert engine in the same event loop:
started once the app's startup has attached the store writer (so every
transition is stored), stopped before the writer closes.

With a store writer on the in-process bus, ``serve`` follows the store's event
log (``store/follower.py``): what other processes store reaches this bus, its
alert engine and its live streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

import uvicorn
from fastapi import FastAPI

from secperf.bus.interface import EventBus
from secperf.config import MIN_TOKEN_LENGTH, AlertsConfig, ServerConfig, is_loopback_host
from secperf.config.sections.siem import SiemConfig
from secperf.store import Store, StoreWriter
from secperf.store.follower import EventLogFollower, cursor_name
from secperf.store.maintenance import StoreMaintenance
from secperf.web.auth import TOKEN_ENV
from secperf.web.sse import SseHub

log = logging.getLogger(__name__)

#: Seconds open requests get to finish at shutdown before they are cancelled.
GRACEFUL_SHUTDOWN_S = 3


class UnsafeBindError(ValueError):
    """The server would be reachable beyond this machine without a token."""


class AlertEngineStartError(RuntimeError):
    """The alert engine could not start (the store or the bus refused); the server stopped."""


def check_bind(host: str, token: str | None) -> None:
    """Refuse a non-loopback bind address without a token (raises UnsafeBindError)."""
    if is_loopback_host(host):
        return
    if not token:
        raise UnsafeBindError(
            f"refusing to listen on {host!r} without a token: that address exposes secperf "
            f"beyond this machine; set {TOKEN_ENV} (at least {MIN_TOKEN_LENGTH} characters) "
            "or bind 127.0.0.1"
        )
    if len(token) < MIN_TOKEN_LENGTH:
        raise UnsafeBindError(
            f"the token must be at least {MIN_TOKEN_LENGTH} characters long to listen on {host!r}"
        )


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free port)."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted connections
    # only for sockets that say so; without it keep-alive answers wait ~40 ms
    # on Nagle's algorithm and delayed ACKs.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(2048)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def socket_url(sock: socket.socket) -> str:
    """``http://host:port`` of a bound socket."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


class SecperfServer(uvicorn.Server):
    """uvicorn's server, ending the app's live streams as soon as shutdown begins.

    Without this an open stream would hold shutdown for the whole graceful
    timeout: streams never finish on their own. ``before_shutdown`` callbacks
    run first, before the app's own shutdown (which closes the store writer).
    """

    def __init__(self, config: uvicorn.Config, hub: SseHub | None = None) -> None:
        super().__init__(config)
        self.hub = hub
        self.before_shutdown: list[Callable[[], Awaitable[None]]] = []

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Stop gracefully on SIGINT and SIGTERM alike, and do not re-raise them after.

        uvicorn re-raises a captured signal once the server is down; for SIGTERM
        that kills the process before the caller's cleanup (draining the bus,
        flushing the store writer, stopping scan workers) can run.
        """
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.hub is not None:
            self.hub.close_clients()
        for callback in self.before_shutdown:
            try:
                await callback()
            except Exception:  # shutdown must go on whatever a callback does
                log.exception("shutdown callback failed")
        await super().shutdown(sockets)


def make_server(app: FastAPI, *, log_level: str = "warning") -> SecperfServer:
    """A uvicorn server for ``app`` without version banners or proxy-header trust."""
    config = uvicorn.Config(
        app,
        log_level=log_level,
        server_header=False,
        proxy_headers=False,
        forwarded_allow_ips="",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        ws="none",
    )
    hub = getattr(app.state, "sse_hub", None)
    return SecperfServer(config, hub if isinstance(hub, SseHub) else None)


async def run_app(
    app: FastAPI,
    sockets: Sequence[socket.socket],
    *,
    log_level: str = "warning",
    on_started: Callable[[], None] | None = None,
) -> None:
    """Serve ``app`` on ``sockets`` in the running loop until the server is told to exit."""
    server = make_server(app, log_level=log_level)
    if on_started is None:
        await server.serve(sockets=list(sockets))
        return
    task = asyncio.create_task(server.serve(sockets=list(sockets)))
    while not server.started and not task.done():
        await asyncio.sleep(0.02)
    if server.started:
        on_started()
    await task


def serve(
    config: ServerConfig,
    store: Store,
    bus: EventBus,
    *,
    token: str | None = None,
    on_started: Callable[[str], None] | None = None,
    log_level: str = "warning",
    alerts: AlertsConfig | None = None,
    maintenance: StoreMaintenance | None = None,
    siem: SiemConfig | None = None,
    **app_options: Any,
) -> None:
    """Serve the API and dashboard until interrupted, then close the bus.

    ``token`` overrides the config's; ``app_options`` go to ``create_app``
    (the correlation and advice providers default to the store's; with a
    ``writer`` on an in-process bus, an event log follower). With
    ``alerts`` an ``AlertEngine`` built from it evaluates rules and notifies,
    its links pointing at the served URL. Raises UnsafeBindError for a
    non-loopback address without a token, OSError when the address cannot be
    bound, ValueError for alert rule files that do not load (or a SIEM queue
    that cannot be opened) and AlertEngineStartError when the engine cannot
    start. With ``siem`` outputs a ``SiemForwarder`` forwards security events,
    subscribed before the event log follower starts so it misses none.
    """
    from secperf.alerts.engine import AlertEngine
    from secperf.siem.forwarder import SiemForwarder
    from secperf.web.app import create_app
    from secperf.web.providers import analysis_providers

    effective = (
        token
        if token is not None
        else (config.token.get_secret_value() if config.token is not None else None)
    )
    check_bind(config.host, effective)
    sock = bind_socket(config.host, config.port)
    url = socket_url(sock)
    engine: AlertEngine | None = None
    forwarder: SiemForwarder | None = None
    try:
        writer = app_options.get("writer")
        if (
            isinstance(writer, StoreWriter)
            and app_options.get("bus_kind", "memory") == "memory"
            and "follower" not in app_options
        ):
            # Other processes' events reach this bus through the store (NATS
            # carries them itself).
            # The cursor is this server's own: named by its address, kept across restarts.
            name = cursor_name("serve", url.split("://", 1)[1])
            follower = EventLogFollower(store, bus, name=name, writer=writer)
            app_options = {**app_options, "follower": follower}
        if alerts is not None:
            engine = AlertEngine.from_config(store, bus, alerts, external_url=url)
            app_options = {**app_options, "alert_engine": engine}
        if siem is not None:
            forwarder = SiemForwarder.from_config(siem, store, bus)
            if forwarder is not None:
                app_options = {**app_options, "siem_stats": forwarder.stats}
        app_options = {**analysis_providers(store), **app_options}
        app = create_app(store, bus, config=config, token=effective, **app_options)
    except BaseException:
        if forwarder is not None:
            forwarder.close()
        sock.close()
        raise

    async def main() -> None:
        # Connect the bus before serving: an unreachable bus is a clear error,
        # not a failed application startup (the app's own start is then a no-op).
        await bus.start()
        if forwarder is not None:
            await forwarder.start()
        server = make_server(app, log_level=log_level)
        if engine is not None:
            server.before_shutdown.append(engine.stop)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            while not server.started and not task.done():
                await asyncio.sleep(0.02)
            if server.started:
                if engine is not None:
                    try:
                        await engine.start()
                    except Exception as exc:
                        server.should_exit = True
                        await task
                        raise AlertEngineStartError(
                            f"the alert engine could not start: {exc}"
                        ) from exc
                if maintenance is not None:  # rollup and retention, in its own thread
                    maintenance.start()
                if on_started is not None:
                    on_started(url)
            await task
        finally:
            if maintenance is not None:  # its join must not hold the event loop
                await asyncio.to_thread(maintenance.stop)
            if engine is not None:
                with contextlib.suppress(Exception):
                    await engine.stop()
            if forwarder is not None:  # what it queued stays on disk for the next start
                with contextlib.suppress(Exception):
                    await forwarder.stop()
            with contextlib.suppress(Exception):
                await bus.close()

    try:
        asyncio.run(main())
    finally:
        if forwarder is not None:
            forwarder.close()
        sock.close()
