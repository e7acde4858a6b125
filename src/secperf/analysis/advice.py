"""Recommendations drawn from the stored data, each with its evidence and an action.

``build_advice(store, now_ms)`` runs a fixed set of rules over what the store
holds: the latest scans (their ``SecurityMetrics``), the latest scan's findings
and their triage, the latest correlation run and the system metrics. A rule
fires only on data that warrants it, and says what it saw (``evidence``) and
what to do (``action``). The rules, with the thresholds of ``AdviceThresholds``:

- ``slow-files``: the slowest files take a large share of the scanners' time;
  vendored or generated paths among them are named for exclusion.
- ``scan-parallelism``: the scan used far fewer cores than the machine has.
- ``slow-scanner``: one scanner takes most of the scanners' time.
- ``cache``: a low cache hit rate on a target that was scanned before.
- ``coverage``: low coverage, with the top skip reasons.
- ``scan-impact``: the latest correlation run shows scans moving a metric
  significantly and materially; the quietest hour observed is suggested.
- ``false-positives``: a high false-positive rate, with the rules most often
  marked false positive.
- ``expired-acceptance``: risk acceptances that have expired while the finding
  is still there.
- ``upgrade``: vulnerable dependencies with a fixed version, one per package.
- ``secret``: secrets found and not triaged away.
- ``scan-time``: scan time per 1,000 lines grew against earlier scans
  (``regression.scan_time_regression``).
- ``host-pressure``: the host's memory, CPU or swap stayed high lately.
- ``unexplained-anomaly``: a performance series rose sharply while no scan ran.

``advice_json`` gives the ``/api/v1/advice`` document.
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
from packaging.version import InvalidVersion, Version

from secperf.analysis.correlate_store import (
    CorrelationRun,
    format_duration,
    format_labels,
    is_performance_metric,
    latest_run,
)
from secperf.analysis.regression import RegressionStatus, ms_per_kloc, scan_time_regression
from secperf.model import Severity

if TYPE_CHECKING:
    from secperf.store import ScanRecord, Store, StoredFinding

KINDS = ("security", "performance", "both")

#: Path segments and file names that mark vendored or generated code.
_GENERATED = re.compile(
    r"(^|/)(vendor|vendored|third_party|thirdparty|node_modules|site-packages|dist|build|"
    r"generated|gen|_build|bower_components)/"
    r"|(_pb2(_grpc)?\.py|\.min\.js|\.bundle\.js|\.generated\.\w+|_generated\.\w+)$"
)


@dataclass(frozen=True, slots=True)
class Evidence:
    """One fact behind an advice, as label and formatted value."""

    label: str
    value: str


@dataclass(frozen=True, slots=True)
class Advice:
    """One recommendation: what was seen, how bad it is, and what to do."""

    id: str
    title: str
    severity: Severity
    kind: str  # security | performance | both
    detail: str
    evidence: tuple[Evidence, ...]
    action: str


@dataclass(frozen=True, slots=True)
class AdviceThresholds:
    """When each rule fires; the defaults suit a developer machine and CI alike."""

    min_scan_ms: float = 2_000.0  # scans shorter than this are not worth tuning
    slow_files_share: float = 0.25
    slow_scanner_share: float = 0.6
    parallelism_share: float = 0.5  # cores used / cores available below this -> raise jobs
    min_cache_lookups: int = 20
    cache_hit_rate: float = 0.5
    coverage_percent: float = 90.0
    min_effect_pct: float = 10.0
    false_positive_rate: float = 0.2
    min_findings_for_rate: int = 5
    memory_percent: float = 90.0
    cpu_percent: float = 90.0
    swap_percent: float = 50.0
    pressure_window_ms: int = 10 * 60_000
    anomaly_window_ms: int = 6 * 3_600_000
    anomaly_step_ms: int = 60_000
    anomaly_k: float = 6.0  # robust standard deviations above the median
    anomaly_min_rel: float = 0.2  # and at least this much above it
    anomaly_guard_ms: int = 2 * 60_000
    max_anomaly_series: int = 200
    history_scans: int = 30
    max_items: int = 5  # per advice of one kind (upgrades, affected metrics ...)
    cores: int | None = None  # the scanning machine's cores; None: this machine's


@dataclass(slots=True)
class _Context:
    store: Store
    now_ms: int
    th: AdviceThresholds
    latest: ScanRecord | None = None
    history: list[ScanRecord] = field(default_factory=list)  # same target, oldest first
    all_scans: list[ScanRecord] = field(default_factory=list)
    findings: list[StoredFinding] = field(default_factory=list)
    run: CorrelationRun | None = None


def _pct(x: float) -> str:
    return f"{x:.0f} %"


def _ms(x: float) -> str:
    return format_duration(x)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def _sentence(text: str) -> str:
    """``text`` with its first letter upper-cased (the rest untouched) and a full stop."""
    return text[:1].upper() + text[1:] + "."


def _max_severity(items: Sequence[Severity]) -> Severity:
    return max(items, key=lambda s: s.rank) if items else Severity.INFO


# --------------------------------------------------------------------------- scan cost


def _scanner_work_ms(ctx: _Context) -> float:
    assert ctx.latest is not None and ctx.latest.metrics is not None
    m = ctx.latest.metrics
    return float(sum(m.scanner_durations_ms.values())) or m.scan_duration_ms


def _worth_tuning(ctx: _Context) -> bool:
    m = ctx.latest.metrics if ctx.latest else None
    return m is not None and m.scan_duration_ms >= ctx.th.min_scan_ms


def _exclude_glob(path: str) -> str:
    """The narrowest directory glob that covers a vendored/generated path, else the file."""
    match = _GENERATED.search(path)
    if match and match.group(2):
        return path[: match.end()]  # up to and including "vendor/"
    return path


def rule_slow_files(ctx: _Context) -> list[Advice]:
    """The slowest files cost a large share of the scan."""
    if not _worth_tuning(ctx):
        return []
    assert ctx.latest is not None and ctx.latest.metrics is not None
    m = ctx.latest.metrics
    work = _scanner_work_ms(ctx)
    top = sorted(m.slowest_files_ms.items(), key=lambda kv: kv[1], reverse=True)[:5]
    share = sum(ms for _, ms in top) / work if work > 0 else 0.0
    if not top or share < ctx.th.slow_files_share:
        return []
    generated = [p for p, _ in top if _GENERATED.search(p)]
    evidence = [
        Evidence(p, f"{_ms(ms)} ({_pct(100 * ms / work)} of scanner time)") for p, ms in top
    ]
    if generated:
        globs = sorted({_exclude_glob(p) for p in generated})
        action = (
            "Exclude generated/vendored paths: add "
            + ", ".join(f'"{g}"' for g in globs)
            + " to [scan] extend_exclude in secperf.toml."
        )
    else:
        action = (
            "If these files are generated or vendored, add them to [scan] extend_exclude; "
            "otherwise split them, or give the scan more jobs."
        )
    return [
        Advice(
            id="slow-files",
            title=f"{len(top)} files take {_pct(100 * share)} of scan time",
            severity=Severity.MEDIUM if share >= 0.5 else Severity.LOW,
            kind="performance",
            detail=(
                f"In scan {ctx.latest.scan_id}, the {len(top)} slowest files took "
                f"{_pct(100 * share)} of the scanners' time; excluding them would save up to that."
            ),
            evidence=tuple(evidence),
            action=action,
        )
    ]


def rule_scan_parallelism(ctx: _Context) -> list[Advice]:
    """The scan used far fewer cores than the machine has."""
    cores = ctx.th.cores or os.cpu_count() or 1
    if not _worth_tuning(ctx) or cores < 2:
        return []
    assert ctx.latest is not None and ctx.latest.metrics is not None
    m = ctx.latest.metrics
    if m.cache_misses == 0:
        return []  # a fully cached scan has no work to spread
    used = float(sum(m.scanner_durations_ms.values())) / m.scan_duration_ms
    if used <= 0 or used >= ctx.th.parallelism_share * cores:
        return []
    return [
        Advice(
            id="scan-parallelism",
            title=f"Scans use ~{used:.1f} of {cores} cores",
            severity=Severity.LOW,
            kind="performance",
            detail=(
                f"Scan {ctx.latest.scan_id} took {_ms(m.scan_duration_ms)} of wall time for "
                f"{_ms(used * m.scan_duration_ms)} of scanner work: about {used:.1f} cores busy "
                f"of {cores}. More jobs would finish it up to {cores / max(used, 1):.1f}x sooner."
            ),
            evidence=(
                Evidence("wall time", _ms(m.scan_duration_ms)),
                Evidence("scanner work", _ms(used * m.scan_duration_ms)),
                Evidence("cores busy", f"{used:.1f}"),
                Evidence("cores available", str(cores)),
            ),
            action=(
                f"Raise jobs: set [scan] jobs = {cores} (or 0 for one per core) or pass "
                f"--jobs {cores}; keep it lower if scans must not slow the services on this host."
            ),
        )
    ]


def rule_slow_scanner(ctx: _Context) -> list[Advice]:
    """One scanner takes most of the scanners' time."""
    if not _worth_tuning(ctx):
        return []
    assert ctx.latest is not None and ctx.latest.metrics is not None
    durations = ctx.latest.metrics.scanner_durations_ms
    total = float(sum(durations.values()))
    if len(durations) < 2 or total <= 0:
        return []
    name, slowest = max(durations.items(), key=lambda kv: kv[1])
    share = slowest / total
    if share < ctx.th.slow_scanner_share:
        return []
    evidence = tuple(
        Evidence(scanner, f"{_ms(ms)} ({_pct(100 * ms / total)})")
        for scanner, ms in sorted(durations.items(), key=lambda kv: kv[1], reverse=True)
    )
    return [
        Advice(
            id="slow-scanner",
            title=f"The {name} scanner takes {_pct(100 * share)} of scan time",
            severity=Severity.LOW,
            kind="performance",
            detail=(
                f"Of {_ms(total)} of scanner work in scan {ctx.latest.scan_id}, {name} took "
                f"{_ms(slowest)}."
            ),
            evidence=evidence,
            action=(
                f"Narrow what {name} scans (exclude generated and vendored paths, trim its "
                "rules), or run it in CI only and keep the fast scanners for the edit loop."
            ),
        )
    ]


