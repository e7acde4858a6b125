"""OpenTelemetry in: an OTLP/HTTP metrics receiver at ``POST /v1/metrics``.

Services instrumented with OpenTelemetry export to secperf as to any OTLP
endpoint (``OTEL_EXPORTER_OTLP_METRICS_ENDPOINT=http://127.0.0.1:8765/v1/metrics``),
protobuf or JSON, gzip or not, with the write token as a bearer header. The
token check runs before the body is read, as on every write.

A request is read within ``server.otlp_max_request_bytes`` (413 beyond), its
gzip undone within ``server.otlp_max_decompressed_bytes``, decoded and
mapped whole (``otlp/mapping.py``): a malformed one gets 400 naming the field
and stores nothing. At most ``MAX_CONCURRENT_EXPORTS`` exports are read and
decoded at once (memory stays bounded); others wait briefly, then get 503.
Its samples are published as one ``MetricsRecorded``, as the JSON ingest
does, and under the same backpressure (503 with ``Retry-After`` while the
writer is behind).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool

from secperf.config import ServerConfig
from secperf.events import MetricsRecorded
from secperf.events import now_ms as _now_ms
from secperf.web.admission import REASON_QUEUE_TIMEOUT, REASON_WRITER_BEHIND
from secperf.web.auth import WriteCheckedRoute, require_write
from secperf.web.context import AppContext, get_context
from secperf.web.errors import ApiError
from secperf.web.otlp import wire
from secperf.web.otlp.mapping import (
    MappedRequest,
    MappingOptions,
    OtlpInvalid,
    OtlpTooMany,
    map_request,
)
from secperf.web.routes_ingest import _overloaded as writer_behind

PATH = "/v1/metrics"
#: Plain bodies at least this large are decoded in a worker thread, off the event loop.
THREAD_ABOVE_BYTES = 64 * 1024
#: Seconds a client is asked to wait while the writer is behind.
RETRY_AFTER_S = 1
#: Exports read and decoded at once: each may hold its body inflated (up to
#: ``otlp_max_decompressed_bytes``) and its decoded messages, so memory stays bounded.
MAX_CONCURRENT_EXPORTS = 4
#: How long an export waits for a slot before it gets 503 with Retry-After.
EXPORT_WAIT_S = 2.0

Ctx = Annotated[AppContext, Depends(get_context)]


class OtlpRoute(WriteCheckedRoute):
    """A write-checked route whose every refusal is an OTLP ``Status`` in the request's encoding."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answered(request: Request) -> Response:
            try:
                return await handler(request)
            except ApiError as exc:
                return _failure(request, exc.status, exc.code, exc.message, exc.where, exc.headers)

        return answered


def _failure(
    request: Request,
    status: int,
    code: str,
    message: str,
    where: str | None,
    headers: dict[str, str] | None = None,
) -> Response:
    encoding = wire.answer_type(request.headers.get("content-type"))
    body = wire.status_body(encoding, status, code, message, where)
    return Response(body, status_code=status, media_type=encoding, headers=headers)


router = APIRouter(
    tags=["otlp"],
    dependencies=[Depends(require_write)],
    route_class=OtlpRoute,
)


def _config(request: Request) -> ServerConfig:
    config = getattr(request.app.state, "server_config", None)
    return config if isinstance(config, ServerConfig) else ServerConfig()


def _decode(
    body: bytes, gzipped: bool, encoding: str, config: ServerConfig, now_ms: int
) -> MappedRequest:
    """The body's samples (raises ``ApiError`` for a body refused whole)."""
    try:
        if gzipped:
            body = wire.gunzip(body, config.otlp_max_decompressed_bytes)
        elif len(body) > config.otlp_max_decompressed_bytes:
            raise wire.WireError(
                413, f"the body is over {config.otlp_max_decompressed_bytes} bytes", "body"
            )
        message = wire.parse(body, encoding)
        options = MappingOptions(scope_label=config.otlp_scope_label)
        return map_request(message, now_ms, options)
    except wire.WireError as exc:
        raise ApiError(exc.status, exc.message, where=exc.where) from None
    except OtlpInvalid as exc:
        # The message names the field too: a protobuf client only gets the message.
        raise ApiError(
            400, f"{exc.where}: {exc.problem}; nothing was stored", where=f"body.{exc.where}"
        ) from None
    except OtlpTooMany as exc:
        raise ApiError(413, f"{exc}; nothing was stored", where="body") from None


