"""How the stored scans of a time window were paced: for ``correlate``, the advice, reports.

``throttling_in_window`` reads the scans that started in ``[since_ms, until_ms)``
and their pacing documents; ``ThrottlingWindow.sentence`` says in one line
whether and how long they were throttled and whether they kept their budget.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from secperf.security.pacing.document import BUDGET_ON, PacingDocument
from secperf.security.pacing.reading import ScanHistory
from secperf.timefmt import clock_seconds

#: Scans read at the most (the newest first).
SCANS_READ = 500


@dataclass(frozen=True, slots=True)
class PacedScan:
    """One stored scan and its pacing document."""

    scan_id: str
    target: str
    started_ms: int
    pacing: PacingDocument

    def to_json(self) -> dict[str, Any]:
        return {
            "scan_id": self.scan_id,
            "target": self.target,
            "started_ms": self.started_ms,
            "priority": self.pacing.priority,
            "budget_state": self.pacing.budget_state,
            "throttled_ms": self.pacing.throttled_ms,
            "within_budget": self.pacing.within_budget,
            "summary": self.pacing.summary(),
        }


@dataclass(frozen=True, slots=True)
class ThrottlingWindow:
    """The paced scans of a window (``scans``: every scan in it, paced or not)."""

    scans: int = 0
    paced: list[PacedScan] = field(default_factory=list)

    @property
    def throttled(self) -> list[PacedScan]:
        return [p for p in self.paced if p.pacing.throttled]

    @property
    def throttled_ms(self) -> float:
        return sum(p.pacing.throttled_ms for p in self.paced)

    @property
    def budgeted(self) -> list[PacedScan]:
        return [p for p in self.paced if p.pacing.budget_state == BUDGET_ON]

    @property
    def over_budget(self) -> list[PacedScan]:
        return [p for p in self.budgeted if p.pacing.within_budget is False]

    def to_json(self) -> dict[str, Any]:
        return {
            "scans": self.scans,
            "paced": len(self.paced),
            "throttled": len(self.throttled),
            "throttled_ms": self.throttled_ms,
            "over_budget": len(self.over_budget),
            "throttled_scans": [p.to_json() for p in self.throttled],
        }

    def sentence(self) -> str | None:
        """One line on the window's scans and their budget; None without pacing records."""
        if not self.paced:
            return None
        throttled = self.throttled
        low = sum(p.pacing.priority == "low" for p in self.paced)
        head = (
            f"{len(self.paced)} of {self.scans} scans in the window were paced ({low} at low"
            f" priority, {len(self.budgeted)} with the impact budget on)"
        )
        if not throttled:
            return head + "; none was throttled"
        longest = max(throttled, key=lambda p: p.pacing.throttled_ms)
        over = self.over_budget
        verdict = (
            f"; {len(over)} stayed over budget" if over else "; every budgeted scan kept its budget"
        )
        return (
            f"{head}; {len(throttled)} throttled, {self.throttled_ms / 1000:.1f} s in all "
            f"(longest {longest.pacing.throttled_ms / 1000:.1f} s, scan {longest.scan_id[:12]} "
            f"at {clock_seconds(longest.started_ms)}){verdict}"
        )


def throttling_in_window(
    store: ScanHistory, since_ms: int, until_ms: int, *, target: str | None = None
) -> ThrottlingWindow:
    """The scans that started in ``[since_ms, until_ms)`` and how they were paced."""
    records = [
        r
        for r in store.scans(limit=SCANS_READ, target=target, kind="scan")
        if since_ms <= r.started_ms < until_ms
    ]
    paced = [
        PacedScan(r.scan_id, r.target, r.started_ms, PacingDocument.from_document(r.pacing))
        for r in records
        if r.pacing is not None
    ]
    return ThrottlingWindow(len(records), paced)
