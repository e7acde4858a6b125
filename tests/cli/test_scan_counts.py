"""`secperf scan` stores its security series, and every count of a scan agrees.

In-process CLI runs (``support.cli.run_cli``) with the real bandit scanner on a
real project directory, storing into a real SQLite file that the test then
reads back.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from secperf.model import Severity
from secperf.store import Store
from support.cli import CliResult, run_cli

SERIES = (
    "security_violations",
    "vulnerability_count",
    "security_false_positives",
    "security_scan_time",
    "security_scan_coverage",
    "security_new_findings",
    "security_findings",
)


def secperf(cwd: Path, *args: str, check: int | None = None) -> CliResult:
    home = cwd.parent / "home"
    home.mkdir(exist_ok=True)
    result = run_cli(args, cwd=cwd, env={"PATH": "/usr/bin:/bin", "HOME": str(home)})
    if check is not None:
        assert result.returncode == check, result.stdout + result.stderr
    return result


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "svc"
    (root / "app").mkdir(parents=True)
    # Several bandit findings of different severities: shell=True (high), an
    # assert (low), a bare except-pass (low), subprocess import (low).
    (root / "app" / "tasks.py").write_text(
        "import subprocess\n\n\n"
        "def run(cmd):\n"
        "    assert cmd\n"
        "    try:\n"
        "        return subprocess.call(cmd, shell=True)\n"
        "    except Exception:\n"
        "        pass\n"
    )
    (root / "secperf.toml").write_text(
        '[scan]\nscanners = ["bandit"]\n\n[store]\nurl = "data/secperf.db"\n'
    )
    return root


def _store(project: Path) -> Store:
    return Store.open(project / "data" / "secperf.db")


def test_cli_scans_store_security_series_that_metrics_query_finds(project: Path) -> None:
    for _ in range(2):
        secperf(project, "scan", "--fail-on", "critical", check=0)

    query = secperf(project, "metrics", "query", "security_scan_time", "--since", "1h")
    assert query.returncode == 0, query.stdout + query.stderr
    assert "security_scan_time" in query.stdout
    with _store(project) as store:
        assert set(SERIES) <= set(store.list_metric_names())
        points = store.query("vulnerability_count", None, 0, 2**53)
        # One sample per scan: stored once, by the store, for each of the two scans.
        assert sum(int(p.timestamps.size) for p in points) == 2
        assert {p.labels["target"] for p in points} == {str(project.resolve())}


def test_one_count_per_number_with_a_false_positive(project: Path) -> None:
    first = json.loads(
        secperf(project, "scan", "--format", "json", "--fail-on", "critical", check=0).stdout
    )
    findings = first["findings"]
    assert len(findings) >= 3
    fp = next(f for f in findings if f["severity"] == "low")
    secperf(project, "triage", fp["fingerprint"], "--false-positive", "--reason", "test", check=0)

    table = secperf(project, "scan", "--fail-on", "critical", check=0).stdout
    row = re.search(r"violations\s+│?\s*(\d+) \(([^)]*)\)", table)
    assert row is not None, table
    total = int(row.group(1))
    parts = sum(int(n) for n in re.findall(r"[a-z]+ (\d+)", row.group(2)))
    assert total == parts == len(findings) - 1
    assert "1 false positive" in table

    with _store(project) as store:
        latest = store.scans(limit=1)[0]
        assert latest.metrics is not None
        m = latest.metrics
        assert m.violations_found == total
        assert sum(m.vulnerability_severity_counts.values()) == total
        assert m.false_positives == 1
        assert m.new_findings + m.existing_findings == total
        finished = m.finished_ms
        stored = {
            (p.name, p.labels.get("severity")): float(p.values[-1])
            for name in ("vulnerability_count", "security_violations", "security_new_findings")
            for p in store.query(name, None, finished, finished)
        }
    assert stored[("vulnerability_count", None)] == total
    assert sum(stored[("security_violations", s.value)] for s in Severity) == total
    assert sum(stored[("security_new_findings", s.value)] for s in Severity) == m.new_findings