def rule_cache(ctx: _Context) -> list[Advice]:
    """A low cache hit rate where a warm cache was expected."""
    if ctx.latest is None or ctx.latest.metrics is None or len(ctx.history) < 2:
        return []  # the first scan of a target fills the cache: misses are expected
    m = ctx.latest.metrics
    lookups = m.cache_hits + m.cache_misses
    if lookups < ctx.th.min_cache_lookups or m.cache_hit_rate >= ctx.th.cache_hit_rate:
        return []
    return [
        Advice(
            id="cache",
            title=f"Cache hit rate is {_pct(100 * m.cache_hit_rate)}",
            severity=Severity.LOW,
            kind="performance",
            detail=(
                f"Scan {ctx.latest.scan_id} found {m.cache_hits} of {lookups} file results in the "
                "cache although the target was scanned before; most files were scanned again."
            ),
            evidence=(
                Evidence("cache hits", str(m.cache_hits)),
                Evidence("cache misses", str(m.cache_misses)),
                Evidence("earlier scans of this target", str(len(ctx.history) - 1)),
            ),
            action=(
                "Keep the .secperf/ directory between runs (in CI, cache it), and check that "
                "[scan] cache is on and that scanner versions or rule settings do not change "
                "on every run (either invalidates the cache)."
            ),
        )
    ]


