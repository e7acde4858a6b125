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
- ``coverage``: low coverage, with the top kinds of skips (``metrics.skip_reasons``
  without the ``NAME: unavailable`` counts: a scanner that did not run skips no
  file).
- ``scanner-not-run:<scanner>``: a scanner of ``[scan] scanners`` did not run
  (semgrep not installed, no OSV data for deps): what went unchecked and how
  to let it run. Not a coverage matter.
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

``advice_json`` gives the ``/api/v1/advice`` document. Each kind of advice
lives in its own module (``scan_cost``, ``scan_impact``, ``findings``,
``host``) over the shared types of ``interface``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from secperf.analysis.correlate_store import latest_run
from secperf.model import Severity

if TYPE_CHECKING:
    from secperf.store import Store

from secperf.analysis.advice.findings import (
    rule_dependency_upgrades,
    rule_expired_acceptances,
    rule_false_positives,
    rule_secrets,
)
from secperf.analysis.advice.host import rule_host_pressure, rule_unexplained_anomalies
from secperf.analysis.advice.interface import Advice, AdviceContext, AdviceThresholds, Evidence
from secperf.analysis.advice.scan_cost import (
    rule_cache,
    rule_coverage,
    rule_scan_parallelism,
    rule_scan_time_trend,
    rule_scanners_not_run,
    rule_slow_files,
    rule_slow_scanner,
)
from secperf.analysis.advice.scan_impact import quietest_hour, rule_scan_impact

RULES: tuple[Callable[[AdviceContext], list[Advice]], ...] = (
    rule_secrets,
    rule_expired_acceptances,
    rule_dependency_upgrades,
    rule_coverage,
    rule_scanners_not_run,
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


def _context(store: Store, now_ms: int, th: AdviceThresholds, target: str | None) -> AdviceContext:
    ctx = AdviceContext(store, now_ms, th)
    ctx.all_scans = store.scans(limit=1000)
    # Scans that ended whole (by status: an interrupted or abandoned scan has an
    # end but saw only part of the code); imports of other tools' results
    # measured no coverage or scan time.
    done = [s for s in ctx.all_scans if s.metrics is not None and s.complete and not s.is_import]
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


__all__ = [
    "RULES",
    "Advice",
    "AdviceContext",
    "AdviceThresholds",
    "Evidence",
    "advice_json",
    "build_advice",
    "quietest_hour",
]
