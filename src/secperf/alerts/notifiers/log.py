"""A notifier that writes each notification to the log (one line per alert)."""

from __future__ import annotations

import logging

from secperf.alerts.grouping import Notification
from secperf.alerts.notifiers.delivery import alert_status
from secperf.alerts.notifiers.interface import Notifier

log = logging.getLogger("secperf.alerts")


class LogNotifier(Notifier):
    """Logs notifications at WARNING (firing) or INFO (resolved)."""

    def __init__(self, *, send_resolved: bool = True, name: str = "log") -> None:
        self.send_resolved = send_resolved
        self.name = name
        self.lines: list[str] = []  # the last lines written, for the CLI and tests
        self._keep = 100

    async def send(self, notification: Notification) -> None:
        for alert in notification.alerts:
            status = alert_status(alert)
            summary = alert.annotations.get("summary") or alert.rule
            line = (
                f"[{status}] {alert.labels.get('alertname', alert.rule)} "
                f"({alert.severity.value}) {summary}"
            )
            log.log(logging.WARNING if status == "firing" else logging.INFO, "%s", line)
            self.lines.append(line)
        del self.lines[: -self._keep]
