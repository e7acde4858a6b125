"""Grouping (group_wait, group_interval, repeat_interval), dedup and inhibition."""

from __future__ import annotations

import pytest

from secperf.alerts.grouping import (
    DEFAULT_INHIBIT_RULES,
    Grouper,
    GroupSettings,
    Inhibitor,
    InhibitRule,
    group_key_of,
)
from secperf.alerts.silences import parse_matcher
from secperf.model import Alert, AlertState, MetricKind, Severity, labels_fingerprint

S = 1000


def alert(
    name: str,
    host: str,
    state: AlertState = AlertState.FIRING,
    severity: Severity = Severity.HIGH,
    acked: bool = False,
) -> Alert:
    labels = {"alertname": name, "host": host, "severity": severity.value}
    return Alert(
        fingerprint=labels_fingerprint(labels),
        rule=name,
        state=state,
        severity=severity,
        kind=MetricKind.PERFORMANCE,
        labels=labels,
        acknowledged_by="bob" if acked else None,
    )


def hosts(notification: object) -> list[tuple[str, str]]:
    return [(a.labels["host"], a.state.value) for a in notification.alerts]  # type: ignore[attr-defined]


def test_group_wait_batches_alerts_that_fire_together() -> None:
    g = Grouper(GroupSettings(group_wait_ms=30 * S, group_interval_ms=300 * S))
    g.update(alert("Cpu", "a"), 0)
    g.update(alert("Cpu", "b"), 10 * S)
    g.update(alert("Mem", "a"), 10 * S)
    assert g.due(29 * S) == []
    assert g.next_due_ms() == 30 * S
    sent = g.due(30 * S)
    assert [(n.group_key, hosts(n)) for n in sent] == [
        ('{}:{alertname="Cpu"}', [("a", "firing"), ("b", "firing")])
    ]
    assert sent[0].group_labels == {"alertname": "Cpu"}
    assert [hosts(n) for n in g.due(40 * S)] == [[("a", "firing")]]  # Mem's own group_wait


def test_group_interval_and_repeat_interval() -> None:
    g = Grouper(
        GroupSettings(group_wait_ms=0, group_interval_ms=60 * S, repeat_interval_ms=600 * S)
    )
    g.update(alert("Cpu", "a"), 0)
    assert len(g.due(0)) == 1
    # A new alert in the same group waits for the next group_interval tick.
    g.update(alert("Cpu", "b"), 10 * S)
    assert g.due(59 * S) == []
    assert [hosts(n) for n in g.due(60 * S)] == [[("a", "firing"), ("b", "firing")]]
    # Nothing changed: silent until repeat_interval has passed since the last send.
    for t in range(120, 660, 60):
        assert g.due(t * S) == [], t
    assert len(g.due(660 * S)) == 1


def test_dedup_by_fingerprint_and_resolution() -> None:
    g = Grouper(GroupSettings(group_wait_ms=0, group_interval_ms=60 * S))
    for _ in range(3):
        g.update(alert("Cpu", "a"), 0)
    (first,) = g.due(0)
    assert len(first.alerts) == 1 and first.status == "firing"
    g.update(alert("Cpu", "a", AlertState.RESOLVED), 30 * S)
    (second,) = g.due(60 * S)
    assert hosts(second) == [("a", "resolved")] and second.status == "resolved"
    assert len(g) == 0  # the group is gone once its resolution was sent


def test_fired_and_resolved_within_group_wait_is_never_sent() -> None:
    g = Grouper(GroupSettings(group_wait_ms=30 * S))
    g.update(alert("Cpu", "a"), 0)
    g.update(alert("Cpu", "a", AlertState.RESOLVED), 10 * S)
    assert g.due(30 * S) == []
    assert len(g) == 0


def test_muted_alerts_are_left_out_and_acknowledged_do_not_repeat() -> None:
    g = Grouper(
        GroupSettings(group_wait_ms=0, group_interval_ms=60 * S, repeat_interval_ms=120 * S)
    )
    g.update(alert("Cpu", "a", acked=True), 0)
    g.update(alert("Cpu", "b"), 0, muted=True)
    assert [hosts(n) for n in g.due(0)] == [[("a", "firing")]]
    assert g.due(60 * S) == []
    assert g.due(120 * S) == []  # acknowledged: no repeat
    g.set_muted(alert("Cpu", "b").fingerprint, False)
    assert [hosts(n) for n in g.due(180 * S)] == [[("a", "firing"), ("b", "firing")]]


def test_group_by_everything_and_key_format() -> None:
    g = Grouper(GroupSettings(group_by=("...",), group_wait_ms=0))
    g.update(alert("Cpu", "a"), 0)
    g.update(alert("Cpu", "b"), 0)
    assert len(g.due(0)) == 2
    assert group_key_of({"b": "2", "a": 'x"y'}) == '{}:{a="x\\"y", b="2"}'
    with pytest.raises(ValueError, match="group_interval"):
        GroupSettings(group_interval_ms=0)


def test_default_inhibition_critical_mutes_lower_same_alertname_and_host() -> None:
    inhibitor = Inhibitor(DEFAULT_INHIBIT_RULES)
    crit = alert("Cpu", "a", severity=Severity.CRITICAL)
    inhibitor.set_firing([crit, alert("Cpu", "a", AlertState.PENDING, Severity.CRITICAL)])
    assert inhibitor.inhibited_by(alert("Cpu", "a", severity=Severity.MEDIUM)) == crit
    assert inhibitor.inhibited_by(alert("Cpu", "b", severity=Severity.MEDIUM)) is None
    assert inhibitor.inhibited_by(alert("Mem", "a", severity=Severity.MEDIUM)) is None
    assert inhibitor.inhibited_by(crit) is None  # never itself
    # A resolved critical mutes nothing.
    inhibitor.set_firing([alert("Cpu", "a", AlertState.RESOLVED, Severity.CRITICAL)])
    assert inhibitor.inhibited_by(alert("Cpu", "a", severity=Severity.MEDIUM)) is None


def test_configured_inhibit_rule() -> None:
    rule = InhibitRule(
        source=(parse_matcher('alertname="HostDown"'),),
        target=(parse_matcher('alertname=~"Cpu|Mem"'),),
        equal=("host",),
    )
    inhibitor = Inhibitor([rule])
    inhibitor.set_firing([alert("HostDown", "a")])
    assert inhibitor.inhibited_by(alert("Mem", "a")) is not None
    assert inhibitor.inhibited_by(alert("Mem", "b")) is None
    assert inhibitor.inhibited_by(alert("Disk", "a")) is None
