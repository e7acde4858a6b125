"""`secperf baseline update --osv-db`: dependency findings are accepted like any other."""

from __future__ import annotations

import json
from pathlib import Path

from support.cli import run_cli
from support.paths import FIXTURES

OSV = FIXTURES / "osv"


def test_baseline_update_takes_the_osv_database_scan_and_gate_take(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("requests==2.19.0\n")
    (tmp_path / "secperf.toml").write_text('[scan]\nscanners = ["deps"]\n')
    scanned = run_cli(["scan", "--osv-db", str(OSV), "--format", "json"], cwd=tmp_path)
    assert scanned.returncode in (0, 1), scanned.stderr
    report = json.loads(scanned.stdout)
    vulnerable = {f["rule_id"] for f in report["findings"] if f["scanner"] == "deps"}
    assert vulnerable, report["findings"]
    assert all(f["is_new"] for f in report["findings"])

    updated = run_cli(["baseline", "update", "--osv-db", str(OSV)], cwd=tmp_path)
    assert updated.returncode == 0, updated.stderr
    accepted = json.loads((tmp_path / ".secperf-baseline.json").read_text())["findings"]
    assert {entry["rule_id"] for entry in accepted.values()} == vulnerable

    again = run_cli(["scan", "--osv-db", str(OSV), "--format", "json"], cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert [f for f in json.loads(again.stdout)["findings"] if f["is_new"]] == []


def test_baseline_update_with_a_missing_osv_database_is_exit_2(tmp_path: Path) -> None:
    result = run_cli(["baseline", "update", "--osv-db", str(tmp_path / "nope")], cwd=tmp_path)
    assert result.returncode == 2
    assert "--osv-db:" in result.stderr and "does not exist" in result.stderr
    assert not (tmp_path / ".secperf-baseline.json").exists()
