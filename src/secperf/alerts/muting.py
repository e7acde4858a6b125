"""Who hears of an alert, and when: silences, inhibition and the notification feed.

The engine decides each alert's state; ``NotificationFeed`` decides who is
told. It holds the active silences, the inhibitor and the grouper, marks every
alert muted (silenced or inhibited) or not, and hands what is due to the
notifier runners: grouped notifications to grouped notifiers, and to raw
notifiers (Alertmanager) the whole set of firing and recently resolved alerts,
pushed again every ``resend_interval_ms`` as Prometheus does. Muted alerts keep
their lifecycle; they are only left out of notifications.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from secperf.alerts.grouping import Grouper, Inhibitor, Notification
from secperf.alerts.lifecycle import AlertSlot
from secperf.alerts.notifiers.runner import NotifierRunner
from secperf.alerts.silences import SilenceSet
from secperf.model import Alert, AlertState
from secperf.store import Silence

RAW_RESOLVED_RESEND_MS = 15 * 60_000  # Prometheus resends resolved alerts for 15 minutes

Slots = Mapping[str, AlertSlot]


class NotificationFeed:
    """Silences, inhibition and grouping in front of the notifier runners."""

    def __init__(
        self,
        grouper: Grouper,
        inhibitor: Inhibitor,
        runners: list[NotifierRunner],
        resend_interval_ms: int,
    ) -> None:
        self.grouper = grouper
        self.inhibitor = inhibitor
        self.runners = runners
        self.resend_interval_ms = resend_interval_ms
        self.silences = SilenceSet()
        self._raw_last_push_ms: int | None = None
        self._raw_dirty = False

    def set_silences(self, silences: Iterable[Silence]) -> None:
        """Replace the silences in force."""
        self.silences = SilenceSet(silences)

    def is_silenced(self, alert: Alert, now: int) -> bool:
        """Whether a silence in force at ``now`` mutes ``alert``."""
        return self.silences.is_silenced(alert.labels, now)

    def muted(self, alert: Alert, now: int) -> bool:
        """Silenced or inhibited: left out of notifications."""
        return self.is_silenced(alert, now) or self.inhibitor.inhibited_by(alert) is not None

    def feed(self, slots: Slots, now: int, changed: Sequence[str]) -> None:
        """Give the grouper this tick's firing alerts and every alert that changed."""
        self.inhibitor.set_firing(s.alert for s in slots.values())
        changed_set = set(changed)
        for fp, slot in slots.items():
            alert = slot.alert
            if alert.state in (AlertState.FIRING, AlertState.ERROR) or fp in changed_set:
                self.grouper.update(alert, now, muted=self.muted(alert, now))
        if changed_set:
            self._raw_dirty = True

    def resync(self, slots: Slots, now: int) -> None:
        """Mark every alert muted or not again (after silences changed)."""
        for fp, slot in slots.items():
            self.grouper.set_muted(fp, self.muted(slot.alert, now))
        self._raw_dirty = True

    def flush(self, slots: Slots, now: int) -> list[Notification]:
        """Submit every notification due at ``now``; returns the grouped ones."""
        sent = self.grouper.due(now)
        grouped = [r for r in self.runners if not r.notifier.raw]
        for notification in sent:
            for runner in grouped:
                runner.submit(notification)
        raw = [r for r in self.runners if r.notifier.raw]
        if raw and (
            self._raw_dirty
            or self._raw_last_push_ms is None
            or now - self._raw_last_push_ms >= self.resend_interval_ms
        ):
            alerts = tuple(
                s.alert
                for s in slots.values()
                if (
                    s.alert.state in (AlertState.FIRING, AlertState.ERROR)
                    or (
                        s.alert.state is AlertState.RESOLVED
                        and now - (s.alert.resolved_at_ms or 0) <= RAW_RESOLVED_RESEND_MS
                    )
                )
                and not self.muted(s.alert, now)
            )
            self._raw_dirty = False
            self._raw_last_push_ms = now
            if alerts:
                push = Notification("secperf", "{}:{}", {}, alerts, now)
                for runner in raw:
                    runner.submit(push)
        return sent

    async def wait_idle(self) -> None:
        """Wait until every notifier has sent (or given up on) what it was given."""
        for runner in self.runners:
            await runner.wait_idle()


__all__ = ["RAW_RESOLVED_RESEND_MS", "NotificationFeed"]
