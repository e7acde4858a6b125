"""What a scan costs the machine: sampled during a real `secperf scan`, stored with the scan."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from secperf.commands.scanning import ScanCostRecorder, run_scan
from secperf.config import load_config
from secperf.security.factory import ScanOptions
from secperf.store import Store

FAR_FUTURE_MS = 2**53
SOURCE = (
    "import subprocess\n\n\n"
    "def run_{i}(cmd):\n"
    "    total = 0\n"
    "    for n in range({i} * 10):\n"
    "        total += n\n"
    "    return subprocess.call(cmd, shell=True), total\n"
)


def secperf(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    home = cwd.parent / "home"
    home.mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "secperf", *args],
        cwd=cwd,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def make_project(root: Path, files: int, config: str = "") -> Path:
    (root / "app").mkdir(parents=True)
    for i in range(files):
        (root / "app" / f"mod_{i}.py").write_text(SOURCE.format(i=i))
    (root / "secperf.toml").write_text(
        '[store]\nurl = "data/secperf.db"\n[scan]\nscanners = ["bandit"]\n' + config
    )
    return root


@pytest.mark.slow  # a real process: its worker pool's CPU must count too
def test_scan_stores_its_cost_and_publishes_its_series(tmp_path: Path) -> None:
    # Enough files for the worker pool: the workers' CPU must count too.
    project = make_project(
        tmp_path / "proj", files=120, config='[monitor.impact]\ninterval = "50ms"\n'
    )
    result = secperf(project, "scan", "--no-cache", "--jobs", "2", "--format", "json")
    assert result.returncode == 1, result.stderr  # B602 everywhere: findings at high
    assert "Traceback" not in result.stderr

    with Store.open(project / "data" / "secperf.db") as store:
        [scan] = store.scans()
        cost = scan.cost
        assert cost is not None, "no ScanCost stored with the scan"
        assert cost.scan_id == scan.scan_id
        assert cost.cpu_seconds > 0
        assert cost.peak_rss_bytes > 0
        assert cost.samples >= 1
        # The sampled region is the scan's: from its start to its end.
        assert scan.metrics is not None and scan.finished_ms is not None
        assert scan.metrics.started_ms <= cost.started_ms <= scan.finished_ms <= cost.finished_ms
        # The scan's own metrics come from the sampler, not from rusage.
        assert scan.metrics.cpu_seconds == cost.cpu_seconds
        assert scan.metrics.peak_rss_bytes == cost.peak_rss_bytes

        host = store.query("host_cpu_percent", {"scan_id": scan.scan_id}, 0, FAR_FUTURE_MS)
        assert len(host) == 1 and "host" in host[0].labels
        assert len(host[0].timestamps) == cost.samples
        assert all(0.0 <= v <= 100.0 for v in host[0].values)
        for name in ("scan_process_cpu_percent", "scan_process_rss_bytes"):
            series = store.query(name, {"scan_id": scan.scan_id}, 0, FAR_FUTURE_MS)
            assert series and len(series[0].timestamps) == cost.samples, name
        rss = store.query("scan_process_rss_bytes", {"scan_id": scan.scan_id}, 0, FAR_FUTURE_MS)
        assert max(rss[0].values) == cost.peak_rss_bytes


def test_impact_switched_off_stores_no_cost(tmp_path: Path) -> None:
    project = make_project(tmp_path / "proj", files=2, config="[monitor.impact]\nenabled = false\n")
    loaded = load_config(project_dir=project)
    assert ScanCostRecorder.from_config(loaded.config) is None
    report, _ = asyncio.run(run_scan(loaded, ScanOptions(root=project, jobs=1, use_cache=False)))
    # Without the sampler the metrics still carry the process's resource usage.
    assert report.metrics.peak_rss_bytes > 0
    with Store.open(project / "data" / "secperf.db") as store:
        [scan] = store.scans()
        assert scan.scan_id == report.scan_id and scan.cost is None
        assert store.series("host_cpu_percent", None) == []


def test_monitoring_off_means_no_sampling(tmp_path: Path) -> None:
    project = make_project(tmp_path / "proj", files=1, config="[monitor]\nenabled = false\n")
    assert ScanCostRecorder.from_config(load_config(project_dir=project).config) is None


def test_a_scan_in_process_records_cost_through_the_runtime(tmp_path: Path) -> None:
    project = make_project(tmp_path / "proj", files=3)
    loaded = load_config(project_dir=project)
    report, _ = asyncio.run(run_scan(loaded, ScanOptions(root=project, jobs=1, use_cache=False)))
    with Store.open(project / "data" / "secperf.db") as store:
        scan = store.scan(report.scan_id)
        assert scan is not None and scan.cost is not None
        assert scan.status in ("ok", "partial") and scan.target == str(project.resolve())
        assert report.metrics.cpu_seconds == scan.cost.cpu_seconds
        assert store.query("host_cpu_percent", {"scan_id": report.scan_id}, 0, FAR_FUTURE_MS)
