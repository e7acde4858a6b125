"""The compliance report's data: every section computed once from the store.

``collect_report`` reads the store for one period and scope and returns the
report's ``data`` (plain JSON-ready values); the renderers only lay it out and
the digest hashes it. Counts reuse the definitions of ``security.series``
(violations, false positives, accepted risks, the false-positive rate) and
the store's effective triage state, so a number here equals the one
``secperf findings list`` and the API show for the same scan.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from secperf import __version__
from secperf.compliance.history import FindingLife, complete_scans, finding_lives
from secperf.compliance.mapping import (
    CWE_TOP25_2024,
    CWE_TOP25_EDITION,
    OWASP_2021,
    OWASP_EDITION,
    owasp_category,
)
from secperf.compliance.period import DAY_MS, Period
from secperf.config.sections.report import ObjectiveConfig, ReportConfig
from secperf.model import GateVerdict, Severity
from secperf.security.series import CountedFinding, count_findings
from secperf.security.triage import TriageState, effective_state
from secperf.store import Store
from secperf.store.scan_records import ScanRecord
from secperf.store.stored_finding import StoredFinding

#: Version of the data's layout; a reader checks it before reading further.
FORMAT_VERSION = 1
#: Most gate runs read for one report.
MAX_GATE_RUNS = 100_000
#: Most steps an objective's attainment is computed over (the step widens to fit).
OBJECTIVE_STEPS = 20_000
#: The shortest step of an objective (one minute: the finest downsampling tier).
MIN_OBJECTIVE_STEP_MS = 60_000
#: Age buckets of open findings, in days: [low, high).
AGE_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("< 7 d", 0, 7),
    ("7-30 d", 7, 30),
    ("30-90 d", 30, 90),
    ("90-180 d", 90, 180),
    (">= 180 d", 180, None),
)
SEVERITIES = tuple(s.value for s in Severity)


@dataclass(frozen=True, slots=True)
class ReportInputs:
    """What a report is made of besides the store: its period, scope and policy."""

    period: Period
    target: str | None = None
    config: ReportConfig = field(default_factory=ReportConfig)
    #: Scanner id -> version as the cache key uses it (empty when not known here).
    scanner_versions: Mapping[str, str] = field(default_factory=dict)
    #: SHA-256 of the configuration as exported (None when not known here).
    config_hash: str | None = None
    generated_ms: int = 0


def _days(ms: float) -> float:
    return round(ms / DAY_MS, 2)


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(float(value), digits)


# --------------------------------------------------------------------------- scans


def _targets(store: Store, inputs: ReportInputs) -> list[str]:
    if inputs.target is not None:
        return [inputs.target]
    # Every target scanned up to the period's end: one not scanned in the period
    # still has the findings its last scan left open (its state at the end).
    found = {
        r.target
        for r in store.scans(limit=1_000_000)
        if r.target and r.started_ms <= inputs.period.until_ms
    }
    return sorted(found)


def _cadence(target: str, scans: Sequence[ScanRecord], period: Period) -> dict[str, Any]:
    in_period = [r for r in scans if period.holds(r.started_ms)]
    ran = [r for r in in_period if not r.is_import]
    scanned_days = {r.started_ms - r.started_ms % DAY_MS for r in ran}
    days = period.days()
    coverage = [
        {
            "scan_id": r.scan_id,
            "at_ms": r.finished_ms or r.started_ms,
            "coverage_percent": _round(r.metrics.scan_coverage_percent),
        }
        for r in sorted(ran, key=lambda r: r.started_ms)
        if r.complete and r.metrics is not None
    ]
    values = [c["coverage_percent"] for c in coverage if c["coverage_percent"] is not None]
    return {
        "target": target,
        "scans": len(ran),
        "complete_scans": sum(1 for r in ran if r.complete),
        "imports": len(in_period) - len(ran),
        "days": len(days),
        "days_without_scan": sum(1 for d in days if d not in scanned_days),
        "last_scan_ms": max((r.started_ms for r in ran), default=None),
        "coverage": coverage,
        "coverage_min_percent": min(values) if values else None,
        "coverage_last_percent": values[-1] if values else None,
    }


# --------------------------------------------------------------------------- findings


def _latest_complete(scans: Sequence[ScanRecord]) -> ScanRecord | None:
    return scans[-1] if scans else None


def _finding_item(
    row: StoredFinding, life: FindingLife | None, until_ms: int, target: str
) -> dict[str, Any]:
    finding = row.finding
    first = life.first_seen_ms if life is not None else None
    category = owasp_category(finding.cwe)
    return {
        "fingerprint": finding.fingerprint,
        "target": target,
        "rule_id": finding.rule_id,
        "scanner": finding.scanner,
        "category": finding.category,
        "severity": finding.severity.value,
        "cwe": finding.cwe,
        "owasp": category.id if category is not None else None,
        "path": finding.path,
        "line": finding.line,
        "message": finding.message,
        "state": row.triage_state.value,
        "is_new": row.is_new,
        "first_seen_ms": first,
        "age_days": _days(until_ms - first) if first is not None else None,
    }


def _findings_section(items: list[dict[str, Any]], rows: list[StoredFinding]) -> dict[str, Any]:
    counts = count_findings(
        CountedFinding(r.finding.severity.value, r.finding.category, r.is_new, r.triage_state)
        for r in rows
    )
    violations = [i for i in items if i["state"] not in _SET_ASIDE_VALUES]
    by_age: dict[str, dict[str, int]] = {
        label: dict.fromkeys(SEVERITIES, 0) for label, *_ in AGE_BUCKETS
    }
    for item in violations:
        age = item["age_days"] or 0.0
        for label, low, high in AGE_BUCKETS:
            if age >= low and (high is None or age < high):
                by_age[label][item["severity"]] += 1
                break
    return {
        "findings": counts.findings,
        "violations": counts.violations,
        "new_violations": counts.new_violations,
        "false_positives": counts.false_positives,
        "accepted_risks": counts.accepted_risks,
        "false_positive_rate": round(counts.false_positive_rate, 4),
        "by_severity": {s: counts.violations_by_severity.get(s, 0) for s in SEVERITIES},
        "by_category": dict(sorted(counts.violations_by_category.items())),
        "by_age": by_age,
        "items": items,
    }


_SET_ASIDE_VALUES = (TriageState.FALSE_POSITIVE.value, TriageState.ACCEPTED_RISK.value)


def _owasp_section(items: list[dict[str, Any]]) -> dict[str, Any]:
    violations = [i for i in items if i["state"] not in _SET_ASIDE_VALUES]
    per_category: Counter[str] = Counter()
    unmapped: Counter[int] = Counter()
    without_cwe = 0
    for item in violations:
        cwe = item["cwe"]
        if cwe is None:
            without_cwe += 1
        elif item["owasp"] is None:
            unmapped[cwe] += 1
        else:
            per_category[item["owasp"]] += 1
    top25_counts: Counter[int] = Counter(i["cwe"] for i in violations if i["cwe"] is not None)
    return {
        "owasp_edition": OWASP_EDITION,
        "owasp": [
            {
                "id": c.id,
                "name": c.name,
                "label": c.label,
                "mitre_category": f"CWE-{c.mitre_category}",
                "violations": per_category.get(c.id, 0),
                "cwes": sorted(
                    {i["cwe"] for i in violations if i["owasp"] == c.id and i["cwe"] is not None}
                ),
            }
            for c in OWASP_2021
        ],
        "unmapped": [{"cwe": cwe, "violations": n} for cwe, n in sorted(unmapped.items())],
        "without_cwe": without_cwe,
        "cwe_top25_edition": CWE_TOP25_EDITION,
        "cwe_top25": [
            {"rank": rank, "cwe": cwe, "name": name, "violations": top25_counts.get(cwe, 0)}
            for rank, cwe, name in CWE_TOP25_2024
        ],
    }


# --------------------------------------------------------------------------- remediation


def _remediation_section(
    lives: list[FindingLife],
    states: Mapping[str, str],
    config: ReportConfig,
    period: Period,
) -> dict[str, Any]:
    sla = config.remediation_sla
    per_severity: dict[str, dict[str, Any]] = {}
    breaches: list[dict[str, Any]] = []
    durations: dict[str, list[float]] = {s: [] for s in SEVERITIES}
    within: Counter[str] = Counter()
    for life in lives:
        severity = life.finding.severity.value
        deadline = sla.deadline_ms(severity)
        base = {
            "fingerprint": life.finding.fingerprint,
            "target": life.target,
            "rule_id": life.finding.rule_id,
            "severity": severity,
            "path": life.finding.path,
            "line": life.finding.line,
            "first_seen_ms": life.first_seen_ms,
            "sla_days": _days(deadline) if deadline is not None else None,
        }
        if life.fixed_ms is not None and life.fixed_ms <= period.until_ms:
            if not period.holds(life.fixed_ms):
                continue
            took = life.fixed_ms - life.first_seen_ms
            durations[severity].append(took / DAY_MS)
            if deadline is not None and took > deadline:
                breaches.append(
                    {**base, "status": "fixed late", "fixed_ms": life.fixed_ms, "days": _days(took)}
                )
            else:
                within[severity] += 1
            continue
        # Still there at the end of the period: a breach once past its deadline,
        # unless triage set it aside (a false positive or an accepted risk).
        open_for = period.until_ms - life.first_seen_ms
        state = states.get(life.finding.fingerprint, TriageState.OPEN.value)
        if deadline is not None and open_for > deadline and state not in _SET_ASIDE_VALUES:
            breaches.append(
                {**base, "status": "open past SLA", "fixed_ms": None, "days": _days(open_for)}
            )
    for severity in SEVERITIES:
        taken = durations[severity]
        deadline = sla.deadline_ms(severity)
        per_severity[severity] = {
            "sla_days": _days(deadline) if deadline is not None else None,
            "fixed": len(taken),
            "fixed_within_sla": within[severity],
            "median_days": _round(statistics.median(taken)) if taken else None,
            "max_days": _round(max(taken)) if taken else None,
            "breaches": sum(1 for b in breaches if b["severity"] == severity),
        }
    breaches.sort(key=lambda b: (-Severity(b["severity"]).rank, -b["days"], b["fingerprint"]))
    return {"per_severity": per_severity, "breaches": breaches}


# --------------------------------------------------------------------------- triage, secrets, deps


def _triage_section(
    store: Store, lives: Mapping[str, FindingLife], period: Period
) -> dict[str, Any]:
    accepted: list[dict[str, Any]] = []
    expired: list[dict[str, Any]] = []
    for fingerprint, decision in sorted(store.triage_all().items()):
        life = lives.get(fingerprint)
        if life is None or decision.state is not TriageState.ACCEPTED_RISK:
            continue
        entry = {
            "fingerprint": fingerprint,
            "target": life.target,
            "rule_id": life.finding.rule_id,
            "severity": life.finding.severity.value,
            "path": life.finding.path,
            "owner": decision.author,
            "reason": decision.reason,
            "decided_ms": decision.decided_ms,
            "expires_ms": decision.expires_ms,
            "expired": decision.expired(period.until_ms),
        }
        accepted.append(entry)
        if period.holds(decision.expires_ms):
            expired.append(entry)
    return {"accepted_risks": accepted, "expired_in_period": expired}


def _life_state(life: FindingLife, states: Mapping[str, str], until_ms: int) -> str:
    if life.fixed_ms is not None and life.fixed_ms <= until_ms:
        return TriageState.FIXED.value
    return states.get(life.finding.fingerprint, TriageState.OPEN.value)


def _alive_in(life: FindingLife, period: Period) -> bool:
    """Whether ``life`` was there at some time of ``period``.

    A finding still open at the period's end counts even when no scan ran in the
    period: it was carried into it, not fixed.
    """
    return life.first_seen_ms <= period.until_ms and (
        life.fixed_ms is None or life.fixed_ms >= period.since_ms
    )


def _secrets_section(
    lives: list[FindingLife], states: Mapping[str, str], period: Period
) -> list[dict[str, Any]]:
    # The snippet of a secret finding is the redactor's preview (AKIA****MPLE):
    # the store never holds a value, so the report cannot show one.
    return [
        {
            "fingerprint": life.finding.fingerprint,
            "target": life.target,
            "rule_id": life.finding.rule_id,
            "kind": str(life.finding.properties.get("secret_type") or life.finding.rule_id),
            "severity": life.finding.severity.value,
            "path": life.finding.path,
            "line": life.finding.line,
            "preview": life.finding.snippet,
            "first_seen_ms": life.first_seen_ms,
            "fixed_ms": life.fixed_ms,
            "state": _life_state(life, states, period.until_ms),
        }
        for life in lives
        if life.finding.category == "secret" and _alive_in(life, period)
    ]


def _dependencies_section(
    lives: list[FindingLife], states: Mapping[str, str], period: Period
) -> list[dict[str, Any]]:
    out = []
    for life in lives:
        finding = life.finding
        if finding.category != "dependency" or not _alive_in(life, period):
            continue
        props = finding.properties
        fixed = props.get("fixed_versions")
        out.append(
            {
                "fingerprint": finding.fingerprint,
                "target": life.target,
                "package": str(props.get("package") or ""),
                "installed_version": str(props.get("installed_version") or ""),
                "advisory": finding.rule_id,
                "aliases": [str(a) for a in props.get("aliases") or []],
                "severity": finding.severity.value,
                "fixed_versions": [str(v) for v in fixed] if isinstance(fixed, list) else [],
                "path": finding.path,
                "state": _life_state(life, states, period.until_ms),
            }
        )
    out.sort(key=lambda d: (-Severity(str(d["severity"])).rank, str(d["package"]), d["advisory"]))
    return out


# --------------------------------------------------------------------------- gates


def _gates_section(store: Store, targets: Sequence[str], inputs: ReportInputs) -> dict[str, Any]:
    period = inputs.period
    runs = [
        r
        for r in store.gate_runs(limit=MAX_GATE_RUNS, target=inputs.target)
        if period.holds(r.started_ms)
        and (inputs.target is not None or r.target in targets or not targets)
    ]
    verdicts = Counter(r.verdict.value for r in runs)
    reasons: Counter[str] = Counter()
    for run in runs:
        if run.verdict is not GateVerdict.BLOCK:
            continue
        for condition in run.conditions:
            if condition.status.value == "block":
                reasons[condition.name] += 1
    total = len(runs)
    return {
        "runs": total,
        "pass": verdicts.get("pass", 0),
        "block": verdicts.get("block", 0),
        "cannot_evaluate": verdicts.get("cannot_evaluate", 0),
        "pass_rate": round(verdicts.get("pass", 0) / total, 4) if total else None,
        "block_rate": round(verdicts.get("block", 0) / total, 4) if total else None,
        "block_reasons": [{"condition": name, "runs": n} for name, n in reasons.most_common()],
        "run_ids": sorted(r.run_id for r in runs),
    }


# --------------------------------------------------------------------------- objectives


def _objective(store: Store, objective: ObjectiveConfig, period: Period) -> dict[str, Any]:
    equal = {m.name: m.value for m in objective.matchers if m.op == "="}
    span = period.until_ms - period.since_ms + 1
    step = max(MIN_OBJECTIVE_STEP_MS, math.ceil(span / OBJECTIVE_STEPS))
    found = store.query(
        objective.metric, equal or None, period.since_ms, period.until_ms, step_ms=step, tiers=True
    )
    steps = met = series = 0
    for points in found:
        if not all(m.matches(points.labels) for m in objective.matchers):
            continue
        series += 1
        for value in points.values.tolist():
            steps += 1
            ok = (objective.max is None or value <= objective.max) and (
                objective.min is None or value >= objective.min
            )
            met += int(ok)
    attainment = round(100.0 * met / steps, 2) if steps else None
    return {
        "title": objective.title,
        "metric": objective.metric,
        "matchers": [str(m) for m in objective.matchers],
        "max": objective.max,
        "min": objective.min,
        "target_pct": objective.target_pct,
        "series": series,
        "steps": steps,
        "step_ms": step,
        "attainment_pct": attainment,
        "met": None if attainment is None else attainment >= objective.target_pct,
    }


# --------------------------------------------------------------------------- cost


def _pacing_fields(pacing: Mapping[str, Any] | None) -> dict[str, Any]:
    if pacing is None:
        return {"budget": "not recorded", "within_budget": None, "throttled_ms": None}
    within = pacing.get("within_budget")
    budget = pacing.get("budget")
    state = budget.get("state") if isinstance(budget, Mapping) else None
    throttled = pacing.get("throttled_ms")
    return {
        "budget": str(state) if state else "not recorded",
        "within_budget": within if isinstance(within, bool) else None,
        "throttled_ms": float(throttled) if isinstance(throttled, int | float) else None,
    }


def _cost_section(scans: Sequence[ScanRecord], period: Period) -> dict[str, Any]:
    rows = []
    for r in scans:
        if r.is_import or not period.holds(r.started_ms):
            continue
        duration = r.metrics.scan_duration_ms if r.metrics is not None else None
        if duration is None and r.finished_ms is not None:
            duration = float(r.finished_ms - r.started_ms)
        cpu = (
            r.cost.cpu_seconds
            if r.cost is not None
            else (r.metrics.cpu_seconds if r.metrics is not None else None)
        )
        rows.append(
            {
                "scan_id": r.scan_id,
                "target": r.target,
                "started_ms": r.started_ms,
                "duration_ms": _round(duration, 1),
                "cpu_s": _round(cpu, 3),
                **_pacing_fields(r.pacing),
            }
        )
    rows.sort(key=lambda x: (x["started_ms"], x["scan_id"]))
    return {
        "scans": rows,
        "total_cpu_s": _round(sum(x["cpu_s"] or 0.0 for x in rows), 3),
        "total_duration_ms": _round(sum(x["duration_ms"] or 0.0 for x in rows), 1),
        "within_budget": sum(1 for x in rows if x["within_budget"] is True),
        "over_budget": sum(1 for x in rows if x["within_budget"] is False),
        "budget_off_or_not_recorded": sum(1 for x in rows if x["within_budget"] is None),
        "throttled_ms": _round(sum(x["throttled_ms"] or 0.0 for x in rows), 1),
    }


# --------------------------------------------------------------------------- the report


def collect_report(store: Store, inputs: ReportInputs) -> dict[str, Any]:
    """The report's data for ``inputs``' period and scope (JSON-ready, hashable as is)."""
    period = inputs.period
    targets = _targets(store, inputs)
    cadence: list[dict[str, Any]] = []
    items: list[dict[str, Any]] = []
    rows: list[StoredFinding] = []
    all_lives: list[FindingLife] = []
    states: dict[str, str] = {}
    latest_scans: dict[str, str | None] = {}
    considered: list[ScanRecord] = []
    for target in targets:
        scans = complete_scans(store, target, period.until_ms)
        every = [
            r for r in store.scans(limit=1_000_000, target=target) if period.holds(r.started_ms)
        ]
        considered.extend(every)
        cadence.append(_cadence(target, every, period))
        lives = finding_lives(store, target, scans, period.since_ms, period.until_ms)
        all_lives.extend(lives)
        by_fp = {life.finding.fingerprint: life for life in lives}
        latest = _latest_complete(scans)
        latest_scans[target] = latest.scan_id if latest is not None else None
        if latest is None:
            continue
        latest_rows = store.findings(scan_id=latest.scan_id, limit=None, now_ms=period.until_ms)
        rows.extend(latest_rows)
        for row in latest_rows:
            states[row.finding.fingerprint] = row.triage_state.value
            items.append(
                _finding_item(row, by_fp.get(row.finding.fingerprint), period.until_ms, target)
            )
    # Triage of findings no longer reported still counts for their past (fixed ones).
    decisions = store.triage_all()
    for life in all_lives:
        fp = life.finding.fingerprint
        if fp not in states:
            states[fp] = effective_state(decisions.get(fp), period.until_ms).value
    items.sort(key=lambda i: (-Severity(i["severity"]).rank, i["target"], i["path"], i["line"]))
    lives_by_fp = {life.finding.fingerprint: life for life in all_lives}
    objectives = [_objective(store, o, period) for o in inputs.config.objectives]
    gates = _gates_section(store, targets, inputs)
    cost = _cost_section(considered, period)
    findings = {**_findings_section(items, rows), "scan_ids": latest_scans}
    # Findings open at the period's end are data even when no scan ran in it.
    has_data = (
        bool(considered)
        or bool(items)
        or bool(all_lives)
        or gates["runs"] > 0
        or any(o["steps"] for o in objectives)
    )
    scan_ids = sorted({r.scan_id for r in considered} | {s for s in latest_scans.values() if s})
    return {
        "format_version": FORMAT_VERSION,
        "generator": f"secperf {__version__}",
        "generated_ms": inputs.generated_ms,
        "period": {
            "since_ms": period.since_ms,
            "until_ms": period.until_ms,
            # The end asked for when it lay in the future (the period stops at now).
            "requested_until_ms": period.requested_until_ms,
            "days": len(period.days()),
        },
        "scope": {"target": inputs.target, "targets": targets},
        "has_data": has_data,
        "cadence": cadence,
        "findings": findings,
        "mapping": _owasp_section(items),
        "remediation": _remediation_section(all_lives, states, inputs.config, period),
        "triage": {
            **_triage_section(store, lives_by_fp, period),
            "false_positives": findings["false_positives"],
            "findings": findings["findings"],
            "false_positive_rate": findings["false_positive_rate"],
        },
        "secrets": _secrets_section(all_lives, states, period),
        "dependencies": _dependencies_section(all_lives, states, period),
        "gates": gates,
        "objectives": objectives,
        "cost": cost,
        "evidence": {
            "scan_ids": scan_ids,
            "scanners_used": sorted({s for r in considered for s in r.scanners}),
            "scanner_versions": dict(sorted(inputs.scanner_versions.items())),
            "config_sha256": inputs.config_hash,
            "gate_run_ids": gates["run_ids"],
        },
    }
