"""The alert context shows the scans the alert is about: its target's, else its host's.

Scans of two targets on one machine, fed as the engine feeds them (bus events,
or the store's rows at start), and a real SQLite store; the last test runs the
whole engine on a real bus with the default security rules.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from secperf.alerts import AlertEngine, GroupSettings, default_rules
from secperf.alerts.context import ContextBuilder, ScanTracker
from secperf.alerts.describe import CONTEXT_KEPT_MS
from secperf.bus.memory import AsyncEventBus
from secperf.events import ScanCompleted, ScanStarted, ViolationDetected
from secperf.model import Alert, AlertState, Finding, MetricKind, SecurityMetrics, Severity
from secperf.store import Store, StoreWriter
from support.factories import make_finding
from support.waiting import wait_for

T0 = 1_700_000_000_000
MIN = 60_000
SHOP = "/srv/shop"
BLOG = "/srv/blog"
HOST = "web-1"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "context.db") as opened:
        yield opened


def _metrics(scan_id: str, target: str, start: int, end: int, new: int) -> SecurityMetrics:
    return SecurityMetrics(
        scan_id=scan_id,
        target=target,
        started_ms=start,
        finished_ms=end,
        scan_duration_ms=float(end - start),
        violations_found=new,
        false_positive_rate=0.0,
        vulnerability_severity_counts={"critical": new},
        scan_coverage_percent=100.0,
        new_findings=new,
        scanner_durations_ms={"bandit": 10.0},
    )


def _finding(fingerprint: str, path: str) -> Finding:
    return make_finding("B105", path, Severity.CRITICAL, fingerprint=fingerprint, line=3)


def _events(
    scan_id: str, target: str, start: int, end: int | None, found: list[Finding], host: str = HOST
) -> list[Any]:
    events: list[Any] = [
        ScanStarted(scan_id=scan_id, target=target, scanners=("bandit",), ts_ms=start, host=host)
    ]
    events += [ViolationDetected(scan_id=scan_id, finding=f, host=host) for f in found]
    if end is not None:
        metrics = _metrics(scan_id, target, start, end, len(found))
        events.append(ScanCompleted(metrics=metrics, ts_ms=end, host=host))
    return events


def _tracker(events: list[Any]) -> ScanTracker:
    """A tracker fed as the engine feeds it."""
    tracker = ScanTracker()
    for event in events:
        if isinstance(event, ScanStarted):
            tracker.started(event)
        elif isinstance(event, ViolationDetected):
            tracker.violation(event)
        else:
            tracker.completed(event)
    return tracker


def _alert(labels: dict[str, str], at: int, kind: MetricKind = MetricKind.SECURITY) -> Alert:
    return Alert(
        fingerprint="f",
        rule="NewCriticalFinding",
        state=AlertState.FIRING,
        severity=Severity.CRITICAL,
        kind=kind,
        labels=labels,
        active_since_ms=at,
    )


# The shop was scanned first (one new finding); the blog after it (two), and a
# second blog scan is running when the alerts are looked at.
SCANS = [
    *_events("shop-1", SHOP, T0, T0 + MIN, [_finding("shop-f", "shop.py")]),
    *_events(
        "blog-1", BLOG, T0 + 2 * MIN, T0 + 3 * MIN, [_finding("b1", "a.py"), _finding("b2", "b.py")]
    ),
    *_events("blog-2", BLOG, T0 + 4 * MIN, None, []),
]
AT = T0 + 5 * MIN


def test_an_alert_about_one_target_shows_that_targets_scans_only(store: Store) -> None:
    builder = ContextBuilder(store, _tracker(SCANS))
    shop = builder.build(_alert({"target": SHOP, "host": HOST}, AT), None, {}, AT)
    security = shop["security"]
    assert security["scope"] == {"target": SHOP, "host": None}
    assert security["latest_scan"]["scan_id"] == "shop-1"
    assert [f["fingerprint"] for f in security["new_findings"]] == ["shop-f"]
    # The blog's scan running at the time is not the shop's.
    assert security["scan_running"] is None
    assert [s["scan_id"] for s in security["scans"]] == ["shop-1"]
    assert shop["text"].startswith(
        "no security scan was running; the last scan (22:14:20) found 1 new findings"
    )
    blog = builder.security(AT, {"target": BLOG, "severity": "critical"}, AT)
    assert blog["latest_scan"]["scan_id"] == "blog-1"
    assert [f["fingerprint"] for f in blog["new_findings"]] == ["b1", "b2"]
    assert blog["scan_running"]["scan_id"] == "blog-2"
    # A target never scanned: nothing, rather than another target's scan.
    none = builder.security(AT, {"target": "/srv/other", "host": HOST}, AT)
    assert none["latest_scan"] is None and none["scan_running"] is None and none["scans"] == []
    assert builder.sentence(_alert({}, AT), None, none, {}) == "no security scan on record"


def test_a_host_alert_shows_the_scans_on_that_host_each_naming_its_target(
    store: Store,
) -> None:
    elsewhere = _events("api-1", "/srv/api", T0 + 4 * MIN, T0 + 6 * MIN, [], host="db-1")
    builder = ContextBuilder(store, _tracker([*SCANS, *elsewhere]))
    cpu = _alert({"host": HOST}, AT, MetricKind.PERFORMANCE)
    context = builder.build(cpu, None, {"host": HOST}, AT + MIN)
    security = context["security"]
    assert security["scope"] == {"target": None, "host": HOST}
    # Every scan on web-1 in the window (10 minutes before the alert to now), newest first.
    assert [(s["scan_id"], s["target"], s["host"]) for s in security["scans"]] == [
        ("blog-2", BLOG, HOST),
        ("blog-1", BLOG, HOST),
        ("shop-1", SHOP, HOST),
    ]
    assert security["scan_running"]["scan_id"] == "blog-2"
    assert context["text"].startswith(
        f"a security scan of {BLOG} (bandit) was running since 22:17:20"
    )
    # Another machine's alert: its own scan, not web-1's.
    db = builder.security(T0 + 5 * MIN, {"host": "db-1"}, AT)
    assert [s["scan_id"] for s in db["scans"]] == ["api-1"]
    assert db["scan_running"]["scan_id"] == "api-1"
    # A window that ends before the shop's scan began leaves it out.
    early = builder.security(T0 - 11 * MIN, {"host": HOST}, T0 - 10 * MIN)
    assert early["scans"] == []


def test_scans_seeded_from_the_store_keep_their_host(store: Store) -> None:
    store.record_scan_started("old-1", SHOP, T0, ("bandit",), owner_host=HOST)
    tracker = ScanTracker()
    tracker.seed(store.scans(limit=50))
    builder = ContextBuilder(store, tracker)
    security = builder.security(T0 + MIN, {"host": HOST}, T0 + MIN)
    assert [(s["scan_id"], s["host"]) for s in security["scans"]] == [("old-1", HOST)]
    assert builder.security(T0 + MIN, {"host": "db-1"}, T0 + MIN)["scans"] == []


def test_each_targets_firing_alert_carries_its_own_scan_through_the_engine(
    store: Store,
) -> None:
    rules = [r for r in default_rules(cpu_count=2) if r.name == "NewCriticalFinding"]
    assert rules

    now = [AT]

    async def main() -> dict[str, dict[str, Any]]:
        bus = AsyncEventBus()
        writer = StoreWriter(store, flush_interval_s=0.05)
        await writer.attach(bus)
        engine = AlertEngine(
            store,
            bus,
            rules,
            evaluation_interval_s=60,
            group_settings=GroupSettings(group_wait_ms=0, group_interval_ms=MIN),
            clock=lambda: now[0],
            host=HOST,
            min_firing_ms=0,
        )
        await engine.start(run_loop=False)
        try:
            for event in SCANS[:-1]:  # both finished scans
                await bus.publish(event)

            await wait_for(lambda: len(engine.alerts([AlertState.FIRING])) == 2, limit_s=30)
            # Past the time a context is kept: built anew, with both scans known.
            now[0] += CONTEXT_KEPT_MS + 1
            return {
                a.labels["target"]: engine.context(a.fingerprint)
                for a in engine.alerts([AlertState.FIRING])
            }
        finally:
            await engine.stop()
            await writer.close()
            await bus.close()

    contexts = asyncio.run(main())
    assert {t: c["security"]["latest_scan"]["target"] for t, c in contexts.items()} == {
        SHOP: SHOP,
        BLOG: BLOG,
    }
    assert [f["fingerprint"] for f in contexts[SHOP]["security"]["new_findings"]] == ["shop-f"]


def test_new_findings_come_from_the_store_when_the_log_announced_fewer(store: Store) -> None:
    """The event log announces a scan's first-seen findings only: the rest are in the store."""
    old, fresh = _finding("old", "a.py"), _finding("fresh", "b.py")
    store.record_scan_started("shop-1", SHOP, T0, ["bandit"])
    store.record_scan_findings("shop-1", [old], {"old"})
    store.record_scan_completed(_metrics("shop-1", SHOP, T0, T0 + MIN, 1), "ok")
    # Both are new to the baseline; only ``fresh`` is seen for the first time.
    store.record_scan_started("shop-2", SHOP, T0 + 2 * MIN, ["bandit"])
    store.record_scan_findings("shop-2", [old, fresh], {"old", "fresh"})
    store.record_scan_completed(_metrics("shop-2", SHOP, T0 + 2 * MIN, T0 + 3 * MIN, 2), "ok")
    heard = _events("shop-2", SHOP, T0 + 2 * MIN, T0 + 3 * MIN, [fresh])
    heard[-1] = ScanCompleted(
        metrics=_metrics("shop-2", SHOP, T0 + 2 * MIN, T0 + 3 * MIN, 2), ts_ms=T0 + 3 * MIN
    )
    builder = ContextBuilder(store, _tracker(heard))
    security = builder.security(AT, {"target": SHOP})
    assert security["latest_scan"]["scan_id"] == "shop-2"
    assert sorted(f["fingerprint"] for f in security["new_findings"]) == ["fresh", "old"]
