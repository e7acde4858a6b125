"""``StoredFinding``: a finding as read back from the store, with its triage.

Its own module, importing no database code, so the plain SQLite reader
(``store.sqlite_reader``) and the SQLAlchemy store return the same type.
"""

from __future__ import annotations

from dataclasses import dataclass

from secperf.model import Finding
from secperf.security.triage import TriageDecision, TriageState


@dataclass(frozen=True, slots=True)
class StoredFinding:
    """A finding of one scan with whether that scan saw it first and its triage."""

    scan_id: str
    finding: Finding
    is_new: bool
    triage_state: TriageState = TriageState.OPEN
    triage: TriageDecision | None = None
