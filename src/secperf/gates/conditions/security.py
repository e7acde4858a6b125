"""The gate's security conditions, over a scan compared with the baseline.

Only new findings count (findings the baseline does not hold), as SonarQube's
"new code" does; without a baseline file every finding is new, and the
evidence says so. Findings triaged as false positive, or whose risk was
accepted (and the acceptance has not expired), never count. A finding covered
by an active waiver makes its condition WAIVED rather than BLOCK; an expired
waiver blocks again and the evidence names its expiry and owner.

A scanner that could not do its job (it did not run, or checked none of its
files) is always named in the "scanners ran" evidence with why. Whether it
also makes its condition CANNOT_EVALUATE follows ``secperf scan``'s rule: only
when it was asked for explicitly (``requested_scanners``); a scanner enabled by
default only is reported as not checked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from secperf.config import GateConfig, ScanConfig
from secperf.gates.evidence import FindingRow, GateInputs, ScanEvidence
from secperf.gates.waivers import Waivers, describe, is_expired
from secperf.model import ConditionStatus, Finding, GateCondition, Severity
from secperf.security.triage import SET_ASIDE, TriageDecision, TriageState, effective_state
from secperf.timefmt import iso_date

CATEGORY = "security"
#: Findings listed one per line in a condition's evidence; the rest are counted.
EVIDENCE_ITEMS = 10


@dataclass(slots=True)
class SecurityConditions:
    """What the security side contributes: conditions, classified findings, notes."""

    conditions: list[GateCondition] = field(default_factory=list)
    rows: list[FindingRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def requested_scanners(scan: ScanConfig, osv_db: Path | None = None) -> frozenset[str]:
    """The scanners of ``[scan] scanners`` the gate was asked for explicitly.

    ``secperf scan`` exits 3 only for a scanner asked for by name
    (``--scanners``); one enabled by ``[scan] scanners`` alone that cannot run
    is reported and keeps the exit code. The gate takes no ``--scanners``: what
    asks for the dependency scanner is giving it OSV data (``--osv-db``,
    ``[scan.deps] osv_db`` or ``network = true``), as ``secperf scan --osv-db``
    enables it. Without OSV data (the default, offline) deps does not run and
    the gate says so, without a condition.
    """
    if "deps" in scan.scanners and (osv_db or scan.deps.osv_db or scan.deps.network):
        return frozenset({"deps"})
    return frozenset()


def classify(
    scan: ScanEvidence,
    triage: dict[str, TriageDecision] | None,
    waivers: Waivers,
    *,
    now: int,
    today: date,
) -> list[FindingRow]:
    """Every finding of the scan with whether it is new and whether it counts."""
    decisions = triage or {}
    rows: list[FindingRow] = []
    for finding in scan.findings:
        is_new = finding.fingerprint in scan.new_fingerprints
        state = effective_state(decisions.get(finding.fingerprint), now)
        if state in SET_ASIDE:
            decision = decisions[finding.fingerprint]
            rows.append(
                FindingRow(finding, is_new, state.value, f"{state.value} ({decision.author})")
            )
            continue
        waiver = waivers.for_finding(finding, today)
        if waiver is None:
            rows.append(FindingRow(finding, is_new, "open"))
        elif is_expired(waiver.expires, today):
            rows.append(FindingRow(finding, is_new, "waiver_expired", describe(waiver, today)))
        else:
            rows.append(FindingRow(finding, is_new, "waived", describe(waiver, today)))
    return rows


def _location(finding: Finding) -> str:
    return f"{finding.path}:{finding.line}" if finding.line else finding.path


def _item(row: FindingRow) -> str:
    f = row.finding
    text = f"{f.severity.value} {f.rule_id} at {_location(f)} [{f.fingerprint[:12]}]"
    if row.state == "waived":
        return f"{text}: WAIVED, {row.note}"
    if row.state == "waiver_expired":
        return f"{text}: BLOCKS, {row.note}"
    return text


def _evidence(head: str, rows: Sequence[FindingRow]) -> str:
    lines = [head]
    lines.extend(_item(r) for r in rows[:EVIDENCE_ITEMS])
    if len(rows) > EVIDENCE_ITEMS:
        lines.append(f"... and {len(rows) - EVIDENCE_ITEMS} more")
    return "\n".join(lines)


def _finding_condition(
    name: str,
    rows: Sequence[FindingRow],
    predicate: Callable[[FindingRow], bool],
    *,
    limit: int,
    threshold: str | int,
    what: str,
    baseline_note: str,
) -> GateCondition:
    """A condition "at most ``limit`` counted findings matching ``predicate``"."""
    matching = [r for r in rows if predicate(r) and r.state not in SET_ASIDE]
    counted = [r for r in matching if r.counts]
    waived = [r for r in matching if r.state == "waived"]
    if len(counted) > limit:
        status = ConditionStatus.BLOCK
        head = f"{len(counted)} {what} (at most {limit} allowed)"
    elif waived and len(counted) + len(waived) > limit:
        status = ConditionStatus.WAIVED
        head = f"{len(waived)} {what} waived, {len(counted)} not waived (at most {limit} allowed)"
    else:
        status = ConditionStatus.PASS
        head = f"{len(counted)} {what} (at most {limit} allowed)"
    if waived and status is not ConditionStatus.WAIVED:
        head += f"; {len(waived)} waived"
    if baseline_note:
        head += f"; {baseline_note}"
    shown = counted + waived
    return GateCondition(
        name=name,
        category=CATEGORY,
        status=status,
        measured=len(counted),
        threshold=threshold,
        evidence=_evidence(head, shown),
    )


def _cannot(name: str, why: str, threshold: str | float | None = None) -> GateCondition:
    return GateCondition(name, CATEGORY, ConditionStatus.CANNOT_EVALUATE, None, threshold, why)


def evaluate_security(
    inputs: GateInputs, config: GateConfig, waivers: Waivers, *, now: int, today: date
) -> SecurityConditions:
    """The security conditions of ``[gate]`` over the inputs' scan."""
    out = SecurityConditions()
    scan = inputs.scan
    fail_on = inputs.fail_on or config.fail_on
    if scan is None:
        why = inputs.scan_problem or "no scan result"
        out.conditions.append(_cannot("security scan", f"no scan to evaluate: {why}"))
        return out

    out.rows = classify(scan, dict(inputs.triage), waivers, now=now, today=today)
    rows = out.rows
    new_rows = [r for r in rows if r.is_new]
    ran = [s for s in scan.scanners if s not in scan.unavailable]
    baseline_note = (
        ""
        if scan.has_baseline
        else "no baseline (.secperf-baseline.json): every finding counts as new; "
        "`secperf baseline update` accepts the current ones"
    )

    # The scan itself: crashed scanners mean findings may be missing.
    unavailable = "; ".join(f"{k}: {v}" for k, v in sorted(scan.unavailable.items()))
    if scan.status == "failed" or scan.errors or not ran:
        problems: list[str] = []
        if scan.status == "failed":
            problems.append("the scan failed")
        if not ran:
            problems.append(f"no scanner could run ({unavailable or 'none configured'})")
        problems.extend(f"scanner error: {e}" for e in scan.errors[:EVIDENCE_ITEMS])
        if len(scan.errors) > EVIDENCE_ITEMS:
            problems.append(f"... and {len(scan.errors) - EVIDENCE_ITEMS} more scanner errors")
        out.conditions.append(
            GateCondition(
                "scanners ran",
                CATEGORY,
                ConditionStatus.CANNOT_EVALUATE,
                len(scan.errors),
                0,
                "\n".join(problems),
            )
        )
        if not ran:
            return out
    else:
        did = [s for s in ran if s not in scan.failed]
        evidence = f"{', '.join(did)} ran on {scan.metrics.files_scanned} files without error"
        if scan.failed:
            failed = "; ".join(f"{k}: {v}" for k, v in sorted(scan.failed.items()))
            evidence += f"; checked nothing: {failed}"
        if unavailable:
            evidence += f"; not run: {unavailable}"
        out.conditions.append(
            GateCondition("scanners ran", CATEGORY, ConditionStatus.PASS, 0, 0, evidence)
        )

    out.conditions.append(
        _finding_condition(
            f"new findings >= {fail_on.value}",
            new_rows,
            lambda r: r.finding.severity >= fail_on,
            limit=0,
            threshold=f"0 at or above {fail_on.value}",
            what=f"new findings at or above {fail_on.value}",
            baseline_note=baseline_note,
        )
    )
    for severity, limit in config.max_new.limits().items():
        out.conditions.append(
            _finding_condition(
                f"new {severity.value} findings",
                new_rows,
                lambda r, sev=severity: r.finding.severity == sev,  # type: ignore[misc]
                limit=limit,
                threshold=limit,
                what=f"new {severity.value} findings",
                baseline_note="",
            )
        )

    if not config.block_on_secrets:
        out.notes.append("secrets: not checked ([gate] block_on_secrets = false)")
    elif "secrets" not in scan.scanners:
        out.notes.append("secrets: not checked (the secrets scanner is not enabled in [scan])")
    elif "secrets" in scan.unavailable:
        out.conditions.append(
            _cannot(
                "new secrets",
                f"the secrets scanner could not run: {scan.unavailable['secrets']}",
                0,
            )
        )
    else:
        out.conditions.append(
            _finding_condition(
                "new secrets",
                new_rows,
                lambda r: r.finding.category == "secret",
                limit=0,
                threshold=0,
                what="new secrets",
                baseline_note="",
            )
        )

    if not config.block_on_fixable_deps:
        out.notes.append(
            "vulnerable dependencies: not checked ([gate] block_on_fixable_deps = false)"
        )
    elif "deps" not in scan.scanners:
        out.notes.append(
            "vulnerable dependencies: not checked (the scan did not include the deps scanner;"
            " see [scan] scanners)"
        )
    elif (problem := _could_not("deps", scan)) is not None:
        if "deps" in scan.requested:
            out.conditions.append(
                _cannot("fixable vulnerable dependencies", f"the deps scanner {problem}", 0)
            )
        else:
            out.notes.append(f"vulnerable dependencies: not checked (deps {problem})")
    else:
        out.conditions.append(
            _finding_condition(
                "fixable vulnerable dependencies",
                new_rows,
                _has_fix,
                limit=0,
                threshold=0,
                what="new vulnerable dependencies with a fixed version",
                baseline_note="",
            )
        )

    if config.min_coverage is None:
        out.notes.append(
            f"coverage: not enforced (measured {scan.metrics.scan_coverage_percent:.1f} %; "
            "set [gate] min_coverage)"
        )
    else:
        out.conditions.append(_coverage_condition(scan, config.min_coverage))

    if config.block_on_expired_acceptances:
        out.conditions.append(_expired_acceptances(rows, dict(inputs.triage), now, today, waivers))
    else:
        out.notes.append(
            "expired risk acceptances: not checked ([gate] block_on_expired_acceptances = false)"
        )
    return out