_SKIP_ACTIONS = {
    "too large": "raise [scan] max_file_size if these files matter",
    "binary file": "exclude binary paths so they are not even read",
    "unreadable": "fix file permissions",
    "decode error": "check the files' encoding",
}


def rule_coverage(ctx: _Context) -> list[Advice]:
    """Low coverage, with the top skip reasons."""
    m = ctx.latest.metrics if ctx.latest else None
    if m is None or m.eligible_files == 0 or m.scan_coverage_percent >= ctx.th.coverage_percent:
        return []
    assert ctx.latest is not None
    reasons = sorted(m.skip_reasons.items(), key=lambda kv: kv[1], reverse=True)[:3]
    fixes = []
    for reason, _ in reasons:
        if reason.endswith(": unavailable"):
            scanner = reason.split(":", 1)[0]
            if scanner == "deps":
                fixes.append(
                    "give the deps scanner OSV data (scan.deps.osv_db or --osv-db) or allow"
                    " scan.deps.network, or remove it from [scan] scanners"
                )
            else:
                fixes.append(f"install {scanner} or remove it from [scan] scanners")
        elif reason in _SKIP_ACTIONS:
            fixes.append(_SKIP_ACTIONS[reason])
        else:
            fixes.append(f"see `secperf scan` for the files skipped as {reason!r}")
    return [
        Advice(
            id="coverage",
            title=f"Only {m.scan_coverage_percent:.0f} % of files were scanned",
            severity=Severity.HIGH if m.scan_coverage_percent < 50 else Severity.MEDIUM,
            kind="security",
            detail=(
                f"Scan {ctx.latest.scan_id} skipped {m.files_skipped} of {m.eligible_files} "
                "eligible files: findings in them are not seen."
            ),
            evidence=(
                Evidence("coverage", f"{m.scan_coverage_percent:.1f} %"),
                *(Evidence(f"skipped: {r}", str(n)) for r, n in reasons),
            ),
            action=_sentence("; ".join(fixes)) if fixes else "See `secperf scan`.",
        )
    ]


