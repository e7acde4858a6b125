"""Triage: people's decisions about findings, and what they mean at a given time.

A finding can be marked a false positive, or its risk accepted until a date
(SonarQube's "won't fix" with an expiry). An acceptance that has expired counts
as open again: the finding resurfaces and the gate can block on it.

``TriageDecision`` is the one triage model: the store returns it, the gate,
the reports, the validator, the advice and the API read it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from secperf.model import Finding


class TriageState(StrEnum):
    """Where a finding stands after triage."""

    OPEN = "open"
    FALSE_POSITIVE = "false_positive"
    ACCEPTED_RISK = "accepted_risk"
    FIXED = "fixed"


#: Every state's name, in the order error messages list them.
TRIAGE_STATES = tuple(state.value for state in TriageState)
#: States that set a finding aside: it does not count against gates or thresholds.
SET_ASIDE = (TriageState.FALSE_POSITIVE, TriageState.ACCEPTED_RISK)


def parse_state(value: TriageState | str) -> TriageState:
    """``value`` as a ``TriageState``; ValueError listing the states otherwise."""
    try:
        return TriageState(value)
    except ValueError:
        raise ValueError(
            f"unknown triage state {value!r}; expected one of {TRIAGE_STATES}"
        ) from None


@dataclass(frozen=True, slots=True)
class TriageDecision:
    """One decision about one finding (by fingerprint); ``reason`` is empty when none was given."""

    fingerprint: str
    state: TriageState
    author: str
    reason: str
    decided_ms: int
    expires_ms: int | None = None

    def expired(self, now_ms: int) -> bool:
        """Whether the decision's expiry has passed at ``now_ms``."""
        return self.expires_ms is not None and self.expires_ms <= now_ms


def effective_state(decision: TriageDecision | None, now_ms: int) -> TriageState:
    """The state that counts now: an expired decision no longer holds."""
    if decision is None or decision.expired(now_ms):
        return TriageState.OPEN
    return decision.state


def false_positive_rate(
    findings: Iterable[Finding], decisions: Mapping[str, TriageDecision], now_ms: int
) -> float:
    """Findings triaged as false positive / all findings of the scan (0 when none)."""
    total = 0
    false_positives = 0
    for finding in findings:
        total += 1
        state = effective_state(decisions.get(finding.fingerprint), now_ms)
        if state is TriageState.FALSE_POSITIVE:
            false_positives += 1
    return false_positives / total if total else 0.0


def expired_acceptances(decisions: Iterable[TriageDecision], now_ms: int) -> list[TriageDecision]:
    """Risk acceptances whose expiry has passed (they block again)."""
    return [d for d in decisions if d.state is TriageState.ACCEPTED_RISK and d.expired(now_ms)]
