"""The alert lifecycle as a pure state machine: no bus, no store, no clock.

One alert (a rule applied to one series' label set) moves::

    inactive -> pending (condition true, waiting ``for``) -> firing -> resolved
    pending -> inactive (condition false before ``for`` elapsed)

plus two rule-level states: ``nodata`` (no series matched in the window, for
rules with ``no_data = "nodata"``) and ``error`` (the evaluation raised). A
firing alert stays firing while ``holds`` (the resolve threshold, when set),
and for ``keep_firing_for`` after that.

Flapping is damped two ways (``Damping``): a firing alert stays firing at
least ``min_firing_ms``; and an alert that fired ``flap_threshold`` times
within ``flap_window_ms`` is *flapping*: it resolves only after its condition
has been false for ``flap_hold_ms`` (annotation ``flapping="true"`` meanwhile).

``advance_rule`` takes one rule's observations of one tick and returns the
transitions it caused; the engine publishes them as ``AlertChanged``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from secperf.alerts.evaluate import Observation
from secperf.alerts.rules import Rule, render_template
from secperf.model import Alert, AlertState, labels_fingerprint


@dataclass(frozen=True, slots=True)
class Damping:
    """How flapping is damped (see the module doc)."""

    min_firing_ms: int = 60_000
    flap_threshold: int = 3
    flap_window_ms: int = 30 * 60_000
    flap_hold_ms: int = 5 * 60_000


@dataclass
class AlertSlot:
    """The lifecycle's state for one alert: the alert plus what its next step needs."""

    alert: Alert
    rule: Rule
    series_labels: dict[str, str]
    last_true_ms: int | None = None
    fire_times: deque[int] = field(default_factory=deque)
    context_text: str | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    """One lifecycle change: the alert as it is now and the state it left."""

    alert: Alert
    previous_state: AlertState
    ts_ms: int


def alert_labels(rule: Rule, series_labels: dict[str, str]) -> dict[str, str]:
    """Series labels + rule labels + ``alertname`` and ``severity``."""
    labels = {**series_labels, **rule.labels}
    labels["alertname"] = rule.alertname
    labels["severity"] = rule.severity.value
    return labels


def _new_slot(
    rule: Rule, fp: str, labels: dict[str, str], series: dict[str, str], now: int
) -> AlertSlot:
    alert = Alert(
        fingerprint=fp,
        rule=rule.name,
        state=AlertState.INACTIVE,
        severity=rule.severity,
        kind=rule.metric_kind,
        labels=labels,
        updated_ms=now,
    )
    return AlertSlot(alert, rule, series)


def advance_rule(
    slots: dict[str, AlertSlot],
    rule: Rule,
    observations: Sequence[Observation],
    error: str | None,
    now: int,
    damping: Damping,
    *,
    waiting: str | None = None,
) -> list[Transition]:
    """One tick of ``rule``: update ``slots`` (by fingerprint) and return the transitions.

    ``waiting`` says why a rule whose series exist has no observation yet (not
    enough data); its ``nodata`` alert says so instead of "no series matched".
    """
    out: list[Transition] = []
    rule_fp = labels_fingerprint(alert_labels(rule, {"scope": "rule"}))
    if error is not None:
        _rule_state(slots, rule, rule_fp, AlertState.ERROR, now, error, out)
        return out
    seen: set[str] = set()
    for obs in observations:
        labels = alert_labels(rule, obs.labels)
        fp = labels_fingerprint(labels)
        seen.add(fp)
        slot = slots.get(fp)
        if slot is None:
            if not obs.fires:
                continue
            slot = slots[fp] = _new_slot(rule, fp, labels, dict(obs.labels), now)
        slot.rule = rule
        step(slot, obs, now, damping, out)
    for fp, slot in list(slots.items()):
        if slot.rule.name != rule.name or fp in seen or fp == rule_fp:
            continue
        # A series gone from the window: its condition no longer holds.
        step(slot, None, now, damping, out)
    if not observations and rule.no_data == "nodata":
        _rule_state(slots, rule, rule_fp, AlertState.NODATA, now, None, out, waiting)
    else:
        slot = slots.get(rule_fp)
        if slot is not None and slot.alert.state in (AlertState.NODATA, AlertState.ERROR):
            transition(slot, AlertState.INACTIVE, now, None, out)
    return out


