"""Advice on the findings: false positives, expired risk acceptances,
dependency upgrades, secrets."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from packaging.version import InvalidVersion, Version

from secperf.model import Severity
from secperf.security.triage import TriageState

if TYPE_CHECKING:
    from secperf.store import StoredFinding
from secperf.analysis.advice.interface import (
    Advice,
    AdviceContext,
    Evidence,
    max_severity,
    percent,
)
from secperf.timefmt import iso_minutes


def rule_false_positives(ctx: AdviceContext) -> list[Advice]:
    """A high false-positive rate: triage or tune the noisiest rules."""
    m = ctx.latest.metrics if ctx.latest else None
    total = len(ctx.findings)
    if (
        m is None
        or total < ctx.th.min_findings_for_rate
        or m.false_positive_rate < ctx.th.false_positive_rate
    ):
        return []
    noisy = Counter(
        f"{s.finding.scanner}:{s.finding.rule_id}"
        for s in ctx.findings
        if s.triage_state is TriageState.FALSE_POSITIVE
    ).most_common(ctx.th.max_items)
    rules = ", ".join(rule for rule, _ in noisy)
    return [
        Advice(
            id="false-positives",
            title=f"{percent(100 * m.false_positive_rate)} of findings are false positives",
            severity=Severity.MEDIUM,
            kind="security",
            detail=(
                "A high false-positive rate trains people to ignore findings; a few rules usually "
                "cause most of it."
            ),
            evidence=(
                Evidence("false-positive rate", f"{100 * m.false_positive_rate:.1f} %"),
                Evidence("findings in the latest scan", str(total)),
                *(Evidence(f"false positives of {rule}", str(n)) for rule, n in noisy),
            ),
            action=(
                f"Tune or disable the noisiest rules ({rules}) in the scanner's settings"
                if rules
                else "Tune the rules that produce the false positives"
            )
            + ", and triage the remaining findings (`secperf triage`).",
        )
    ]


def rule_expired_acceptances(ctx: AdviceContext) -> list[Advice]:
    """Risk acceptances that expired while the finding is still there."""
    expired = [
        s
        for s in ctx.findings
        if s.triage is not None
        and s.triage.state is TriageState.ACCEPTED_RISK
        and s.triage.expired(ctx.now_ms)
    ]
    if not expired:
        return []
    shown = expired[: ctx.th.max_items]
    return [
        Advice(
            id="expired-acceptance",
            title=f"{len(expired)} risk acceptance(s) expired",
            severity=max_severity([Severity(s.finding.severity) for s in expired]),
            kind="security",
            detail=(
                "These findings were accepted as a risk until a date now past; they count as "
                "open again and block the gate."
            ),
            evidence=tuple(
                Evidence(
                    f"{s.finding.rule_id} at {s.finding.path}:{s.finding.line}",
                    f"{Severity(s.finding.severity).value}, "
                    f"expired {iso_minutes(s.triage.expires_ms)}"
                    f" (accepted by {s.triage.author})",
                )
                for s in shown
                if s.triage is not None and s.triage.expires_ms is not None
            ),
            action=(
                "Fix them, or renew the acceptance with a reason and a new date: "
                "`secperf triage FINGERPRINT --accept-risk --until YYYY-MM-DD --reason ...`."
            ),
        )
    ]


def _version_key(text: str) -> tuple[int, Version | str]:
    try:
        return (1, Version(text))
    except InvalidVersion:
        return (0, text)


def _fixed_above(fixes: Sequence[Any], installed: str) -> str | None:
    """The smallest listed fixed version above ``installed``."""
    above = []
    for fix in fixes:
        try:
            if Version(str(fix)) > Version(installed):
                above.append(str(fix))
        except InvalidVersion:
            continue
    return min(above, key=Version) if above else None


def rule_dependency_upgrades(ctx: AdviceContext) -> list[Advice]:
    """Vulnerable dependencies that a known version fixes: one advice per package."""
    by_package: dict[tuple[str, str], list[tuple[StoredFinding, str]]] = defaultdict(list)
    for s in ctx.findings:
        f = s.finding
        if f.category != "dependency" or s.triage_state is not TriageState.OPEN:
            continue
        package = f.properties.get("package")
        installed = f.properties.get("installed_version")
        fixes = f.properties.get("fixed_versions") or []
        if not isinstance(package, str) or not isinstance(installed, str):
            continue
        fixed = _fixed_above(fixes if isinstance(fixes, list) else [], installed)
        if fixed is not None:
            by_package[(package, installed)].append((s, fixed))
    out = []
    for (package, installed), items in by_package.items():
        target = max((fixed for _, fixed in items), key=_version_key)
        where = sorted({f"{s.finding.path}:{s.finding.line}" for s, _ in items})
        severity = max_severity([Severity(s.finding.severity) for s, _ in items])
        out.append(
            Advice(
                id=f"upgrade:{package}",
                title=f"Upgrade {package} {installed} to {target}",
                severity=severity,
                kind="security",
                detail=(
                    f"{package} {installed} has {len(items)} known vulnerabilit"
                    f"{'y' if len(items) == 1 else 'ies'}; {target} fixes "
                    f"{'it' if len(items) == 1 else 'all of them'}."
                ),
                evidence=(
                    *(
                        Evidence(
                            s.finding.rule_id,
                            f"{Severity(s.finding.severity).value}, fixed in {fixed}",
                        )
                        for s, fixed in items[: ctx.th.max_items * 2]
                    ),
                    Evidence("declared in", ", ".join(where)),
                ),
                action=f"Upgrade {package} to {target} (in {', '.join(where)}), then rescan.",
            )
        )
    out.sort(key=lambda a: (-a.severity.rank, a.id))
    return out


def rule_secrets(ctx: AdviceContext) -> list[Advice]:
    """Secrets in the code: rotate first. The evidence names places, never values."""
    found = [
        s
        for s in ctx.findings
        if s.finding.category == "secret" and s.triage_state is TriageState.OPEN
    ]
    if not found:
        return []
    return [
        Advice(
            id="secret",
            title=f"{len(found)} secret(s) found in the code",
            severity=Severity.CRITICAL,
            kind="security",
            detail=(
                "A credential in the repository must be taken as leaked: anyone with the code "
                "or its history has it."
            ),
            evidence=tuple(
                Evidence(f"{s.finding.path}:{s.finding.line}", s.finding.rule_id)
                for s in found[: ctx.th.max_items * 2]
            ),
            action=(
                "Rotate each credential now, then remove it from the code and the git history "
                "and load it from the environment or a secret manager."
            ),
        )
    ]
