"""A webhook notifier speaking Alertmanager's webhook payload (version 4).

Receivers written for Alertmanager's ``webhook_config`` (chat bridges, ticket
systems) accept secperf's notifications unchanged. The payload::

    {"version": "4", "groupKey": ..., "truncatedAlerts": 0, "status": "firing|resolved",
     "receiver": ..., "groupLabels": {...}, "commonLabels": {...},
     "commonAnnotations": {...}, "externalURL": ...,
     "alerts": [{"status", "labels", "annotations", "startsAt", "endsAt",
                 "generatorURL", "fingerprint"}]}

``endsAt`` of a firing alert is Alertmanager's zero time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from secperf.alerts.grouping import Notification
from secperf.alerts.notifiers.delivery import (
    ZERO_TIME,
    alert_status,
    post_json,
    rfc3339,
    string_map,
)
from secperf.alerts.notifiers.interface import Notifier
from secperf.model import Alert


def _common(items: list[dict[str, str]]) -> dict[str, str]:
    """The key/value pairs every map shares."""
    if not items:
        return {}
    first = items[0]
    return {k: v for k, v in first.items() if all(other.get(k) == v for other in items[1:])}


def alert_json(alert: Alert, external_url: str) -> dict[str, Any]:
    """One alert in Alertmanager's webhook form."""
    status = alert_status(alert)
    starts = alert.fired_at_ms or alert.active_since_ms or alert.updated_ms
    ends = ZERO_TIME
    if status == "resolved":
        ends = rfc3339(alert.resolved_at_ms or alert.updated_ms)
    return {
        "status": status,
        "labels": string_map(alert.labels),
        "annotations": string_map(alert.annotations),
        "startsAt": rfc3339(starts),
        "endsAt": ends,
        "generatorURL": generator_url(external_url, alert.fingerprint),
        "fingerprint": alert.fingerprint,
    }


def generator_url(external_url: str, fingerprint: str) -> str:
    """Where the alert is shown in secperf's dashboard."""
    return f"{external_url.rstrip('/')}/#/alerts/{fingerprint}"


def webhook_payload(
    notification: Notification, external_url: str, max_alerts: int = 0
) -> dict[str, Any]:
    """The version 4 payload; ``max_alerts`` > 0 truncates as Alertmanager does."""
    alerts = list(notification.alerts)
    truncated = 0
    if max_alerts > 0 and len(alerts) > max_alerts:
        truncated = len(alerts) - max_alerts
        alerts = alerts[:max_alerts]
    items = [alert_json(a, external_url) for a in alerts]
    return {
        "version": "4",
        "groupKey": notification.group_key,
        "truncatedAlerts": truncated,
        "status": notification.status,
        "receiver": notification.receiver,
        "groupLabels": string_map(notification.group_labels),
        "commonLabels": _common([i["labels"] for i in items]),
        "commonAnnotations": _common([i["annotations"] for i in items]),
        "externalURL": external_url,
        "alerts": items,
    }


class WebhookNotifier(Notifier):
    """POSTs each notification to ``url`` as an Alertmanager v4 webhook payload."""

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 10.0,
        send_resolved: bool = True,
        external_url: str = "http://127.0.0.1:8765",
        max_alerts: int = 0,
        headers: Mapping[str, str] | None = None,
        name: str = "webhook",
    ) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.send_resolved = send_resolved
        self.external_url = external_url
        self.max_alerts = max_alerts
        self.headers = dict(headers or {})
        self.name = name

    async def send(self, notification: Notification) -> None:
        payload = webhook_payload(notification, self.external_url, self.max_alerts)
        await post_json(self.url, payload, self.timeout_s, self.headers)
