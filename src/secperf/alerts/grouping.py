"""Noise control with Alertmanager's semantics: grouping, dedup and inhibition.

Grouping: alerts with the same values of the ``group_by`` labels form a group
(``["..."]`` groups by every label). A new group waits ``group_wait`` before its
first notification, so alerts firing together arrive together. After that the
group is looked at every ``group_interval``: it is notified when its set of
firing alerts changed or some resolved, else again every ``repeat_interval``
while it fires (acknowledged alerts do not trigger repeats). A group whose
alerts have all resolved and been notified is dropped.

Dedup: a group holds each alert once, by fingerprint; the latest state wins.

Inhibition: a firing alert matching an inhibit rule's ``source_matchers`` mutes
every alert matching its ``target_matchers`` whose ``equal`` labels have the
same values (a label missing on both counts as equal). Muted alerts, like
silenced ones, are left out of notifications but keep their lifecycle.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from secperf.alerts.silences import matches_all, parse_matcher
from secperf.config import InhibitRuleConfig, Matcher
from secperf.model import Alert, AlertState

NOTIFIED_STATES = frozenset({AlertState.FIRING, AlertState.ERROR})


@dataclass(frozen=True, slots=True)
class GroupSettings:
    """How alerts are grouped and how often a group is notified (milliseconds)."""

    group_by: tuple[str, ...] = ("alertname",)
    group_wait_ms: int = 30_000
    group_interval_ms: int = 300_000
    repeat_interval_ms: int = 4 * 3_600_000

    def __post_init__(self) -> None:
        if self.group_wait_ms < 0:
            raise ValueError(f"group_wait must not be negative, got {self.group_wait_ms} ms")
        if self.group_interval_ms <= 0:
            raise ValueError(f"group_interval must be positive, got {self.group_interval_ms} ms")
        if self.repeat_interval_ms <= 0:
            raise ValueError(f"repeat_interval must be positive, got {self.repeat_interval_ms} ms")


@dataclass(frozen=True, slots=True)
class Notification:
    """What one notifier sends at once: a group's firing and newly resolved alerts."""

    receiver: str
    group_key: str
    group_labels: dict[str, str]
    alerts: tuple[Alert, ...]
    ts_ms: int

    @property
    def status(self) -> str:
        """``firing`` when any alert fires, else ``resolved``."""
        return "firing" if any(a.state in NOTIFIED_STATES for a in self.alerts) else "resolved"


def group_labels_of(labels: Mapping[str, str], group_by: Sequence[str]) -> dict[str, str]:
    """The labels that identify an alert's group."""
    if "..." in group_by:
        return dict(labels)
    return {name: labels[name] for name in group_by if name in labels}


def group_key_of(group_labels: Mapping[str, str]) -> str:
    """Alertmanager's group key form: ``{}:{alertname="x", host="a"}``."""
    inner = ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(group_labels.items()))
    return "{}:{" + inner + "}"


@dataclass
class _Group:
    key: str
    labels: dict[str, str]
    next_flush_ms: int
    alerts: dict[str, Alert] = field(default_factory=dict)
    muted: set[str] = field(default_factory=set)
    sent_firing: frozenset[str] = frozenset()
    last_sent_ms: int | None = None


