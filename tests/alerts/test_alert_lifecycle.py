"""The alert lifecycle as a pure state machine: no bus, no store, no clock."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from secperf.alerts.evaluate import Observation
from secperf.alerts.lifecycle import (
    AlertSlot,
    Damping,
    Transition,
    advance_rule,
    alert_labels,
)
from secperf.alerts.rule_loading import rule_from_dict
from secperf.alerts.rules import Rule
from secperf.model import AlertState, labels_fingerprint

T0 = 1_700_000_000_000
MIN = 60_000
HOST = {"host": "web-1"}
NO_DAMPING = Damping(min_firing_ms=0)


def cpu_rule(**overrides: Any) -> Rule:
    data: dict[str, Any] = {
        "name": "HighCpu",
        "metric": "cpu_percent",
        "aggregation": "avg",
        "window": "1m",
        "threshold": 90.0,
        "for": "5m",
        "severity": "high",
    }
    data.update(overrides)
    return rule_from_dict(data)


def seen(value: float, *, fires: bool, holds: bool | None = None) -> list[Observation]:
    return [Observation(dict(HOST), value, fires, fires if holds is None else holds)]


class Machine:
    """One rule's slots driven tick by tick, remembering every transition."""

    def __init__(self, rule: Rule, damping: Damping = NO_DAMPING) -> None:
        self.rule = rule
        self.damping = damping
        self.slots: dict[str, AlertSlot] = {}
        self.log: list[Transition] = []

    def tick(
        self, at_ms: int, observations: list[Observation], error: str | None = None
    ) -> list[tuple[str, str]]:
        changes = advance_rule(self.slots, self.rule, observations, error, at_ms, self.damping)
        self.log += changes
        return [(c.previous_state.value, c.alert.state.value) for c in changes]

    def state(self) -> AlertState:
        fp = labels_fingerprint(alert_labels(self.rule, HOST))
        return self.slots[fp].alert.state


def test_pending_firing_resolved_with_exact_for() -> None:
    m = Machine(cpu_rule())
    assert m.tick(T0, seen(95, fires=True)) == [("inactive", "pending")]
    assert m.tick(T0 + 5 * MIN - 1, seen(95, fires=True)) == []
    assert m.tick(T0 + 5 * MIN, seen(96, fires=True)) == [("pending", "firing")]
    firing = m.log[-1].alert
    assert firing.active_since_ms == T0 and firing.fired_at_ms == T0 + 5 * MIN
    assert firing.value == 96
    assert m.tick(T0 + 6 * MIN, seen(10, fires=False)) == [("firing", "resolved")]
    assert m.log[-1].alert.resolved_at_ms == T0 + 6 * MIN


def test_pending_that_clears_goes_back_to_inactive() -> None:
    m = Machine(cpu_rule())
    m.tick(T0, seen(95, fires=True))
    assert m.tick(T0 + MIN, seen(50, fires=False)) == [("pending", "inactive")]


def test_no_for_fires_at_once_and_a_vanished_series_resolves() -> None:
    m = Machine(cpu_rule(**{"for": "0s"}))
    assert m.tick(T0, seen(95, fires=True)) == [("inactive", "firing")]
    # The series left the window: its alert resolves and the rule has no data.
    assert m.tick(T0 + MIN, []) == [("firing", "resolved"), ("inactive", "nodata")]


def test_hysteresis_holds_and_keep_firing_for_delays_the_resolve() -> None:
    m = Machine(cpu_rule(**{"for": "0s", "keep_firing_for": "2m"}))
    m.tick(T0, seen(95, fires=True))
    # Below the firing threshold but still on the firing side of the resolve one.
    assert m.tick(T0 + MIN, seen(85, fires=False, holds=True)) == []
    assert m.tick(T0 + 2 * MIN, seen(50, fires=False)) == []
    assert m.tick(T0 + 3 * MIN - 1, seen(50, fires=False)) == []
    assert m.tick(T0 + 3 * MIN, seen(50, fires=False)) == [("firing", "resolved")]


def test_min_firing_time_damps_a_single_dip() -> None:
    m = Machine(cpu_rule(**{"for": "0s"}), Damping(min_firing_ms=MIN))
    m.tick(T0, seen(95, fires=True))
    assert m.tick(T0 + 30_000, seen(10, fires=False)) == []
    assert m.tick(T0 + MIN, seen(10, fires=False)) == [("firing", "resolved")]


def test_flapping_alert_is_held_firing_and_marked() -> None:
    damping = Damping(min_firing_ms=0, flap_threshold=3, flap_hold_ms=5 * MIN)
    m = Machine(cpu_rule(**{"for": "0s"}), damping)
    at = T0
    for _ in range(2):
        m.tick(at, seen(95, fires=True))
        m.tick(at + MIN, seen(10, fires=False))
        at += 2 * MIN
    m.tick(at, seen(95, fires=True))  # the third firing within the window
    assert m.tick(at + MIN, seen(10, fires=False)) == []
    assert m.state() is AlertState.FIRING
    fp = labels_fingerprint(alert_labels(m.rule, HOST))
    assert m.slots[fp].alert.annotations["flapping"] == "true"
    assert m.tick(at + 5 * MIN, seen(10, fires=False)) == [("firing", "resolved")]


def test_a_new_firing_drops_the_previous_acknowledgement() -> None:
    m = Machine(cpu_rule(**{"for": "0s"}))
    m.tick(T0, seen(95, fires=True))
    fp = labels_fingerprint(alert_labels(m.rule, HOST))
    slot = m.slots[fp]
    slot.alert = replace(slot.alert, acknowledged_by="ana", acknowledgement_note="on it")
    m.tick(T0 + MIN, seen(10, fires=False))
    m.tick(T0 + 2 * MIN, seen(95, fires=True))
    assert m.log[-1].alert.acknowledged_by is None
    assert m.log[-1].alert.acknowledgement_note is None


def test_nodata_and_error_are_rule_level_states() -> None:
    m = Machine(cpu_rule(no_data="nodata"))
    assert m.tick(T0, []) == [("inactive", "nodata")]
    assert m.log[-1].alert.labels["scope"] == "rule"
    assert m.tick(T0 + MIN, [], error="boom") == [("nodata", "error")]
    assert m.log[-1].alert.annotations["error"] == "boom"
    assert m.tick(T0 + 2 * MIN, seen(10, fires=False)) == [("error", "inactive")]
