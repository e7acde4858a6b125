"""The notifier contract: what a notifier implements and the errors it raises.

A notifier turns one ``Notification`` (a group's alerts) into a delivery and
raises ``NotifyError`` when it failed (``PermanentNotifyError`` when retrying
would not help). ``runner.py`` sends through it; ``delivery.py`` holds what
the HTTP receivers share.
"""

from __future__ import annotations

import abc

from secperf.alerts.grouping import Notification


class NotifyError(Exception):
    """A delivery failed and may succeed when retried."""


class PermanentNotifyError(NotifyError):
    """A delivery the receiver refused; retrying would not help."""


class Notifier(abc.ABC):
    """Delivers notifications somewhere. Implementations raise NotifyError on failure."""

    #: Identifies the notifier in logs and stats.
    name: str = "notifier"
    #: Whether resolved alerts are sent.
    send_resolved: bool = True
    #: True for receivers that group by themselves (Alertmanager): they get every
    #: active alert on each push instead of grouped notifications.
    raw: bool = False

    @abc.abstractmethod
    async def send(self, notification: Notification) -> None:
        """Deliver one notification; raise NotifyError (or PermanentNotifyError)."""

    async def close(self) -> None:  # noqa: B027 (optional hook, not abstract)
        """Release resources (default: nothing)."""
