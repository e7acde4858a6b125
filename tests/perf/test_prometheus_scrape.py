"""A real Prometheus server scrapes secperf's /metrics and answers PromQL about it."""

from __future__ import annotations

import time
from pathlib import Path

from secperf.bus import AsyncEventBus
from secperf.model import Sample, SecurityMetrics
from secperf.store import Store
from secperf.web import create_app
from support.prometheus import running_app, start_prometheus


def _seed(store: Store) -> None:
    now = time.time_ns() // 1_000_000
    store.record_scan_started("scan-1", "repo", now - 2_000, ["bandit"])
    store.record_scan_completed(
        SecurityMetrics(
            scan_id="scan-1",
            target="repo",
            started_ms=now - 2_000,
            finished_ms=now - 1_000,
            scan_duration_ms=1_000.0,
            violations_found=5,
            false_positive_rate=0.2,
            vulnerability_severity_counts={"high": 3, "low": 2},
            scan_coverage_percent=97.5,
            eligible_files=40,
            files_scanned=39,
        ),
        "ok",
    )
    store.write_samples([Sample("app_queue_depth", {"queue": "jobs"}, now, 12.0)])


def test_prometheus_scrapes_security_violations(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "store.db")
    _seed(store)
    app = create_app(store, AsyncEventBus())
    with running_app(app) as server:
        target = server.url.removeprefix("http://")
        with start_prometheus(tmp_path, [target]) as prometheus:
            deadline = time.monotonic() + 30
            values: dict[str, float] = {}
            while time.monotonic() < deadline:
                for row in prometheus.query('security_violations{target="repo"}'):
                    values[row["metric"]["severity"]] = float(row["value"][1])
                if values:
                    break
                time.sleep(0.5)
            assert values, f"no security_violations in Prometheus; targets: {prometheus.targets()}"
            assert values["high"] == 3.0
            assert values["low"] == 2.0
            assert values["critical"] == 0.0
            queue = prometheus.query('app_queue_depth{queue="jobs"}')
            assert [float(r["value"][1]) for r in queue] == [12.0]
            coverage = prometheus.query("security_scan_coverage")
            assert float(coverage[0]["value"][1]) == 97.5
            health = prometheus.targets()
            assert [t["health"] for t in health] == ["up"]
    store.close()
