"""Triage: people's decisions about findings, and what they mean at a given time.

A finding can be marked a false positive, or its risk accepted until a date
(SonarQube's "won't fix" with an expiry). An acceptance that has expired counts
as open again: the finding resurfaces and the gate can block on it.
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


@dataclass(frozen=True, slots=True)
class TriageDecision:
    """One decision about one finding (by fingerprint)."""

    fingerprint: str
    state: TriageState
    author: str
    reason: str
    decided_ms: int
    expires_ms: int | None = None

    def expired(self, now_ms: int) -> bool:
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