def _could_not(scanner: str, scan: ScanEvidence) -> str | None:
    """Why ``scanner`` did not do its job in ``scan`` ("did not run: ..."), or None."""
    if scanner in scan.unavailable:
        return f"did not run: {scan.unavailable[scanner]}"
    if scanner in scan.failed:
        return f"checked none of its files: {scan.failed[scanner]}"
    return None


def _has_fix(row: FindingRow) -> bool:
    finding = row.finding
    fixes = finding.properties.get("fixed_versions")
    return finding.category == "dependency" and isinstance(fixes, list) and bool(fixes)


#: How ``metrics.skip_reasons`` counts a scanner that did not run: ``NAME: unavailable``.
_UNAVAILABLE = ": unavailable"


def _coverage_condition(scan: ScanEvidence, minimum: float) -> GateCondition:
    """Coverage against ``[gate] min_coverage``, with the kinds of the files' skips.

    A scanner that did not run skips no file (coverage is over the files the
    scanners that ran read): its ``NAME: unavailable`` count is left out here,
    and the "scanners ran" evidence names it under "not run".
    """
    metrics = scan.metrics
    coverage = metrics.scan_coverage_percent
    evidence = (
        f"{metrics.files_scanned} of {metrics.eligible_files} eligible files scanned "
        f"({coverage:.1f} %)"
    )
    kinds = {k: n for k, n in metrics.skip_reasons.items() if not k.endswith(_UNAVAILABLE)}
    if kinds:
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(kinds.items()))
        evidence += f"; skipped: {reasons}"
    if metrics.eligible_files == 0:
        return _cannot("scan coverage", "no file to scan: the scan found no eligible file", minimum)
    status = ConditionStatus.PASS if coverage >= minimum else ConditionStatus.BLOCK
    return GateCondition("scan coverage", CATEGORY, status, round(coverage, 2), minimum, evidence)


