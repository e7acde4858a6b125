"""Advice on the host: sustained pressure, and anomalies no scan explains."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from secperf.analysis.correlate_store import (
    format_duration,
    format_labels,
    is_performance_metric,
)
from secperf.model import Severity

if TYPE_CHECKING:
    pass
from secperf.analysis.advice.interface import Advice, AdviceContext, Evidence
from secperf.timefmt import iso_minutes

_PRESSURE = (
    ("memory_percent", "memory", "memory_percent"),
    ("cpu_percent", "CPU", "cpu_percent"),
    ("swap_percent", "swap", "swap_percent"),
)


def rule_host_pressure(ctx: AdviceContext) -> list[Advice]:
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
                    "Find what keeps the CPU busy; if scans do: secperf up and agent already "
                    "run them at low priority within an impact budget ([scan.impact]), "
                    "[scan] every starts periodic ones at quiet times, and lower [scan] jobs "
                    "leaves more cores to the rest."
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


def _windows(ctx: AdviceContext) -> list[tuple[int, int]]:
    return [
        (s.started_ms, s.finished_ms if s.finished_ms is not None else ctx.now_ms)
        for s in ctx.all_scans
        if not s.is_import  # another tool's results, not a scan that ran here
    ]


def rule_unexplained_anomalies(ctx: AdviceContext) -> list[Advice]:
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
                            f"From {iso_minutes(t0)} to {iso_minutes(t1)}, {series} stayed "
                            f"well above its usual level (median {median:.4g}) while no scan "
                            "ran: nothing secperf knows of explains it."
                        ),
                        evidence=(
                            Evidence("from", iso_minutes(t0)),
                            Evidence("to", iso_minutes(t1)),
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
