"""Build the collectors ``[monitor]`` asks for, each with its configured interval.

Every collector can be switched off (``enabled = false`` in its section, or
``monitor.enabled = false`` for all of them) or given its own interval. The
system and process collectors follow ``monitor.interval`` unless their section
sets one; each Prometheus target is its own collector, named
``prometheus:<target name>``, with its own interval and timeout, so a slow
target never delays the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from secperf.config import MonitorConfig, PrometheusTargetConfig
from secperf.perf.collectors.interface import Collector, check_interval
from secperf.perf.collectors.process import ProcessCollector
from secperf.perf.collectors.prometheus import PrometheusCollector, ScrapeTarget
from secperf.perf.collectors.system import SystemCollector

__all__ = ["PROMETHEUS_PREFIX", "CollectorPlan", "build_collectors"]

#: Prefix of the name of each Prometheus target's collector.
PROMETHEUS_PREFIX = "prometheus:"


@dataclass
class CollectorPlan:
    """The collectors to run, and why the others are not running.

    ``switched_off`` maps a collector (or target) name to the setting or
    option that switched it off, for display.
    """

    collectors: list[Collector] = field(default_factory=list)
    switched_off: dict[str, str] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        """The names of the collectors that run."""
        return [c.name for c in self.collectors]

    def prometheus(self) -> list[PrometheusCollector]:
        """The scrape collectors (one per target)."""
        return [c for c in self.collectors if isinstance(c, PrometheusCollector)]

    def close(self) -> None:
        """Release what the collectors hold (when they never ran)."""
        for collector in self.collectors:
            collector.close()


def build_collectors(
    monitor: MonitorConfig,
    *,
    system: bool = True,
    process: bool = True,
    prometheus: bool = True,
    interval_s: float | None = None,
    host: str | None = None,
) -> CollectorPlan:
    """The collectors ``monitor`` enables; the keyword flags can only switch more off.

    ``interval_s`` (the command line's ``--interval``) replaces the configured
    interval of the system and process collectors; scrape targets keep theirs,
    which must stay longer than their timeouts.
    """
    plan = CollectorPlan()
    override = check_interval(interval_s, "--interval") if interval_s is not None else None
    if not monitor.enabled:
        for name in ("system", "process", "prometheus"):
            plan.switched_off[name] = "monitor.enabled = false"
        return plan

    if not monitor.system.enabled:
        plan.switched_off["system"] = "monitor.system.enabled = false"
    elif not system:
        plan.switched_off["system"] = "--no-system"
    else:
        plan.collectors.append(
            SystemCollector(
                interval_s=override or monitor.system.interval / 1000,
                per_cpu=monitor.system.per_cpu,
                host=host,
            )
        )

    proc_cfg = monitor.process
    if not proc_cfg.enabled:
        plan.switched_off["process"] = "monitor.process.enabled = false"
    elif not process:
        plan.switched_off["process"] = "--no-process"
    else:
        plan.collectors.append(
            ProcessCollector(
                pids=proc_cfg.pids,
                names=proc_cfg.names,
                cmdline_patterns=proc_cfg.cmdline_patterns,
                include_self=proc_cfg.include_self,
                include_children=proc_cfg.include_self,
                interval_s=override or proc_cfg.interval / 1000,
                host=host,
            )
        )

    targets = monitor.prometheus.targets
    if targets and not monitor.prometheus.enabled:
        plan.switched_off["prometheus"] = "monitor.prometheus.enabled = false"
    elif targets and not prometheus:
        plan.switched_off["prometheus"] = "--no-prometheus"
    else:
        plan.collectors.extend(_scrape_collectors(targets, host))
    return plan


def _scrape_collectors(
    targets: Sequence[PrometheusTargetConfig], host: str | None
) -> list[Collector]:
    out: list[Collector] = []
    for target in targets:
        out.append(
            PrometheusCollector(
                [ScrapeTarget(target.url, job=target.name, labels=dict(target.labels))],
                interval_s=target.interval / 1000,
                timeout_s=target.timeout / 1000,
                host=host,
                name=f"{PROMETHEUS_PREFIX}{target.name}",
            )
        )
    return out
