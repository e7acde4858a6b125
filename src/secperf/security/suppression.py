"""Inline suppressions that apply to every scanner: ``# secperf: ignore[RULE, ...]``.

Bandit's own ``# nosec`` (with or without rule ids) is honoured by bandit itself
and detect-secrets honours ``pragma: allowlist secret``; this module adds the
scanner-neutral comment. ``# secperf: ignore`` alone silences every rule on
that line; with a list, only the rules named (matched against the finding's
rule id, case-insensitively, with or without a ``tool/`` prefix).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from secperf.model import Finding

_IGNORE = re.compile(r"#\s*secperf:\s*ignore(?:\[(?P<rules>[^\]]*)\])?", re.IGNORECASE)


def _line_rules(content: bytes) -> dict[int, frozenset[str] | None]:
    """line number -> rules ignored there (None: every rule)."""
    if b"secperf" not in content:
        return {}
    found: dict[int, frozenset[str] | None] = {}
    text = content.decode("utf-8", errors="replace")
    for number, line in enumerate(text.splitlines(), start=1):
        match = _IGNORE.search(line)
        if match is None:
            continue
        rules = match.group("rules")
        if rules is None or not rules.strip():
            found[number] = None
        else:
            found[number] = frozenset(r.strip().lower() for r in rules.split(",") if r.strip())
    return found


def _rule_names(rule_id: str) -> set[str]:
    rule = rule_id.lower()
    return {rule, rule.rsplit("/", 1)[-1]}


def apply_inline_suppressions(
    content: bytes, findings: Iterable[Finding]
) -> tuple[list[Finding], int]:
    """Drop findings silenced by a ``secperf: ignore`` comment on their line.

    Returns the findings kept and how many were suppressed.
    """
    findings = list(findings)
    rules_by_line = _line_rules(content)
    if not rules_by_line:
        return findings, 0
    kept: list[Finding] = []
    for finding in findings:
        last = finding.end_line or finding.line
        silenced = False
        for line in range(finding.line, max(finding.line, last) + 1):
            if line not in rules_by_line:
                continue
            rules = rules_by_line[line]
            if rules is None or _rule_names(finding.rule_id) & rules:
                silenced = True
                break
        if not silenced:
            kept.append(finding)
    return kept, len(findings) - len(kept)
