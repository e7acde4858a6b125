"""Advice on what scans do to the machine: metrics that scans move, and the
quietest hour to scan in."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import TYPE_CHECKING

import numpy as np

from secperf.analysis.correlate_store import (
    format_duration,
    format_labels,
)
from secperf.model import Severity

if TYPE_CHECKING:
    from secperf.store import Store
from secperf.analysis.advice.interface import Advice, AdviceContext, Evidence
from secperf.config.sections.impact import parse_selector
from secperf.security.pacing.summary import ThrottlingWindow, throttling_in_window
from secperf.timefmt import iso_minutes


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


def rule_scan_impact(ctx: AdviceContext) -> list[Advice]:
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
    # What secperf already did about it: the pacing records of the run's scans.
    paced = throttling_in_window(ctx.store, run.since_ms, run.until_ms)
    evidence_pacing = paced.sentence()
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
        if evidence_pacing is not None:
            evidence.append(Evidence("pacing of these scans", evidence_pacing))
        out.append(
            Advice(
                id=f"scan-impact:{series}",
                title=f"Scans move {series} by {r.effect_pct:+.0f} %",
                severity=Severity.HIGH if abs(r.effect_pct) >= 50 else Severity.MEDIUM,
                kind="both",
                detail=(
                    f"In the correlation run of {iso_minutes(run.computed_ms)}, {series} was "
                    f"{abs(r.effect_pct):.0f} % {'higher' if r.effect_pct > 0 else 'lower'} "
                    f"during scans than in matched quiet windows (q={r.q_value:.2g})."
                ),
                evidence=tuple(evidence),
                action=pacing_action(r.name, r.labels, paced, when),
            )
        )
    return out


def pacing_action(name: str, labels: dict[str, str], paced: ThrottlingWindow, when: str) -> str:
    """What to do, after what secperf already does: low priority, the budget and its record."""
    series = name + (
        "{" + ",".join(f"{k}={json.dumps(v)}" for k, v in sorted(labels.items())) + "}"
        if labels
        else ""
    )
    low = [p for p in paced.paced if p.pacing.priority == "low"]
    if not low:
        return (
            "These scans ran at full speed. Run them at low priority with an impact budget "
            f"on this series: [scan.impact] priority = \"low\" and guard = ['{series}'] "
            "(secperf up, agent and demo run at low priority by default; a one-shot scan "
            f"with secperf scan --priority low), scan off-peak ({when}; "
            "[scan] every starts periodic scans at quiet times), or lower [scan] jobs."
        )
    budgeted = paced.budgeted
    guarded = any(_guards(g.series, name, labels) for p in budgeted for g in p.pacing.guards)
    budget = max((p.pacing.max_increase_pct for p in budgeted), default=None)
    done = f"secperf already runs {len(low)} of these {len(paced.paced)} scans at low priority"
    if budget is None:
        return (
            f"{done}, without an impact budget ({low[0].pacing.reason or 'off'}). Give it a "
            f"guard: [scan.impact] guard = ['{series}'], or scan off-peak ({when})."
        )
    throttled = paced.throttled
    record = (
        f"{len(throttled)} were throttled, {paced.throttled_ms / 1000:.1f} s in all"
        if throttled
        else "none was throttled"
    )
    over = paced.over_budget
    verdict = (
        f"{len(over)} stayed over the {budget:g} % budget"
        if over
        else f"all kept the {budget:g} % budget"
    )
    if not guarded:
        return (
            f"{done} with a {budget:g} % impact budget ({record}; {verdict}), but this series "
            f"is not one of its guards: add it, [scan.impact] guard = [..., '{series}']."
        )
    if over:
        return (
            f"{done} with a {budget:g} % impact budget on this series ({record}; {verdict}, "
            "as their deadline let them finish): allow a longer deadline "
            f"([scan.impact] max_slowdown) or scan off-peak ({when})."
        )
    return (
        f"{done} with a {budget:g} % impact budget on this series ({record}; {verdict}): "
        "what remains is within the budget; lower [scan.impact] max_increase_pct to ask for less."
    )


def _guards(selector: str, name: str, labels: dict[str, str]) -> bool:
    """Whether the guard ``selector`` (as a pacing record names it) watches this series."""
    try:
        return parse_selector(selector).matches(name, labels)
    except ValueError:
        return False
