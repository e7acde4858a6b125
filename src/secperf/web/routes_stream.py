"""``GET /api/v1/stream``: the multiplexed Server-Sent Events stream (see ``sse.py``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse

from secperf.web.auth import require_stream
from secperf.web.errors import ApiError
from secperf.web.scope import HostQuery, TargetQuery
from secperf.web.sse import SseHub, StreamScope, parse_topics

router = APIRouter(prefix="/api/v1", tags=["stream"])


@router.get(
    "/stream",
    dependencies=[Depends(require_stream)],
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "event stream"}},
)
async def stream(
    request: Request,
    topics: Annotated[
        str | None,
        Query(
            max_length=1000,
            description="Comma-separated topic patterns (NATS style: security.>, alerts.>, "
            "metrics.recorded); default every topic.",
        ),
    ] = None,
    token: Annotated[
        str | None,
        Query(max_length=512, description="The server token, for EventSource clients."),
    ] = None,
    last_event_id: Annotated[
        str | None, Header(alias="Last-Event-ID", max_length=512, include_in_schema=False)
    ] = None,
    target: TargetQuery = None,
    host: HostQuery = None,
    last_event_id_query: Annotated[
        str | None,
        Query(
            alias="last_event_id",
            max_length=512,
            description="Resume after this event id (same as the Last-Event-ID header).",
        ),
    ] = None,
) -> StreamingResponse:
    """Every bus event matching ``topics``, live, resumable with Last-Event-ID.

    ``target`` and ``host`` keep the events in that scope (see docs/api.md);
    events about neither (triage, silences, baselines) always pass.
    """
    try:
        patterns = parse_topics(topics)
    except ValueError as exc:
        raise ApiError(422, str(exc), where="query.topics") from None
    hub = request.app.state.sse_hub
    assert isinstance(hub, SseHub)
    return StreamingResponse(
        hub.stream(
            patterns, last_event_id or last_event_id_query, StreamScope(target=target, host=host)
        ),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
