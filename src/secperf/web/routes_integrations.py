"""``GET /api/v1/integrations``: the state of secperf's outbound integrations (SIEM outputs).

For each ``[[siem.outputs]]``: its address and format, what waits in its
on-disk queue, what was sent, failed and dropped, whether it is connected and
its last error, so the dashboard (or a person with curl) can see an
unreachable SIEM. The same numbers are in ``/metrics`` as ``secperf_siem_*``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from secperf.web.auth import require_read
from secperf.web.serialize import ok

if TYPE_CHECKING:
    from secperf.siem.forwarder import SiemOutputStats

router = APIRouter(prefix="/api/v1", tags=["integrations"])

#: What ``app.state.siem_stats`` holds: the forwarder's ``stats`` (None: no SIEM outputs).
SiemStatsProvider = Callable[[], "Sequence[SiemOutputStats]"]


def siem_output_json(output: SiemOutputStats) -> dict[str, Any]:
    """One SIEM output's state as the API answers it."""
    return {
        "name": output.name,
        "address": output.address,
        "format": output.format,
        "connected": output.connected,
        "queued": output.queued,
        "queued_bytes": output.queued_bytes,
        "sent": output.sent,
        "failed": output.failed,
        "dropped": output.dropped,
        "duplicates": output.duplicates,
        "last_error": output.last_error,
        "last_error_ms": output.last_error_ms,
        "last_sent_ms": output.last_sent_ms,
        # Unreachable: events wait and the last attempt failed after the last delivery.
        "healthy": output.queued == 0
        or output.last_error_ms is None
        or (output.last_sent_ms is not None and output.last_sent_ms > output.last_error_ms),
    }


@router.get("/integrations", dependencies=[Depends(require_read)])
async def integrations(request: Request) -> JSONResponse:
    """SIEM outputs: queue depth, sent, failed, dropped, connection and last error."""
    provider = getattr(request.app.state, "siem_stats", None)
    outputs = [siem_output_json(o) for o in provider()] if callable(provider) else []
    return ok({"siem": {"enabled": callable(provider), "outputs": outputs}})