_BODY_SCHEMA = {
    "description": "An OTLP ExportMetricsServiceRequest (protobuf or OTLP/JSON), gzip allowed.",
    "required": True,
    "content": {
        wire.PROTOBUF: {"schema": {"type": "string", "format": "binary"}},
        wire.JSON: {"schema": {"type": "object"}},
    },
}


@router.post(
    PATH,
    response_class=Response,
    openapi_extra={"requestBody": _BODY_SCHEMA},
    responses={
        200: {
            "description": "ExportMetricsServiceResponse (partial_success when points were "
            "left out), in the request's encoding",
            "content": {wire.PROTOBUF: {}, wire.JSON: {}},
        },
        400: {"description": "Not valid OTLP: a google.rpc.Status naming the field"},
        413: {"description": "Body, inflated body or samples over the server's bounds"},
        415: {"description": "Neither application/x-protobuf nor application/json, or not gzip"},
    },
)
async def export_metrics(ctx: Ctx, request: Request) -> Response:
    """Receive an OTLP metrics export; store its samples, all or none."""
    config = _config(request)
    try:
        encoding = wire.content_type(request.headers.get("content-type"))
        gzipped = wire.is_gzip(request.headers.get("content-encoding"))
    except wire.WireError as exc:
        raise ApiError(exc.status, exc.message, where=exc.where) from None
    slots = _slots(request)
    try:
        await asyncio.wait_for(slots.acquire(), EXPORT_WAIT_S)
    except TimeoutError:
        _shed(request, REASON_QUEUE_TIMEOUT)
        raise ApiError(
            503,
            "secperf is busy with other exports; retry this export shortly",
            code="overloaded",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        ) from None
    try:
        mapped = await _read_and_map(request, gzipped, encoding, config)
        if mapped.samples:
            if writer_behind(ctx):
                _shed(request, REASON_WRITER_BEHIND)
                raise ApiError(
                    503,
                    "secperf is writing behind; retry this export shortly",
                    code="overloaded",
                    headers={"Retry-After": str(RETRY_AFTER_S)},
                )
            await ctx.bus.publish(MetricsRecorded(samples=tuple(mapped.samples)))
    finally:
        slots.release()
    answer = wire.success_body(encoding, mapped.rejected_points, mapped.rejection_message)
    return Response(answer, media_type=encoding)


async def _read_and_map(
    request: Request, gzipped: bool, encoding: str, config: ServerConfig
) -> MappedRequest:
    try:
        body = await wire.read_body(request, config.otlp_max_request_bytes)
    except wire.WireError as exc:
        raise ApiError(exc.status, exc.message, where=exc.where) from None
    now = _now_ms()
    # A small gzip body may inflate to many megabytes: off the event loop too.
    if gzipped or len(body) >= THREAD_ABOVE_BYTES:
        return await run_in_threadpool(_decode, body, gzipped, encoding, config, now)
    return _decode(body, gzipped, encoding, config, now)


def _slots(request: Request) -> asyncio.Semaphore:
    """The app's export slots (made on first use, on the server's event loop)."""
    state = request.app.state
    slots = getattr(state, "otlp_slots", None)
    if not isinstance(slots, asyncio.Semaphore):
        slots = asyncio.Semaphore(MAX_CONCURRENT_EXPORTS)
        state.otlp_slots = slots
    return slots


def _shed(request: Request, reason: str) -> None:
    counter = getattr(request.app.state, "shed_counter", None)
    if counter is not None:
        counter.add(reason)
