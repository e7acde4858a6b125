"""Push alerts to a real Alertmanager through its API v2 (``POST /api/v2/alerts``).

Alertmanager groups, routes and silences by itself, so this notifier is
``raw``: the engine sends it every active alert (not silenced or inhibited in
secperf) on each change and again every ``resend_interval``, as Prometheus
does. A firing alert carries ``endsAt = now + ttl`` so that Alertmanager
resolves it by itself if secperf stops sending; a resolved one its end time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from secperf.alerts.grouping import Notification
from secperf.alerts.notifiers.delivery import alert_status, post_json, rfc3339, string_map
from secperf.alerts.notifiers.interface import Notifier
from secperf.alerts.notifiers.webhook import generator_url
from secperf.events import now_ms
from secperf.model import Alert


def postable_alert(alert: Alert, now: int, ttl_ms: int, external_url: str) -> dict[str, Any]:
    """One alert in the API v2 ``postableAlert`` form."""
    starts = alert.fired_at_ms or alert.active_since_ms or alert.updated_ms
    if alert_status(alert) == "firing":
        ends = now + ttl_ms
    else:
        ends = alert.resolved_at_ms or alert.updated_ms
    return {
        "labels": string_map(alert.labels),
        "annotations": string_map(alert.annotations),
        "startsAt": rfc3339(starts),
        "endsAt": rfc3339(max(ends, starts)),
        "generatorURL": generator_url(external_url, alert.fingerprint),
    }


class AlertmanagerNotifier(Notifier):
    """Sends alerts to ``<url>/api/v2/alerts``."""

    raw = True

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 10.0,
        send_resolved: bool = True,
        ttl_ms: int = 4 * 60_000,
        external_url: str = "http://127.0.0.1:8765",
        clock: Callable[[], int] = now_ms,
        name: str = "alertmanager",
    ) -> None:
        base = url.rstrip("/")
        self.url = base if base.endswith("/api/v2/alerts") else f"{base}/api/v2/alerts"
        self.timeout_s = timeout_s
        self.send_resolved = send_resolved
        self.ttl_ms = ttl_ms
        self.external_url = external_url
        self.clock = clock
        self.name = name

    async def send(self, notification: Notification) -> None:
        now = self.clock()
        body = [postable_alert(a, now, self.ttl_ms, self.external_url) for a in notification.alerts]
        if body:
            await post_json(self.url, body, self.timeout_s)
