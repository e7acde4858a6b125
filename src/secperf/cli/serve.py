"""``secperf serve``: the API and dashboard, consuming the bus into the store."""

from __future__ import annotations

from typing import Annotated

import typer

from secperf.cli.common import console, fail, load_or_exit
from secperf.cli.root import store_failure


def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option("--host", help="Address to listen on (default: server.host).")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option("--port", min=0, max=65535, help="Port (default: server.port; 0: any)."),
    ] = None,
    store_url: Annotated[
        str | None, typer.Option("--store", help="Store path or URL (default: store.url).")
    ] = None,
    bus_url: Annotated[
        str | None, typer.Option("--bus", help="Bus URL (default: bus.url; memory://).")
    ] = None,
) -> None:
    """Serve the API and dashboard (consumes the bus, stores, alerts)."""
    # FastAPI, the store and the bus load only when the server runs.
    from pydantic import ValidationError

    from secperf.bus.factory import make_bus
    from secperf.config import BusConfig, ServerConfig, mask_url
    from secperf.model import ExitCode
    from secperf.runtime import event_log_retention
    from secperf.store import Store, StoreWriter
    from secperf.store.maintenance import StoreMaintenance
    from secperf.web import UnsafeBindError, check_bind
    from secperf.web import serve as run_server
    from secperf.web.routes_report import ReportSettings
    from secperf.web.server import AlertEngineStartError

    loaded = load_or_exit(ctx)
    cfg = loaded.config
    overrides: dict[str, object] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    try:
        server_cfg = ServerConfig.model_validate({**cfg.server.model_dump(), **overrides})
    except ValidationError:
        fail(f"--host {host!r} is not an IP address or a host name")
    token = server_cfg.token.get_secret_value() if server_cfg.token is not None else None
    try:
        check_bind(server_cfg.host, token)
    except UnsafeBindError as exc:
        fail(str(exc))
    bus_cfg = cfg.bus
    if bus_url is not None:
        try:
            bus_cfg = BusConfig.model_validate({**cfg.bus.model_dump(), "url": bus_url})
        except ValidationError:
            fail(f"--bus {mask_url(bus_url)}: expected memory:// or nats://host:port")
    target = store_url or cfg.store.url
    try:
        store = Store.open(target)
    except Exception as exc:  # any failure to open is a configuration problem here
        failure = store_failure(exc)
        fail(failure[0] if failure else f"cannot open the store {mask_url(str(target))}: {exc}")
    store.configure_event_log(event_log_retention(cfg.store))
    bus = make_bus(bus_cfg)
    writer = StoreWriter(store)
    writes = (
        f"writes need the token from {loaded.token_source}"
        if token and loaded.token_source
        else "writes need the token"
        if token
        else "no token: writes are disabled (set SECPERF_TOKEN)"
    )

    def started(url: str) -> None:
        console().print(
            f"secperf serving on {url} ({writes}); Ctrl-C stops", markup=False, soft_wrap=True
        )

    try:
        run_server(
            server_cfg,
            store,
            bus,
            token=token,
            on_started=started,
            writer=writer,
            manage_writer=True,
            bus_kind="nats" if bus_cfg.is_nats else "memory",
            alerts=cfg.alerts,
            maintenance=StoreMaintenance.from_config(store, cfg.store),
            siem=cfg.siem,
            # The API report applies [report] (scanner versions are read on first use).
            report_settings=ReportSettings.from_config(cfg),
        )
    except KeyboardInterrupt:
        pass
    except ConnectionError as exc:  # the bus (NATS) cannot be reached
        fail(f"cannot start: {exc}")
    except OSError as exc:
        fail(f"cannot listen on {server_cfg.bind}: {exc.strerror or exc}")
    except ValueError as exc:  # alert rule files that do not load, a SIEM queue that cannot open
        fail(str(exc))
    except AlertEngineStartError as exc:
        fail(str(exc), ExitCode.CANNOT_EVALUATE)
    finally:
        store.close()