def _rule_state(
    slots: dict[str, AlertSlot],
    rule: Rule,
    fp: str,
    state: AlertState,
    now: int,
    error: str | None,
    out: list[Transition],
    waiting: str | None = None,
) -> None:
    """Put the rule-level alert (``scope="rule"``) into ``nodata`` or ``error``."""
    slot = slots.get(fp)
    if slot is None:
        labels = alert_labels(rule, {"scope": "rule"})
        slot = slots[fp] = _new_slot(rule, fp, labels, {}, now)
    summary = (
        f"{rule.name}: evaluation failed: {error}"
        if state is AlertState.ERROR
        else f"{rule.name}: {waiting}"
        if waiting is not None
        else f"{rule.name}: no series of {rule.metric} matched in the last window"
    )
    if slot.alert.state is state:
        # Still waiting for data: the count moves on in memory, with no new transition.
        if waiting is not None and slot.alert.annotations.get("summary") != summary:
            slot.alert = replace(
                slot.alert, annotations={**slot.alert.annotations, "summary": summary}
            )
        return
    annotations = dict(slot.alert.annotations)
    if error is not None:
        annotations["error"] = error[:500]
    else:
        annotations.pop("error", None)
    annotations["summary"] = summary
    slot.alert = replace(slot.alert, annotations=annotations)
    transition(slot, state, now, None, out)


def step(
    slot: AlertSlot,
    obs: Observation | None,
    now: int,
    damping: Damping,
    out: list[Transition],
) -> None:
    """Advance one alert by one observation (None: its series left the window)."""
    rule = slot.rule
    state = slot.alert.state
    value = obs.value if obs is not None else None
    fires = obs is not None and obs.fires
    holds = obs is not None and obs.holds
    if obs is not None:
        slot.alert = replace(slot.alert, value=value)
        if obs.extra:
            slot.alert = replace(slot.alert, annotations={**slot.alert.annotations, **obs.extra})
    if state in (AlertState.INACTIVE, AlertState.RESOLVED):
        if fires:
            slot.last_true_ms = now
            if rule.for_ms <= 0:
                transition(slot, AlertState.FIRING, now, value, out)
            else:
                transition(slot, AlertState.PENDING, now, value, out)
    elif state is AlertState.PENDING:
        if not fires:
            transition(slot, AlertState.INACTIVE, now, value, out)
            return
        slot.last_true_ms = now
        since = slot.alert.active_since_ms or now
        if now - since >= rule.for_ms:
            transition(slot, AlertState.FIRING, now, value, out)
    elif state is AlertState.FIRING:
        if holds:
            slot.last_true_ms = now
            return
        keep = rule.keep_firing_for_ms
        flapping = is_flapping(slot, now, damping)
        if flapping:
            keep = max(keep, damping.flap_hold_ms)
        last_true = slot.last_true_ms or slot.alert.fired_at_ms or now
        fired_at = slot.alert.fired_at_ms or now
        if now - last_true < keep or now - fired_at < damping.min_firing_ms:
            if flapping and slot.alert.annotations.get("flapping") != "true":
                slot.alert = replace(
                    slot.alert, annotations={**slot.alert.annotations, "flapping": "true"}
                )
            return
        transition(slot, AlertState.RESOLVED, now, value, out)


def is_flapping(slot: AlertSlot, now: int, damping: Damping) -> bool:
    """Whether the alert fired ``flap_threshold`` times within ``flap_window_ms``."""
    while slot.fire_times and slot.fire_times[0] < now - damping.flap_window_ms:
        slot.fire_times.popleft()
    return len(slot.fire_times) >= damping.flap_threshold


def transition(
    slot: AlertSlot,
    new: AlertState,
    now: int,
    value: float | None,
    out: list[Transition],
) -> None:
    """Move the alert to ``new`` (timestamps, acknowledgement, annotations) and record it."""
    old = slot.alert
    rule = slot.rule
    changes: dict[str, Any] = {"state": new, "updated_ms": now}
    if value is not None:
        changes["value"] = value
    if new in (AlertState.PENDING, AlertState.NODATA, AlertState.ERROR):
        changes["active_since_ms"] = now
        changes["fired_at_ms"] = None
        changes["resolved_at_ms"] = None
    if new is AlertState.FIRING:
        if old.state is not AlertState.PENDING:
            changes["active_since_ms"] = now
        changes["fired_at_ms"] = now
        changes["resolved_at_ms"] = None
        # A new incident: an earlier acknowledgement does not carry over.
        changes["acknowledged_by"] = None
        changes["acknowledgement_note"] = None
        slot.fire_times.append(now)
    if new is AlertState.RESOLVED:
        changes["resolved_at_ms"] = now
    if new in (AlertState.PENDING, AlertState.FIRING):
        annotations = {
            k: v
            for k, v in old.annotations.items()
            if k not in ("flapping", "summary", "context", "error")
        }
        shown = value if value is not None else old.value
        for key, text in rule.annotations.items():
            annotations[key] = render_template(text, shown, old.labels)
        annotations.setdefault(
            "summary",
            render_template(
                f"{rule.name}: {rule.metric} {rule.aggregation} {{{{ $value }}}} "
                f"{rule.op} {rule.threshold:g}",
                shown,
                old.labels,
            ),
        )
        changes["annotations"] = annotations
    slot.alert = replace(old, **changes)
    out.append(Transition(slot.alert, old.state, now))
