"""``create_app``: the secperf HTTP server as one FastAPI application.

The app serves the REST API under ``/api/v1`` (OpenAPI at ``/openapi.json``),
the live stream, ``/metrics`` for Prometheus, ``/healthz`` and the dashboard's
static build. Its own security: a request body limit enforced before any
parsing (413), bearer tokens on writes (see ``auth.py``), no CORS (the
dashboard is served from the same origin), strict security headers on every
answer, and no version banner in any header.

Under load the API sheds what it cannot take (see ``admission.py``): a bounded
number of requests work at once, a few wait briefly, the rest get 503 with
``Retry-After`` at once. ``/healthz`` answers from memory and ``/metrics``
scrapes share one rendering, so neither waits behind the API.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from secperf import __version__
from secperf.bus.interface import EventBus
from secperf.config import ServerConfig
from secperf.store import Store, StoreWriter
from secperf.store.follower import EventLogFollower
from secperf.web import (
    routes_alerts,
    routes_analysis,
    routes_fleet,
    routes_ingest,
    routes_integrations,
    routes_metrics,
    routes_otlp,
    routes_overview,
    routes_report,
    routes_schedule,
    routes_security,
    routes_stream,
)
from secperf.web.admission import (
    DEFAULT_QUEUE,
    DEFAULT_WAIT_S,
    POOL_TIMEOUT_S,
    RETRY_AFTER_S,
    UNLIMITED_PATHS,
    AdmissionLimiter,
    AdmissionMiddleware,
    ShedCounter,
    SingleFlight,
    StoreHealth,
    default_limit,
    set_pool_timeout,
)
from secperf.web.auth import TokenPolicy, require_read
from secperf.web.context import AdviceProvider, AlertEngine, AppContext, CorrelationsProvider
from secperf.web.errors import error_body, install_error_handlers
from secperf.web.exposition import CONTENT_TYPE, build_registry, render
from secperf.web.routes_integrations import SiemStatsProvider
from secperf.web.routes_report import ReportSettings
from secperf.web.serving import HeadMiddleware, ServerTimeMiddleware, mount_dashboard
from secperf.web.sse import SseHub

STATIC_DIR = Path(__file__).resolve().parent / "static"

#: Suits a static Svelte build served from this origin; nothing from elsewhere.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "style-src 'self' 'unsafe-inline'; script-src 'self'; object-src 'none'; "
    "base-uri 'self'; frame-ancestors 'none'; form-action 'self'"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
)
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class SecurityHeadersMiddleware:
    """Adds the security headers to every HTTP answer and drops any server banner."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_api = str(scope.get("path", "")).startswith("/api/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"server"]
                present = {k.lower() for k, _ in headers}
                headers.extend(h for h in SECURITY_HEADERS if h[0] not in present)
                if is_api and b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimitMiddleware:
    """Refuses request bodies over ``max_bytes`` with 413 before anything parses them.

    A declared ``Content-Length`` over the limit is refused at once; a body
    without one (chunked) is counted as it arrives and cut at the limit.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        declared = None
        for key, value in scope.get("headers", []):
            if key.lower() == b"content-length":
                declared = value
                break
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                await _send_json(send, 400, "bad_request", "Content-Length is not a number")
                return
            if size > limit:
                await _send_json(send, 413, "too_large", _too_large(limit))
                return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # An HTTPException passes FastAPI's body parsing unchanged.
                    raise StarletteHTTPException(413, _too_large(limit))
            return message

        await self.app(scope, counting_receive, send)


def _too_large(limit: int) -> str:
    return f"the request body is larger than the server's limit of {limit} bytes"


async def _send_json(send: Send, status: int, code: str, message: str) -> None:
    response = JSONResponse(error_body(code, message), status_code=status)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": response.raw_headers,
        }
    )
    await send({"type": "http.response.body", "body": response.body})


def create_app(
    store: Store,
    bus: EventBus,
    *,
    config: ServerConfig | None = None,
    token: str | None = None,
    writer: StoreWriter | None = None,
    manage_writer: bool = False,
    follower: EventLogFollower | None = None,
    alert_engine: AlertEngine | None = None,
    correlations: CorrelationsProvider | None = None,
    advice: AdviceProvider | None = None,
    static_dir: Path | None = None,
    bus_kind: str = "memory",
    heartbeat_s: float = 15.0,
    stream_metrics_per_second: float = 10.0,
    stream_buffer: int = 10_000,
    stream_client_queue: int = 5_000,
    max_active_requests: int | None = None,
    max_waiting_requests: int | None = None,
    admission_wait_s: float = DEFAULT_WAIT_S,
    pool_timeout_s: float | None = POOL_TIMEOUT_S,
    health_interval_s: float = 5.0,
    report_settings: ReportSettings | None = None,
    siem_stats: SiemStatsProvider | None = None,
) -> FastAPI:
    """Build the app over ``store`` and ``bus``.

    ``token`` overrides the config's token (``secperf up`` may generate one per
    run). ``writer`` feeds the exposition's counters; with ``manage_writer``
    the app also attaches it to the bus at startup and closes it at shutdown.
    The bus is started at startup but never closed here: its owner closes it.
    ``follower`` (the store's event log onto ``bus``) starts at startup, after
    the writer is attached, and stops at shutdown, before the writer closes;
    its counters go to ``/metrics``. ``siem_stats`` (the SIEM forwarder's
    ``stats``) feeds ``/metrics`` and ``GET /api/v1/integrations``.

    Load shedding: at most ``max_active_requests`` API requests work at once
    (default: one per CPU, 2 to 8, within the store pool's capacity less a
    reserve for the writer, the alert engine, /metrics and the health check);
    others wait up to ``admission_wait_s`` for a slot, as many as can be
    served in that time and at most ``max_waiting_requests`` (default 256);
    the rest get 503 at once. ``pool_timeout_s`` caps how long any checkout
    from the store's pool waits (None: leave the pool as it is). The store is
    checked every ``health_interval_s`` for ``/healthz``.
    """
    server = config or ServerConfig()
    if token is None and server.token is not None:
        token = server.token.get_secret_value()
    policy = TokenPolicy(
        token=token or None, reads_require_token=bool(token) and not server.is_loopback
    )
    context = AppContext(
        store=store,
        bus=bus,
        bus_kind=bus_kind,
        writer=writer,
        alert_engine=alert_engine,
        correlations=correlations,
        advice=advice,
    )
    hub = SseHub(
        bus,
        buffer_size=stream_buffer,
        client_queue=stream_client_queue,
        heartbeat_s=heartbeat_s,
        metrics_per_second=stream_metrics_per_second,
    )
    if pool_timeout_s is not None:
        set_pool_timeout(store.engine, pool_timeout_s)
    active_limit = max_active_requests or default_limit(store.engine)
    limiter = AdmissionLimiter(
        active_limit,
        DEFAULT_QUEUE if max_waiting_requests is None else max_waiting_requests,
        admission_wait_s,
    )
    shed = ShedCounter()
    health = StoreHealth(store.engine, interval_s=health_interval_s)
    evaluations = getattr(alert_engine, "evaluations", None)
    registry = build_registry(
        store,
        bus,
        writer,
        stream_clients=lambda: hub.clients,
        shed_counts=shed.counts,
        admission=lambda: (limiter.active, limiter.waiting),
        alert_evaluations=(
            (lambda: int(getattr(alert_engine, "evaluations", 0)))
            if isinstance(evaluations, int)
            else None
        ),
        follower=follower.stats if follower is not None else None,
        siem=siem_stats,
    )
    render_metrics = SingleFlight(lambda: render(registry))
    static_root = (static_dir or STATIC_DIR).resolve()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await bus.start()
        if writer is not None and manage_writer:
            await writer.attach(bus)
        await hub.start()
        if follower is not None:
            await follower.start()
        health.start()
        try:
            yield
        finally:
            health.stop()
            if follower is not None:
                await follower.stop()
            await hub.stop()
            if writer is not None and manage_writer:
                await writer.close()

    app = FastAPI(
        title="secperf",
        version=__version__,
        summary="Security validation and performance monitoring: one API.",
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        lifespan=lifespan,
    )
    app.state.context = context
    app.state.token_policy = policy
    app.state.server_config = server
    app.state.sse_hub = hub
    app.state.registry = registry
    app.state.shed_counter = shed
    app.state.retry_after_s = RETRY_AFTER_S
    app.state.admission = limiter
    app.state.store_health = health
    # The compliance report's policy, objectives and evidence (defaults when not given).
    app.state.report_settings = report_settings or ReportSettings()
    # The SIEM forwarder's numbers (GET /api/v1/integrations); None without outputs.
    app.state.siem_stats = siem_stats
    install_error_handlers(app)
    # Added innermost first: headers wrap everything, including the 413 and 503 answers.
    app.add_middleware(AdmissionMiddleware, limiter=limiter, counter=shed)
    app.add_middleware(BodyLimitMiddleware, max_bytes=server.max_request_bytes)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(ServerTimeMiddleware)
    app.add_middleware(HeadMiddleware)

    for module in (
        routes_overview,
        routes_metrics,
        routes_security,
        routes_alerts,
        routes_analysis,
        routes_ingest,
        routes_otlp,
        routes_stream,
        routes_fleet,
        routes_report,
        routes_schedule,
        routes_integrations,
    ):
        app.include_router(module.router)

    @app.get("/healthz", tags=["server"])
    async def healthz() -> JSONResponse:
        """Liveness and what the server runs on; 503 when the store's last check failed.

        Answered on the event loop from memory (the store is checked in a
        thread of its own), so no load on the API or the pool delays it.
        """
        if not health.healthy():
            return JSONResponse(
                error_body("unavailable", "the store cannot be reached"),
                status_code=503,
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        return JSONResponse(
            {"status": "ok", "version": __version__, "store": store.dialect, "bus": bus_kind}
        )

    @app.get(
        "/metrics",
        tags=["server"],
        dependencies=[Depends(require_read)],
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text"}},
    )
    async def metrics() -> Response:
        """Everything secperf holds, in the Prometheus text exposition format."""
        # Concurrent scrapes share one rendering: one store connection at most.
        body: bytes = await render_metrics()
        return Response(body, media_type=CONTENT_TYPE)

    mount_dashboard(app, static_root)
    _describe_errors_and_auth(app)
    return app


#: The one error shape (see ``errors.py``), as the spec documents it.
ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "where"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "where": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            },
        }
    },
}


def _describe_errors_and_auth(app: FastAPI) -> None:
    """Make ``/openapi.json`` say what the server does, where FastAPI's defaults differ.

    * Reads need the token only on a non-loopback bind, so their bearer
      requirement is optional (``security: [{}, {HTTPBearer: []}]``); writes
      keep it mandatory.
    * Invalid requests answer the one error shape, not FastAPI's
      ``{"detail": [...]}``: the documented 422 says so.
    * API requests (but the stream) and /healthz may answer 503 with
      ``Retry-After`` (shed load, a busy or unreachable store): documented.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec = build()
        spec.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
        error_ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
        unavailable = {
            "description": "Busy or the store is unreachable: retry after Retry-After seconds",
            "headers": {"Retry-After": {"schema": {"type": "integer"}}},
            "content": error_ref,
        }
        for path, operations in spec.get("paths", {}).items():
            for method, operation in operations.items():
                if path == "/healthz" or (path.startswith("/api/") and path not in UNLIMITED_PATHS):
                    operation.setdefault("responses", {}).setdefault("503", unavailable)
                security = operation.get("security")
                if method == "get" and security and {} not in security:
                    operation["security"] = [{}, *security]
                invalid = operation.get("responses", {}).get("422")
                if invalid is not None:
                    invalid["content"] = error_ref
        for unused in ("HTTPValidationError", "ValidationError"):
            spec.get("components", {}).get("schemas", {}).pop(unused, None)
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
