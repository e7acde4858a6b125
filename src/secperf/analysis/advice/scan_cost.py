"""Advice on what a scan costs and covers: slow files and scanners, parallelism,
the cache, coverage, scanners that did not run, the scan-time trend."""

from __future__ import annotations

import os
import re

from secperf.analysis.advice.interface import (
    Advice,
    AdviceContext,
    Evidence,
    duration,
    percent,
    sentence,
)
from secperf.analysis.regression import RegressionStatus, ms_per_kloc, scan_time_regression
from secperf.model import Severity

#: Path segments and file names that mark vendored or generated code.
_GENERATED = re.compile(
    r"(^|/)(vendor|vendored|third_party|thirdparty|node_modules|site-packages|dist|build|"
    r"generated|gen|_build|bower_components)/"
    r"|(_pb2(_grpc)?\.py|\.min\.js|\.bundle\.js|\.generated\.\w+|_generated\.\w+)$"
)


def _scanner_work_ms(ctx: AdviceContext) -> float:
    assert ctx.latest is not None and ctx.latest.metrics is not None
    m = ctx.latest.metrics
    return float(sum(m.scanner_durations_ms.values())) or m.scan_duration_ms


def _worth_tuning(ctx: AdviceContext) -> bool:
    m = ctx.latest.metrics if ctx.latest else None
    return m is not None and m.scan_duration_ms >= ctx.th.min_scan_ms


def _exclude_glob(path: str) -> str:
    """The narrowest directory glob that covers a vendored/generated path, else the file."""
    match = _GENERATED.search(path)
    if match and match.group(2):
        return path[: match.end()]  # up to and including "vendor/"
    return path


def rule_slow_files(ctx: AdviceContext) -> list[Advice]:
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
        Evidence(p, f"{duration(ms)} ({percent(100 * ms / work)} of scanner time)") for p, ms in top
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
            title=f"{len(top)} files take {percent(100 * share)} of scan time",
            severity=Severity.MEDIUM if share >= 0.5 else Severity.LOW,
            kind="performance",
            detail=(
                f"In scan {ctx.latest.scan_id}, the {len(top)} slowest files took "
                f"{percent(100 * share)} of the scanners' time; excluding them would save up to"
                " that."
            ),
            evidence=tuple(evidence),
            action=action,
        )
    ]


def rule_scan_parallelism(ctx: AdviceContext) -> list[Advice]:
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
                f"Scan {ctx.latest.scan_id} took {duration(m.scan_duration_ms)} of wall time for "
                f"{duration(used * m.scan_duration_ms)} of scanner work: about {used:.1f} cores"
                f" busy of {cores}. More jobs would finish it up to"
                f" {cores / max(used, 1):.1f}x sooner."
            ),
            evidence=(
                Evidence("wall time", duration(m.scan_duration_ms)),
                Evidence("scanner work", duration(used * m.scan_duration_ms)),
                Evidence("cores busy", f"{used:.1f}"),
                Evidence("cores available", str(cores)),
            ),
            action=(
                f"Raise jobs: set [scan] jobs = {cores} (or 0 for one per core) or pass "
                f"--jobs {cores}; keep it lower if scans must not slow the services on this host."
            ),
        )
    ]


def rule_slow_scanner(ctx: AdviceContext) -> list[Advice]:
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
        Evidence(scanner, f"{duration(ms)} ({percent(100 * ms / total)})")
        for scanner, ms in sorted(durations.items(), key=lambda kv: kv[1], reverse=True)
    )
    return [
        Advice(
            id="slow-scanner",
            title=f"The {name} scanner takes {percent(100 * share)} of scan time",
            severity=Severity.LOW,
            kind="performance",
            detail=(
                f"Of {duration(total)} of scanner work in scan {ctx.latest.scan_id}, {name} took "
                f"{duration(slowest)}."
            ),
            evidence=evidence,
            action=(
                f"Narrow what {name} scans (exclude generated and vendored paths, trim its "
                "rules), or run it in CI only and keep the fast scanners for the edit loop."
            ),
        )
    ]


def rule_cache(ctx: AdviceContext) -> list[Advice]:
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
            title=f"Cache hit rate is {percent(100 * m.cache_hit_rate)}",
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


#: What to do about the files skipped for each kind of skip (``metrics.skip_reasons``).
_SKIP_ACTIONS = {
    "too large": "raise [scan] max_file_size if these files matter",
    "binary file": "exclude binary paths so they are not even read",
    "unreadable": "fix file permissions",
    "not UTF-8 text": "convert the files to UTF-8, or exclude them",
    "parse error": "fix or exclude the files the scanners cannot parse",
    "timed out": "raise [scan] file_timeout, or exclude the files that take that long",
    "out of memory": "raise [scan] worker_memory_limit, or exclude the files that need more",
    "unpinned requirements": "pin the requirements (==), constrain them (-c) or commit a lock file",
}

