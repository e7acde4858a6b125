"""Advice on what scans do to the machine: metrics that scans move, and the
quietest hour to scan in."""

from __future__ import annotations

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
                    f"In the correlation run of {iso_minutes(run.computed_ms)}, {series} was "
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
