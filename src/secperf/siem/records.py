"""``SiemRecord``: one security event as a SIEM sees it, before any wire format.

The forwarder turns bus events into records (``translate.py``); the CEF and ECS
formatters turn a record into text (``format_cef.py``, ``format_ecs.py``). A
record names its ``kind`` (one of ``SIEM_EVENT_KINDS``, what outputs select by)
and a ``key`` that is the same every time the same event is seen again (a
replayed event log, a restarted server), so a queue can refuse it twice.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from secperf.config.sections.siem import SIEM_EVENT_KINDS
from secperf.model import Finding, Severity
from secperf.security.redaction import redact_text

#: The vendor and product every format names.
VENDOR = "secperf"
PRODUCT = "secperf"


@dataclass(frozen=True, slots=True, kw_only=True)
class SiemRecord:
    """One security event for a SIEM, in secperf's terms.

    ``name`` is a short title (a CEF header's Name), ``message`` the sentence
    describing it; ``state`` what the event did (a triage state, an alert's
    new state, a gate verdict, a throttling action); ``reference`` the id of
    what it is about (a finding's fingerprint, an alert's fingerprint, a gate
    run id). Free text is redacted when a formatter writes it.
    """

    kind: str
    key: str
    ts_ms: int
    host: str
    name: str
    message: str
    severity: Severity
    target: str = ""
    scan_id: str = ""
    finding: Finding | None = None
    #: For findings: whether the baseline holds it (None: not a finding).
    baselined: bool | None = None
    rule: str = ""
    user: str = ""
    state: str = ""
    reason: str = ""
    #: ``success``, ``failure`` or ``unknown`` where an outcome applies (gates).
    outcome: str = ""
    reference: str = ""
    #: ``security`` or ``performance`` for alerts (their ``MetricKind``); else "".
    side: str = ""
    value: float | None = None
    labels: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in SIEM_EVENT_KINDS:
            raise ValueError(f"unknown SIEM event kind {self.kind!r}")


#: CEF's 0-10 severity scale for each of secperf's severities.
CEF_SEVERITY: dict[Severity, int] = {
    Severity.INFO: 1,
    Severity.LOW: 3,
    Severity.MEDIUM: 5,
    Severity.HIGH: 8,
    Severity.CRITICAL: 10,
}

#: RFC 5424 severity codes (0 emergency ... 7 debug) for secperf's severities.
SYSLOG_SEVERITY: dict[Severity, int] = {
    Severity.CRITICAL: 2,
    Severity.HIGH: 3,
    Severity.MEDIUM: 4,
    Severity.LOW: 5,
    Severity.INFO: 6,
}


@lru_cache(maxsize=8192)
def _redacted(text: str, filename: str = "") -> str:
    """``redact_text`` remembered per text: titles, states, targets and messages repeat.

    Held in this process's memory only, as the events themselves are.
    """
    return redact_text(text, filename=filename)


def _redacted_value(value: Any) -> Any:
    if isinstance(value, str):
        return _redacted(value)
    if isinstance(value, dict):
        return {key: _redacted_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_redacted_value(item) for item in value)
    return value


def _redacted_finding(finding: Finding) -> Finding:
    """``finding`` with every text field redacted, as ``scrub_finding`` does."""
    return dataclasses.replace(
        finding,
        message=_redacted(finding.message),
        snippet=None if finding.snippet is None else _redacted(finding.snippet, finding.path),
        help_url=None if finding.help_url is None else _redacted(finding.help_url),
        properties=_redacted_value(finding.properties),
    )


def redact_record(record: SiemRecord) -> SiemRecord:
    """``record`` with every free-text field passed through the redactor once more.

    Findings arrive redacted already (scanners redact at the source); a SIEM
    output is one more place a value could leave, so it is checked again here.
    """
    finding = record.finding
    return dataclasses.replace(
        record,
        name=_redacted(record.name),
        message=_redacted(record.message),
        reason=_redacted(record.reason),
        user=_redacted(record.user),
        state=_redacted(record.state),
        target=_redacted(record.target),
        labels={key: _redacted(value) for key, value in record.labels.items()},
        finding=None if finding is None else _redacted_finding(finding),
    )
