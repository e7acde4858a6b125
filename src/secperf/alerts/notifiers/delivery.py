"""What the HTTP notifiers share: a JSON POST off the event loop, and the fields
receivers expect (RFC 3339 times, firing or resolved, labels as strings).
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from secperf.alerts.notifiers.interface import NotifyError, PermanentNotifyError
from secperf.model import Alert, AlertState

#: What Alertmanager writes as the end of an alert that has not ended.
ZERO_TIME = "0001-01-01T00:00:00Z"


def rfc3339(ms: int) -> str:
    """UTC milliseconds as RFC 3339 text (``2024-05-01T12:00:00.000Z``)."""
    text = datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def alert_status(alert: Alert) -> str:
    """``firing`` or ``resolved`` as receivers know them."""
    return "firing" if alert.state in (AlertState.FIRING, AlertState.ERROR) else "resolved"


def string_map(values: Mapping[str, Any]) -> dict[str, str]:
    """Labels or annotations as strings only (what receivers accept)."""
    return {str(k): str(v) for k, v in values.items()}


def _post(url: str, body: bytes, timeout_s: float, headers: Mapping[str, str]) -> int:
    request = urllib.request.Request(  # noqa: S310 (http(s) URLs only, checked by the caller)
        url, data=body, method="POST", headers={"Content-Type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            response.read(65536)
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, ValueError) as exc:  # refused, timed out, DNS, bad URL
        raise NotifyError(f"POST {url}: {exc}") from None


async def post_json(
    url: str, payload: Any, timeout_s: float, headers: Mapping[str, str] | None = None
) -> None:
    """POST ``payload`` as JSON; NotifyError on failure, PermanentNotifyError on 4xx but 429.

    Runs in a worker thread so a slow receiver never holds the event loop.
    """
    if not url.startswith(("http://", "https://")):
        raise PermanentNotifyError(f"not an http(s) URL: {url!r}")
    body = json.dumps(payload, separators=(",", ":")).encode()
    status = await asyncio.to_thread(_post, url, body, timeout_s, dict(headers or {}))
    if 200 <= status < 300:
        return
    message = f"POST {url}: HTTP {status}"
    if 400 <= status < 500 and status != 429:
        raise PermanentNotifyError(message)
    raise NotifyError(message)
