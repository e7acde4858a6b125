"""One way to make a finding in a test: every field has a plain default."""

from __future__ import annotations

from typing import Any

from secperf.model import Finding, Severity, make_fingerprint


def make_finding(
    rule_id: str = "B101",
    path: str = "app.py",
    severity: Severity = Severity.MEDIUM,
    *,
    fingerprint: str | None = None,
    scanner: str = "bandit",
    message: str | None = None,
    line: int = 1,
    **fields: Any,
) -> Finding:
    """A finding of ``rule_id`` at ``path``; the fingerprint follows rule, path and line.

    ``fields`` sets any other field of ``Finding`` (``category``, ``snippet``,
    ``cwe``, ``properties`` ...).
    """
    return Finding(
        fingerprint=fingerprint or make_fingerprint(rule_id, path, f"{rule_id}:{line}"),
        rule_id=rule_id,
        scanner=scanner,
        severity=severity,
        message=message if message is not None else f"{rule_id} in {path}",
        path=path,
        line=line,
        **fields,
    )