# --------------------------------------------------------------------------- scan impact


def quietest_hour(store: Store, now_ms: int, days: int = 7) -> tuple[int, float] | None:
    """The UTC hour with the lowest median host CPU % over ``days``, and that median."""
    start = now_ms - days * 86_400_000
    hours: dict[int, list[float]] = defaultdict(list)
    for points in store.query("cpu_percent", None, start, now_ms, step_ms=600_000):
        if "cpu" in points.labels:
            continue  # per-core series repeat the total
        for t, v in zip(points.timestamps.tolist(), points.values.tolist(), strict=True):
            hours[(int(t) // 3_600_000) % 24].append(float(v))
    filled = {h: float(np.median(v)) for h, v in hours.items() if len(v) >= 3}
    if len(filled) < 6:
        return None  # too little of the day seen to call any hour the quietest
    hour = min(filled, key=lambda h: (filled[h], h))
    return hour, filled[hour]


def rule_scan_impact(ctx: _Context) -> list[Advice]:
    """Scans significantly and materially move a performance metric."""
    run = ctx.run
    if run is None:
        return []
    hits = [
        r
        for r in run.significant
        if r.effect_pct is not None and abs(r.effect_pct) >= ctx.th.min_effect_pct
    ][: ctx.th.max_items]
    if not hits:
        return []
    quiet = quietest_hour(ctx.store, ctx.now_ms)
    when = (
        f"the quietest hour observed is {quiet[0]:02d}:00 UTC (median CPU {quiet[1]:.0f} %)"
        if quiet
        else "pick the hour your services are least busy"
    )
    out = []
    for r in hits:
        assert r.effect_pct is not None
        series = f"{r.name}{format_labels(r.labels)}"
        evidence = [
            Evidence("median change during scans", f"{r.effect_pct:+.1f} %"),
            Evidence(
                "median quiet / during scans", f"{r.quiet_median:.4g} / {r.inside_median:.4g}"
            ),
            Evidence("q-value", f"{r.q_value:.2g}"),
            Evidence("samples during scans / quiet", f"{r.n_inside} / {r.n_quiet}"),
            Evidence("scans", str(r.n_scans)),
        ]
        if r.onset_lag_ms is not None:
            evidence.append(Evidence("onset after scan start", format_duration(r.onset_lag_ms)))
        if quiet:
            evidence.append(Evidence("quietest hour (UTC)", f"{quiet[0]:02d}:00"))
        out.append(
            Advice(
                id=f"scan-impact:{series}",
                title=f"Scans move {series} by {r.effect_pct:+.0f} %",
                severity=Severity.HIGH if abs(r.effect_pct) >= 50 else Severity.MEDIUM,
                kind="both",
                detail=(
                    f"In the correlation run of {_iso(run.computed_ms)}, {series} was "
                    f"{abs(r.effect_pct):.0f} % {'higher' if r.effect_pct > 0 else 'lower'} "
                    f"during scans than in matched quiet windows (q={r.q_value:.2g})."
                ),
                evidence=tuple(evidence),
                action=(
                    f"Schedule scans off-peak ({when}), lower [scan] jobs so the scan leaves "
                    "cores to the service, or run the scan workers niced (nice -n 10 secperf ...)."
                ),
            )
        )
    return out


# --------------------------------------------------------------------------- findings


def rule_false_positives(ctx: _Context) -> list[Advice]:
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
        if s.triage_state == "false_positive"
    ).most_common(ctx.th.max_items)
    rules = ", ".join(rule for rule, _ in noisy)
    return [
        Advice(
            id="false-positives",
            title=f"{_pct(100 * m.false_positive_rate)} of findings are false positives",
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


def rule_expired_acceptances(ctx: _Context) -> list[Advice]:
    """Risk acceptances that expired while the finding is still there."""
    expired = [
        s
        for s in ctx.findings
        if s.triage is not None
        and s.triage.state == "accepted_risk"
        and s.triage.expires_ms is not None
        and s.triage.expires_ms <= ctx.now_ms
    ]
    if not expired:
        return []
    shown = expired[: ctx.th.max_items]
    return [
        Advice(
            id="expired-acceptance",
            title=f"{len(expired)} risk acceptance(s) expired",
            severity=_max_severity([Severity(s.finding.severity) for s in expired]),
            kind="security",
            detail=(
                "These findings were accepted as a risk until a date now past; they count as "
                "open again and block the gate."
            ),
            evidence=tuple(
                Evidence(
                    f"{s.finding.rule_id} at {s.finding.path}:{s.finding.line}",
                    f"{Severity(s.finding.severity).value}, expired {_iso(s.triage.expires_ms)}"
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


def rule_dependency_upgrades(ctx: _Context) -> list[Advice]:
    """Vulnerable dependencies that a known version fixes: one advice per package."""
    by_package: dict[tuple[str, str], list[tuple[StoredFinding, str]]] = defaultdict(list)
    for s in ctx.findings:
        f = s.finding
        if f.category != "dependency" or s.triage_state != "open":
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
        severity = _max_severity([Severity(s.finding.severity) for s, _ in items])
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


def rule_secrets(ctx: _Context) -> list[Advice]:
    """Secrets in the code: rotate first. The evidence names places, never values."""
    found = [s for s in ctx.findings if s.finding.category == "secret" and s.triage_state == "open"]
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


def rule_scan_time_trend(ctx: _Context) -> list[Advice]:
    """Scan time per 1,000 lines grew against earlier scans of the same target."""
    points = [
        ms_per_kloc(s.metrics.scan_duration_ms, s.metrics.lines_scanned)
        for s in ctx.history
        if s.metrics is not None and s.metrics.lines_scanned > 0 and s.metrics.scan_duration_ms > 0
    ]
    if len(points) < 6:
        return []
    verdict = scan_time_regression(points[-1], points[:-1])
    if verdict.status is not RegressionStatus.REGRESSION:
        return []
    assert verdict.effect_pct is not None and verdict.baseline_median is not None
    return [
        Advice(
            id="scan-time",
            title=f"Scan time per 1,000 lines grew {verdict.effect_pct:+.0f} %",
            severity=Severity.MEDIUM if verdict.effect_pct >= 50 else Severity.LOW,
            kind="performance",
            detail=verdict.reason,
            evidence=(
                Evidence("latest", f"{points[-1]:.1f} ms per 1,000 lines"),
                Evidence("baseline median", f"{verdict.baseline_median:.1f} ms per 1,000 lines"),
                Evidence("p-value", f"{verdict.p_value:.2g}"),
                Evidence("scans compared", str(verdict.n_baseline)),
            ),
            action=(
                "Compare the slowest files and scanner times with an earlier scan to find what "
                "grew (a new large or generated file, a new scanner or rule set, a cold cache)."
            ),
        )
    ]


# --------------------------------------------------------------------------- host


_PRESSURE = (
    ("memory_percent", "memory", "memory_percent"),
    ("cpu_percent", "CPU", "cpu_percent"),
    ("swap_percent", "swap", "swap_percent"),
)


def rule_host_pressure(ctx: _Context) -> list[Advice]:
    """The host's memory, CPU or swap stayed high over the last minutes."""
    start = ctx.now_ms - ctx.th.pressure_window_ms
    out = []
    for metric, what, attr in _PRESSURE:
        limit = float(getattr(ctx.th, attr))
        for points in ctx.store.query(metric, None, start, ctx.now_ms):
            if "cpu" in points.labels or points.values.size < 3:
                continue
            avg = float(points.values.mean())
            if avg < limit:
                continue
            host = points.labels.get("host", "this host")
            if metric == "memory_percent":
                action = (
                    "Find the processes holding memory (process metrics), and lower [scan] jobs: "
                    "every scan worker holds a scanner in memory."
                )
            elif metric == "cpu_percent":
                action = (
                    "Find what keeps the CPU busy; if scans do, lower [scan] jobs or run them "
                    "off-peak."
                )
            else:
                action = (
                    "Swapping slows everything: free memory or add RAM before tuning anything else."
                )
            out.append(
                Advice(
                    id=f"host-pressure:{metric}:{host}",
                    title=f"{host}: {what} at {avg:.0f} %",
                    severity=Severity.HIGH if avg >= 97 else Severity.MEDIUM,
                    kind="performance",
                    detail=(
                        f"{what[0].upper()}{what[1:]} use on {host} averaged {avg:.1f} % over "
                        "the last "
                        f"{format_duration(ctx.th.pressure_window_ms)} (limit {limit:.0f} %)."
                    ),
                    evidence=(
                        Evidence(f"{metric} average", f"{avg:.1f} %"),
                        Evidence(f"{metric} max", f"{float(points.values.max()):.1f} %"),
                        Evidence("samples", str(points.values.size)),
                    ),
                    action=action,
                )
            )
    return out


def _windows(ctx: _Context) -> list[tuple[int, int]]:
    return [
        (s.started_ms, s.finished_ms if s.finished_ms is not None else ctx.now_ms)
        for s in ctx.all_scans
    ]


def rule_unexplained_anomalies(ctx: _Context) -> list[Advice]:
    """A sustained sharp rise in a performance series while no scan ran."""
    th = ctx.th
    start = ctx.now_ms - th.anomaly_window_ms
    scans = _windows(ctx)
    found: list[tuple[float, Advice]] = []
    checked = 0
    for name in ctx.store.list_metric_names():
        if checked >= th.max_anomaly_series:
            break
        if not is_performance_metric(name) or name == "host_cpu_percent":
            continue  # host_cpu_percent is only sampled while a scan runs
        for points in ctx.store.query(name, None, start, ctx.now_ms, step_ms=th.anomaly_step_ms):
            checked += 1
            if checked > th.max_anomaly_series:
                break
            vs = points.values
            if vs.size < 30:
                continue
            median = float(np.median(vs))
            spread = float(np.median(np.abs(vs - median))) * 1.4826
            rolling = np.median(np.lib.stride_tricks.sliding_window_view(vs, 3), axis=1)
            limit = max(median + th.anomaly_k * spread, median + th.anomaly_min_rel * abs(median))
            hot = np.flatnonzero(rolling > limit)
            if hot.size == 0 or (median == 0 and spread == 0):
                continue
            ts = points.timestamps
            # Group the anomalous steps into episodes and keep those with no scan near.
            episodes: list[tuple[int, int, float]] = []
            for i in hot.tolist():
                t0, t1 = int(ts[i]), int(ts[i + 2]) + th.anomaly_step_ms
                peak = float(rolling[i])
                if episodes and t0 <= episodes[-1][1]:
                    a, _, p = episodes[-1]
                    episodes[-1] = (a, t1, max(p, peak))
                else:
                    episodes.append((t0, t1, peak))
            free = [
                e
                for e in episodes
                if not any(
                    a - th.anomaly_guard_ms < e[1] and e[0] < b + th.anomaly_guard_ms
                    for a, b in scans
                )
            ]
            if not free:
                continue
            t0, t1, peak = max(free, key=lambda e: e[2])
            rise = (peak - median) / abs(median) * 100 if median else math.inf
            series = f"{name}{format_labels(points.labels)}"
            how = f"rose {rise:+.0f} %" if median else f"rose from 0 to {peak:.4g}"
            found.append(
                (
                    rise,
                    Advice(
                        id=f"unexplained-anomaly:{series}",
                        title=f"{series} {how} with no scan running",
                        severity=Severity.MEDIUM,
                        kind="both",
                        detail=(
                            f"From {_iso(t0)} to {_iso(t1)}, {series} stayed well above its "
                            f"usual level (median {median:.4g}) while no scan ran: nothing secperf "
                            "knows of explains it."
                        ),
                        evidence=(
                            Evidence("from", _iso(t0)),
                            Evidence("to", _iso(t1)),
                            Evidence("peak (3-step median)", f"{peak:.4g}"),
                            Evidence("usual median", f"{median:.4g}"),
                            Evidence("episodes without a scan", str(len(free))),
                        ),
                        action=(
                            "Look at it as a possible security event: what ran then (processes, "
                            "logins, outbound connections, cron jobs)? If it is a known job, "
                            "note it so the next look is quicker."
                        ),
                    ),
                )
            )
    found.sort(key=lambda pair: -pair[0])
    return [advice for _, advice in found[: th.max_items]]


# --------------------------------------------------------------------------- entry point

RULES: tuple[Callable[[_Context], list[Advice]], ...] = (
    rule_secrets,
    rule_expired_acceptances,
    rule_dependency_upgrades,
    rule_coverage,
    rule_false_positives,
    rule_scan_impact,
    rule_unexplained_anomalies,
    rule_host_pressure,
    rule_scan_time_trend,
    rule_slow_files,
    rule_slow_scanner,
    rule_scan_parallelism,
    rule_cache,
)


def _context(store: Store, now_ms: int, th: AdviceThresholds, target: str | None) -> _Context:
    ctx = _Context(store, now_ms, th)
    ctx.all_scans = store.scans(limit=1000)
    done = [s for s in ctx.all_scans if s.metrics is not None and s.finished_ms is not None]
    if target is not None:
        done = [s for s in done if s.target == target]
    if done:
        ctx.latest = done[0]
        same = [s for s in done if s.target == ctx.latest.target][: th.history_scans]
        ctx.history = list(reversed(same))
        ctx.findings = store.findings(scan_id=ctx.latest.scan_id, limit=None, now_ms=now_ms)
    try:
        ctx.run = latest_run(store)
    except ValueError:
        ctx.run = None  # an unreadable stored run must not take every other advice down
    return ctx


def build_advice(
    store: Store,
    now_ms: int,
    *,
    target: str | None = None,
    thresholds: AdviceThresholds | None = None,
) -> list[Advice]:
    """Every recommendation the stored data supports, most severe first.

    ``target`` limits the scan-based rules to one scanned project (default: the
    target of the newest finished scan).
    """
    ctx = _context(store, now_ms, thresholds or AdviceThresholds(), target)
    out: list[Advice] = []
    for rule in RULES:
        out.extend(rule(ctx))
    out.sort(key=lambda a: -a.severity.rank)  # stable: rule order breaks ties
    return out


def advice_json(items: Sequence[Advice]) -> dict[str, Any]:
    """The ``/api/v1/advice`` document."""
    return {
        "advice": [
            {
                "id": a.id,
                "title": a.title,
                "severity": Severity(a.severity).value,
                "kind": a.kind,
                "detail": a.detail,
                "evidence": [{"label": e.label, "value": e.value} for e in a.evidence],
                "action": a.action,
            }
            for a in items
        ]
    }