def _expired_acceptances(
    rows: Sequence[FindingRow],
    triage: dict[str, TriageDecision],
    now: int,
    today: date,
    waivers: Waivers,
) -> GateCondition:
    """Findings still present whose accepted risk has expired (they count again)."""
    present = {r.finding.fingerprint: r for r in rows}
    expired = [
        d
        for d in triage.values()
        if d.state is TriageState.ACCEPTED_RISK and d.expired(now) and d.fingerprint in present
    ]
    items: list[FindingRow] = []
    for decision in expired:
        row = present[decision.fingerprint]
        expires = decision.expires_ms
        expiry = iso_date(expires) if expires is not None else "?"
        note = f"risk accepted by {decision.author} expired on {expiry}"
        if row.state == "waived":
            note += f"; {row.note}"
        items.append(FindingRow(row.finding, row.is_new, row.state, note))
    counted = [r for r in items if r.state != "waived"]
    waived = [r for r in items if r.state == "waived"]
    if counted:
        status = ConditionStatus.BLOCK
    elif waived:
        status = ConditionStatus.WAIVED
    else:
        status = ConditionStatus.PASS
    lines = [f"{len(counted)} findings whose accepted risk has expired"]
    for r in items[:EVIDENCE_ITEMS]:
        f = r.finding
        lines.append(f"{f.severity.value} {f.rule_id} at {_location(f)}: {r.note}")
    return GateCondition(
        "expired risk acceptances", CATEGORY, status, len(counted), 0, "\n".join(lines)
    )


__all__ = [
    "SecurityConditions",
    "Severity",
    "classify",
    "evaluate_security",
    "requested_scanners",
]