#: How ``metrics.skip_reasons`` counts a scanner that did not run: ``NAME: unavailable``.
UNAVAILABLE = ": unavailable"


def file_skip_kinds(skip_reasons: dict[str, int]) -> dict[str, int]:
    """The kinds of ``skip_reasons`` that skipped files, without the scanners that did not run.

    A scanner that did not run skips no file: coverage is over the files the
    scanners that ran read, so its ``NAME: unavailable`` count is no cause of
    low coverage (``secperf scan``'s "not scanned" table names it apart).
    """
    return {k: n for k, n in skip_reasons.items() if not k.endswith(UNAVAILABLE)}


def unavailable_scanners(skip_reasons: dict[str, int]) -> list[str]:
    """The scanners that did not run, from their ``NAME: unavailable`` counts."""
    return sorted(k[: -len(UNAVAILABLE)] for k in skip_reasons if k.endswith(UNAVAILABLE))


def rule_coverage(ctx: AdviceContext) -> list[Advice]:
    """Low coverage, with the top kinds of skips (scanners that did not run are no skip)."""
    m = ctx.latest.metrics if ctx.latest else None
    if m is None or m.eligible_files == 0 or m.scan_coverage_percent >= ctx.th.coverage_percent:
        return []
    assert ctx.latest is not None
    kinds = file_skip_kinds(m.skip_reasons)
    reasons = sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    fixes = [
        _SKIP_ACTIONS.get(reason, f"see `secperf scan` for the files skipped as {reason!r}")
        for reason, _ in reasons
    ]
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
            action=sentence("; ".join(fixes)) if fixes else "See `secperf scan`.",
        )
    ]


#: What a scanner checks, and how to let it run, for the advice on a scanner that did not run.
_SCANNER_ROLES: dict[str, tuple[str, str]] = {
    "deps": (
        "the dependency manifests (requirements files, pyproject.toml, lock files) were not"
        " checked for versions with known vulnerabilities",
        "give the deps scanner OSV data: pass --osv-db PATH or set [scan.deps] osv_db (a"
        " directory of OSV JSON records, or the PyPI export all.zip), or set [scan.deps]"
        " network = true to query the OSV API",
    ),
    "semgrep": (
        "your semgrep rules ([scan.semgrep] rules) were not run over the code",
        "install semgrep (pip install semgrep) or set [scan.semgrep] executable to its path,"
        " and list your rule files in [scan.semgrep] rules",
    ),
    "sarif": (
        "no other tool's SARIF log was imported as findings",
        "list the SARIF logs to import in [scan.sarif] files (globs)",
    ),
}


def _unavailable_reason(error: str | None, scanner: str, others: list[str]) -> str | None:
    """``scanner``'s reason in a stored scan's error (``NAME: reason; NAME: reason``)."""
    if not error:
        return None
    starts = sorted(found for name in others if (found := _segment_start(error, name)) is not None)
    start = _segment_start(error, scanner)
    if start is None:
        return None
    end = next((s - 2 for s in starts if s > start), len(error))  # before "; "
    reason = error[start + len(scanner) + 2 : end].strip()
    return reason or None


def _segment_start(error: str, name: str) -> int | None:
    if error.startswith(f"{name}: "):
        return 0
    found = error.find(f"; {name}: ")
    return found + 2 if found >= 0 else None


def rule_scanners_not_run(ctx: AdviceContext) -> list[Advice]:
    """A scanner of ``[scan] scanners`` that did not run: what went unchecked, how to run it.

    Not a coverage matter (an unavailable scanner skips no file), so one item
    per scanner, apart from the ``coverage`` advice.
    """
    m = ctx.latest.metrics if ctx.latest else None
    if m is None:
        return []
    assert ctx.latest is not None
    scanners = unavailable_scanners(m.skip_reasons)
    out: list[Advice] = []
    for scanner in scanners:
        unchecked, enable = _SCANNER_ROLES.get(
            scanner,
            (
                f"what the {scanner} scanner checks was not checked",
                f"install {scanner} or fix its [scan.{scanner}] settings",
            ),
        )
        reason = _unavailable_reason(ctx.latest.error, scanner, scanners)
        out.append(
            Advice(
                id=f"scanner-not-run:{scanner}",
                title=f"The {scanner} scanner did not run",
                severity=Severity.LOW,
                kind="security",
                detail=(
                    f"In scan {ctx.latest.scan_id} the {scanner} scanner could not run: "
                    f"{unchecked}. It skipped no file: coverage is over the files the scanners"
                    " that ran read."
                ),
                evidence=(Evidence("why", reason or "not recorded"),),
                action=sentence(f"{enable}; or leave {scanner} out of [scan] scanners"),
            )
        )
    return out


def rule_scan_time_trend(ctx: AdviceContext) -> list[Advice]:
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
