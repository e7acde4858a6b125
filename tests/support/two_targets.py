"""A store holding two targets scanned from two hosts, filled through the store's API.

``alpha-project`` is scanned twice from ``host-one`` (its newest scan has a
high and a medium finding), ``beta-project`` once from ``host-two`` (a low
finding, 40 % coverage); each has a gate verdict, firing alerts labelled with
its target and host, and host-wide samples. A silenced firing alert on
``host-one`` tests that silenced alerts are counted apart. Every name that
belongs to one scope holds that scope's marker (``alpha-project``,
``host-one`` ...), so a response leaking another scope shows its marker.
"""

from __future__ import annotations

import dataclasses

from secperf.events import AlertChanged
from secperf.model import (
    Alert,
    AlertState,
    GateResult,
    GateVerdict,
    MetricKind,
    Sample,
    ScanCost,
    Severity,
)
from secperf.store import Store
from support.factories import make_finding, make_scan_metrics

HOUR = 3_600_000
ALPHA, BETA = "alpha-project", "beta-project"
HOST_ONE, HOST_TWO = "host-one", "host-two"
#: What each scope's data is recognised by in a response.
MARKERS = {
    ALPHA: (ALPHA,),
    BETA: (BETA,),
    # A metric only one host has: its name is in that host's series and names.
    HOST_ONE: (HOST_ONE, "swap_in_host_one"),
    HOST_TWO: (HOST_TWO, "swap_in_host_two"),
}


def scan(
    store: Store,
    scan_id: str,
    target: str,
    host: str,
    finished_ms: int,
    severities: list[Severity],
    *,
    kind: str = "scan",
    coverage: float = 95.0,
    cpu_seconds: float | None = None,
) -> None:
    """Record one complete scan (or import) of ``target`` with findings of ``severities``."""
    found = [
        make_finding(f"B{600 + i}", f"{target}/mod{i}.py", sev, line=i + 1)
        for i, sev in enumerate(severities)
    ]
    metrics = dataclasses.replace(
        make_scan_metrics(scan_id, finished_ms, found, new=len(found), target=target),
        kind=kind,
        scan_coverage_percent=coverage,
    )
    store.record_scan_started(scan_id, target, metrics.started_ms, ["bandit"])
    store.add_findings(scan_id, found, [f.fingerprint for f in found])
    store.record_scan_completed(metrics, "ok", host=host)
    if cpu_seconds is not None:
        store.record_scan_cost(
            ScanCost(scan_id, metrics.started_ms, finished_ms, cpu_seconds, 50_000_000, 0, 0)
        )


def firing_alert(store: Store, fingerprint: str, rule: str, now: int, **labels: str) -> Alert:
    """A firing alert with ``labels``, stored with its transition (for annotations)."""
    alert = Alert(
        fingerprint=fingerprint,
        rule=rule,
        state=AlertState.FIRING,
        severity=Severity.HIGH,
        kind=MetricKind.PERFORMANCE,
        labels=dict(labels),
        value=93.0,
        active_since_ms=now - 120_000,
        fired_at_ms=now - 60_000,
        updated_ms=now - 60_000,
    )
    store.record_alert_transition(
        AlertChanged(alert=alert, previous_state=AlertState.PENDING, ts_ms=now - 60_000)
    )
    return alert


def fill_two_targets(store: Store, now: int) -> None:
    """Fill ``store`` as the module doc says."""
    scan(store, f"{ALPHA}-scan-1", ALPHA, HOST_ONE, now - 3 * HOUR, [Severity.HIGH])
    scan(
        store,
        f"{ALPHA}-scan-2",
        ALPHA,
        HOST_ONE,
        now - 2 * HOUR,
        [Severity.HIGH, Severity.MEDIUM],
        cpu_seconds=3.5,
    )
    scan(store, f"{BETA}-scan-1", BETA, HOST_TWO, now - HOUR, [Severity.LOW], coverage=40.0)
    store.add_gate_run(
        GateResult(f"{ALPHA}-gate", ALPHA, now - 5000, now - 4000, GateVerdict.BLOCK)
    )
    store.add_gate_run(GateResult(f"{BETA}-gate", BETA, now - 3000, now - 2000, GateVerdict.PASS))
    samples: list[Sample] = []
    for host, cpu, memory in ((HOST_ONE, 35.0, 61.0), (HOST_TWO, 80.0, 42.0)):
        for i in range(10):
            ts = now - 10_000 + i * 1000
            samples.append(Sample("cpu_percent", {"host": host}, ts, cpu))
            samples.append(Sample("cpu_percent", {"host": host, "cpu": "1"}, ts, 99.0))
            samples.append(Sample("memory_percent", {"host": host}, ts, memory))
            samples.append(Sample("load_1m", {"host": host}, ts, 1.5))
        marker = "swap_in_host_one" if host == HOST_ONE else "swap_in_host_two"
        samples.append(Sample(marker, {"host": host}, now - 1000, 0.0))
    store.write_samples(samples)
    firing_alert(store, "a1" * 8, "cpu_high", now, host=HOST_ONE, target=ALPHA)
    firing_alert(store, "b2" * 8, "cpu_high", now, host=HOST_TWO, target=BETA)
    firing_alert(store, "c3" * 8, "noisy_rule", now, host=HOST_ONE, target=ALPHA)
    store.add_silence(
        [{"name": "alertname", "value": "noisy_rule", "op": "="}],
        now - HOUR,
        now + HOUR,
        "ops",
        "known noise",
    )
