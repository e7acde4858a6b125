"""What the HTTP notifiers share: a JSON POST off the event loop, and the fields
receivers expect (RFC 3339 times, firing or resolved, labels as strings).

A receiver's URL is a secret: a chat webhook's token is its path
(``https://hooks.slack.com/services/T000/B000/XXXX``), others ride in a
password or a query parameter. Errors name the receiver by
``scheme://host[:port]`` only (``mask_url_path``), never the path or query.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from secperf.alerts.notifiers.interface import NotifyError, PermanentNotifyError
from secperf.config.units import mask_url_path, scrub_url
from secperf.model import Alert, AlertState
from secperf.url_auth import without_credentials

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
    try:
        # A URL's user:password is sent as Basic authentication; a configured
        # Authorization header wins over it.
        target, auth = without_credentials(url)
        request = urllib.request.Request(  # noqa: S310 (http(s) URLs only, checked by the caller)
            target,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", **auth, **headers},
        )
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            response.read(65536)
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError as exc:  # refused, timed out, DNS, TLS
        why = str(exc)
    except (ValueError, http.client.HTTPException) as exc:  # a bad URL, a broken answer
        # http.client quotes parts of the URL: "nonnumeric port: 'pw@host'".
        why = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    raise NotifyError(f"POST {mask_url_path(url)}: {scrub_url(why, url, hide_path=True)}") from None


async def post_json(
    url: str, payload: Any, timeout_s: float, headers: Mapping[str, str] | None = None
) -> None:
    """POST ``payload`` as JSON; NotifyError on failure, PermanentNotifyError on 4xx but 429.

    Runs in a worker thread so a slow receiver never holds the event loop.
    """
    if not url.startswith(("http://", "https://")):
        raise PermanentNotifyError(f"not an http(s) URL: {mask_url_path(url)!r}")
    body = json.dumps(payload, separators=(",", ":")).encode()
    status = await asyncio.to_thread(_post, url, body, timeout_s, dict(headers or {}))
    if 200 <= status < 300:
        return
    message = f"POST {mask_url_path(url)}: HTTP {status}"
    if 400 <= status < 500 and status != 429:
        raise PermanentNotifyError(message)
    raise NotifyError(message)
