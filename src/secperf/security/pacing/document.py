"""The ``scans.pacing`` document: how one scan shared the machine, as typed dataclasses.

``PacingDocument.to_document()`` gives the JSON stored by
``Store.record_scan_pacing`` and served in the API's ScanJson ``pacing``;
``from_document`` reads it back (tolerating keys it does not know and missing
optional ones). ``summary`` is the one sentence every surface prints (the
scan's output, the alert context, ``secperf correlate``, the advice), so they
never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from secperf.security.pacing.priority import PriorityState

BUDGET_ON = "on"
BUDGET_OFF = "off"
BUDGET_NOT_CONFIGURED = "not_configured"
ACTIONS = ("pause", "fewer_workers", "batch_pause")


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _int(value: Any) -> int | None:
    number = _float(value)
    return None if number is None else int(number)


@dataclass(slots=True)
class GuardReport:
    """One guard of a scan: its level before, its quiet level and how far the scan moved it.

    ``peak_increase_pct`` and ``mean_increase_pct`` are measured against
    ``max(before, quiet)`` over the readings taken while the scan ran (for the
    host CPU guard: how much less CPU the other processes got).
    """

    series: str
    before: float | None = None
    quiet: float | None = None
    peak_increase_pct: float | None = None
    samples: int = 0
    mean_increase_pct: float | None = None

    def to_document(self) -> dict[str, Any]:
        return {
            "series": self.series,
            "before": self.before,
            "quiet": self.quiet,
            "peak_increase_pct": self.peak_increase_pct,
            "mean_increase_pct": self.mean_increase_pct,
            "samples": self.samples,
        }

    @classmethod
    def from_document(cls, data: dict[str, Any]) -> GuardReport:
        return cls(
            series=str(data.get("series", "")),
            before=_float(data.get("before")),
            quiet=_float(data.get("quiet")),
            peak_increase_pct=_float(data.get("peak_increase_pct")),
            samples=int(data.get("samples") or 0),
            mean_increase_pct=_float(data.get("mean_increase_pct")),
        )


@dataclass(slots=True)
class Stretch:
    """A stretch of time the scan was throttled one way, and why."""

    start_ms: int
    end_ms: int
    action: str
    reason: str

    @property
    def duration_ms(self) -> int:
        return max(0, self.end_ms - self.start_ms)

    def to_document(self) -> dict[str, Any]:
        return {
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "action": self.action,
            "reason": self.reason,
        }

    @classmethod
    def from_document(cls, data: dict[str, Any]) -> Stretch:
        return cls(
            start_ms=int(data.get("start_ms") or 0),
            end_ms=int(data.get("end_ms") or 0),
            action=str(data.get("action", "")),
            reason=str(data.get("reason", "")),
        )


@dataclass(slots=True)
class PacingDocument:
    """How a scan shared the machine (docs/security-performance-integration.md)."""

    priority: str = "normal"
    budget_state: str = BUDGET_NOT_CONFIGURED
    reason: str | None = None
    max_increase_pct: float = 10.0
    guards: list[GuardReport] = field(default_factory=list)
    throttled_ms: float = 0.0
    stretches: list[Stretch] = field(default_factory=list)
    deadline_ms: int | None = None
    deadline_reached: bool = False
    #: When the deadline was seen passed, how long after the scan began, and what was done.
    deadline_reached_ms: int | None = None
    deadline_after_ms: int | None = None
    deadline_action: str | None = None
    within_budget: bool | None = None
    #: What the workers ran with (``priority.PriorityState.to_document``); None: not read.
    priority_applied: dict[str, Any] | None = None
    #: The predicted duration the deadline was set from, and where it came from.
    predicted_ms: float | None = None
    prediction_basis: str | None = None

    def to_document(self) -> dict[str, Any]:
        """The JSON form: the contract's keys, ``priority_applied`` and the prediction used."""
        return {
            "priority": self.priority,
            "budget": {
                "state": self.budget_state,
                "reason": self.reason,
                "max_increase_pct": self.max_increase_pct,
                "guards": [g.to_document() for g in self.guards],
            },
            "throttled_ms": round(self.throttled_ms, 1),
            "stretches": [s.to_document() for s in self.stretches],
            "deadline_ms": self.deadline_ms,
            "deadline_reached": self.deadline_reached,
            "deadline_reached_ms": self.deadline_reached_ms,
            "deadline_after_ms": self.deadline_after_ms,
            "deadline_action": self.deadline_action,
            "within_budget": self.within_budget,
            "priority_applied": self.priority_applied,
            "predicted_ms": self.predicted_ms,
            "prediction_basis": self.prediction_basis,
        }

    @classmethod
    def from_document(cls, data: dict[str, Any]) -> PacingDocument:
        """Read a stored document back; unknown keys are ignored, missing ones default."""
        budget = data.get("budget") if isinstance(data.get("budget"), dict) else {}
        assert isinstance(budget, dict)
        within = data.get("within_budget")
        deadline = data.get("deadline_ms")
        applied = data.get("priority_applied")
        return cls(
            priority=str(data.get("priority", "normal")),
            budget_state=str(budget.get("state", BUDGET_NOT_CONFIGURED)),
            reason=budget.get("reason") if isinstance(budget.get("reason"), str) else None,
            max_increase_pct=_float(budget.get("max_increase_pct")) or 10.0,
            guards=[
                GuardReport.from_document(g)
                for g in budget.get("guards") or []
                if isinstance(g, dict)
            ],
            throttled_ms=_float(data.get("throttled_ms")) or 0.0,
            stretches=[
                Stretch.from_document(s) for s in data.get("stretches") or [] if isinstance(s, dict)
            ],
            deadline_ms=int(deadline) if isinstance(deadline, int | float) else None,
            deadline_reached=bool(data.get("deadline_reached")),
            deadline_reached_ms=_int(data.get("deadline_reached_ms")),
            deadline_after_ms=_int(data.get("deadline_after_ms")),
            deadline_action=data.get("deadline_action")
            if isinstance(data.get("deadline_action"), str)
            else None,
            within_budget=within if isinstance(within, bool) else None,
            priority_applied=applied if isinstance(applied, dict) else None,
            predicted_ms=_float(data.get("predicted_ms")),
            prediction_basis=data.get("prediction_basis")
            if isinstance(data.get("prediction_basis"), str)
            else None,
        )

    @property
    def throttled(self) -> bool:
        return self.throttled_ms > 0

    def summary(self) -> str:
        """One sentence: priority, whether and how long the scan was throttled, and why.

        A scan that ran past its deadline ends with "deadline passed after X s
        (predicted Y s): what was done", whatever the budget's state.
        """
        return self._pacing_sentence() + self._deadline_sentence()

    def _deadline_sentence(self) -> str:
        if not self.deadline_reached:
            return ""
        after = (
            f" after {self.deadline_after_ms / 1000:.1f} s"
            if self.deadline_after_ms is not None
            else ""
        )
        predicted = (
            f" (predicted {self.predicted_ms / 1000:.1f} s)"
            if self.predicted_ms is not None
            else ""
        )
        action = self.deadline_action or "throttling stopped"
        return f"; deadline passed{after}{predicted}: {action}"

    def _pacing_sentence(self) -> str:
        priority = f"{self.priority} priority"
        if self.priority_applied is not None:
            applied = PriorityState.from_document(self.priority_applied)
            if self.priority == "low" or applied.nice:
                priority += f" ({applied.describe()})"
        if self.budget_state == BUDGET_NOT_CONFIGURED:
            return f"{priority}, no impact budget" + (f" ({self.reason})" if self.reason else "")
        if self.budget_state == BUDGET_OFF:
            return f"{priority}, impact budget off: {self.reason or 'no reason recorded'}"
        budget = f"budget {self.max_increase_pct:g} %"
        if not self.throttled:
            verdict = (
                "within budget"
                if self.within_budget
                else "over budget"
                if self.within_budget is False
                else "budget not judged"
            )
            return f"{priority}, not throttled ({budget}, {verdict})"
        actions: dict[str, int] = {}
        for stretch in self.stretches:
            actions[stretch.action] = actions.get(stretch.action, 0) + 1
        how = ", ".join(f"{action} x{count}" for action, count in actions.items())
        why = self.stretches[0].reason if self.stretches else ""
        verdict = "within budget" if self.within_budget else "over budget"
        return (
            f"{priority}, throttled {self.throttled_ms / 1000:.1f} s ({how}; {budget}, "
            f"{verdict}): {why}"
        )


def pacing_of(document: dict[str, Any] | None) -> PacingDocument | None:
    """A stored ``scans.pacing`` document as a ``PacingDocument`` (None stays None)."""
    return None if document is None else PacingDocument.from_document(document)