class Grouper:
    """Collects alert updates into groups and says which notifications are due."""

    def __init__(self, settings: GroupSettings, receiver: str = "secperf") -> None:
        self.settings = settings
        self.receiver = receiver
        self._groups: dict[str, _Group] = {}

    def __len__(self) -> int:
        return len(self._groups)

    def update(self, alert: Alert, now_ms: int, *, muted: bool = False) -> None:
        """Add or replace ``alert`` (by fingerprint) in its group."""
        notified = alert.state in NOTIFIED_STATES
        if not notified and alert.state is not AlertState.RESOLVED:
            # Pending, inactive and no-data alerts are not notified; one that
            # was notified as firing and left that state counts as resolved.
            alert = _as_resolved(alert, now_ms)
        labels = group_labels_of(alert.labels, self.settings.group_by)
        key = group_key_of(labels)
        group = self._groups.get(key)
        if group is None:
            if not notified:
                return  # a resolution for a group never notified: nothing to say
            group = _Group(key, labels, now_ms + self.settings.group_wait_ms)
            self._groups[key] = group
        group.alerts[alert.fingerprint] = alert
        if muted:
            group.muted.add(alert.fingerprint)
        else:
            group.muted.discard(alert.fingerprint)

    def set_muted(self, fingerprint: str, muted: bool) -> None:
        """Change whether an alert already in a group is silenced or inhibited."""
        for group in self._groups.values():
            if fingerprint in group.alerts:
                if muted:
                    group.muted.add(fingerprint)
                else:
                    group.muted.discard(fingerprint)

    def next_due_ms(self) -> int | None:
        """When the earliest group is next looked at."""
        return min((g.next_flush_ms for g in self._groups.values()), default=None)

    def due(self, now_ms: int) -> list[Notification]:
        """Notifications of every group whose time has come (updating their state)."""
        out: list[Notification] = []
        for key in [k for k, g in self._groups.items() if g.next_flush_ms <= now_ms]:
            group = self._groups[key]
            notification = self._flush(group, now_ms)
            if notification is not None:
                out.append(notification)
            if not group.alerts:
                del self._groups[key]
        return out

    def _flush(self, group: _Group, now_ms: int) -> Notification | None:
        settings = self.settings
        group.next_flush_ms = now_ms + settings.group_interval_ms
        firing = [
            a
            for fp, a in group.alerts.items()
            if a.state in NOTIFIED_STATES and fp not in group.muted
        ]
        resolved = [
            a
            for fp, a in group.alerts.items()
            if a.state not in NOTIFIED_STATES and fp in group.sent_firing
        ]
        # Resolved alerts leave the group once looked at, notified or not.
        for fp in [fp for fp, a in group.alerts.items() if a.state not in NOTIFIED_STATES]:
            del group.alerts[fp]
            group.muted.discard(fp)
        firing_fps = frozenset(a.fingerprint for a in firing)
        changed = firing_fps != group.sent_firing or bool(resolved)
        repeat = (
            bool(firing)
            and group.last_sent_ms is not None
            and now_ms - group.last_sent_ms >= settings.repeat_interval_ms
            and any(a.acknowledged_by is None for a in firing)
        )
        if not changed and not repeat:
            return None
        group.sent_firing = firing_fps
        group.last_sent_ms = now_ms
        alerts = tuple(sorted(firing, key=lambda a: a.fingerprint)) + tuple(
            sorted(resolved, key=lambda a: a.fingerprint)
        )
        if not alerts:
            return None
        return Notification(self.receiver, group.key, dict(group.labels), alerts, now_ms)


def _as_resolved(alert: Alert, now_ms: int) -> Alert:
    from dataclasses import replace

    return replace(alert, state=AlertState.RESOLVED, resolved_at_ms=alert.resolved_at_ms or now_ms)


# --------------------------------------------------------------------------- inhibition


@dataclass(frozen=True, slots=True)
class InhibitRule:
    """Firing ``source`` alerts mute ``target`` alerts that agree on ``equal`` labels."""

    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, cfg: InhibitRuleConfig) -> InhibitRule:
        return cls(tuple(cfg.source_matchers), tuple(cfg.target_matchers), tuple(cfg.equal))


#: Critical mutes lower severities of the same alertname on the same host.
DEFAULT_INHIBIT_RULES = (
    InhibitRule(
        source=(parse_matcher('severity="critical"'),),
        target=(parse_matcher('severity=~"high|medium|low|info"'),),
        equal=("alertname", "host"),
    ),
)


class Inhibitor:
    """Answers "is this alert muted by a firing one?" for a set of inhibit rules."""

    def __init__(self, rules: Iterable[InhibitRule] = DEFAULT_INHIBIT_RULES) -> None:
        self.rules = tuple(rules)
        self._sources: list[list[Alert]] = [[] for _ in self.rules]

    def set_firing(self, alerts: Iterable[Alert]) -> None:
        """The alerts firing now (the candidate sources)."""
        self._sources = [[] for _ in self.rules]
        for alert in alerts:
            if alert.state is not AlertState.FIRING:
                continue
            for index, rule in enumerate(self.rules):
                if matches_all(rule.source, alert.labels):
                    self._sources[index].append(alert)

    def inhibited_by(self, alert: Alert) -> Alert | None:
        """The firing alert that mutes ``alert``, or None."""
        for rule, sources in zip(self.rules, self._sources, strict=True):
            if not sources or not matches_all(rule.target, alert.labels):
                continue
            for source in sources:
                if source.fingerprint == alert.fingerprint:
                    continue
                if all(
                    source.labels.get(name, "") == alert.labels.get(name, "") for name in rule.equal
                ):
                    return source
        return None
