"""`secperf advice`: the API's recommendations on the terminal, from a real scan and store."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient

from secperf.bus import AsyncEventBus
from secperf.store import Store
from secperf.web import create_app
from secperf.web.providers import analysis_providers
from support.cli import run_cli

#: A hard-coded credential (the secrets scanner's) and a shell call (bandit's).
APP = 'import subprocess\npassword = "hunter2hunter2hunter2"\nsubprocess.call("ls", shell=True)\n'


def scanned_project(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "secperf.toml").write_text(
        '[scan]\nscanners = ["bandit", "secrets"]\n[store]\nurl = "data/secperf.db"\n'
    )
    scan = run_cli(["scan", "--format", "json"], cwd=tmp_path)
    assert scan.returncode in (0, 1), scan.stderr
    return tmp_path


def test_advice_json_is_the_api_document(tmp_path: Path) -> None:
    project = scanned_project(tmp_path)
    result = run_cli(["advice", "--json"], cwd=project)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert [a["id"] for a in shown["advice"]][:1] == ["secret"]
    with Store.open(project / "data" / "secperf.db") as store:
        app = create_app(store, AsyncEventBus(), **analysis_providers(store))
        with TestClient(app) as client:
            served = client.get("/api/v1/advice").json()
    assert shown["advice"] == served["advice"]


def test_advice_table_shows_evidence_and_action_at_80_columns(tmp_path: Path) -> None:
    project = scanned_project(tmp_path)
    result = run_cli(["advice"], cwd=project)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), result.stdout
    assert "…" not in result.stdout
    header = next(line for line in lines if "severity" in line)
    assert [cell.strip() for cell in header.strip("┃ ").split("┃")] == ["severity", "seen", "do"]
    # Each column's text, its wrapped lines joined up.
    columns: list[list[str]] = [[], [], []]
    for line in lines:
        if line.startswith("│"):
            for column, cell in zip(columns, line.split("│")[1:-1], strict=True):
                column.append(cell.strip())
    severity, seen, do = (" ".join(" ".join(c).split()) for c in columns)
    assert severity.split()[0] == "critical"
    assert "secret(s) found in the code" in seen
    assert "- app.py:2: secret-keyword" in seen  # the evidence
    assert "Rotate each credential now" in do  # the action
    # The secret's value is never printed.
    assert "hunter2" not in result.stdout


def test_advice_without_data_says_so(tmp_path: Path) -> None:
    (tmp_path / "secperf.toml").write_text('[store]\nurl = "data/secperf.db"\n')
    result = run_cli(["advice"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "no advice" in result.stdout
    assert json.loads(run_cli(["advice", "--json"], cwd=tmp_path).stdout) == {"advice": []}


def test_advice_gate_and_scan_agree_on_coverage_when_scanners_did_not_run(
    tmp_path: Path,
) -> None:
    """deps (no OSV data) and semgrep (no executable) do not run; one file cannot be decoded.

    The scanners that did not run skip no file: the advice and the gate show the
    scan's coverage and its files' skip kinds, and name those scanners apart.
    """
    (tmp_path / "app.py").write_text("def add(a, b):\n    return a + b\n")
    (tmp_path / "latin1.py").write_bytes(b'name = "caf\xe9"\n')  # not UTF-8
    (tmp_path / "requirements.txt").write_text("requests==2.31.0\n")
    (tmp_path / "secperf.toml").write_text(
        '[scan]\nscanners = ["bandit", "secrets", "deps", "semgrep"]\n'
        '[scan.semgrep]\nexecutable = "no-such-semgrep"\n'
        "[gate]\nmin_coverage = 95\n"
    )
    scan = run_cli(["scan", "--format", "json"], cwd=tmp_path)
    assert scan.returncode == 0, scan.stderr
    report = json.loads(scan.stdout)
    metrics = report["metrics"]
    assert sorted(report["unavailable"]) == ["deps", "semgrep"]
    assert {s["path"] for s in report["skipped"]} == {"latin1.py"}
    assert metrics["files_skipped"] == 1 and metrics["scan_coverage_percent"] < 90
    kinds = {k: n for k, n in metrics["skip_reasons"].items() if not k.endswith(": unavailable")}
    assert "not UTF-8 text" in kinds
    assert {k for k in metrics["skip_reasons"] if k not in kinds} == {
        "deps: unavailable",
        "semgrep: unavailable",
    }

    shown = run_cli(["advice", "--json"], cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    by_id = {a["id"]: a for a in json.loads(shown.stdout)["advice"]}
    coverage = by_id["coverage"]
    evidence = {e["label"]: e["value"] for e in coverage["evidence"]}
    assert evidence == {
        "coverage": f"{metrics['scan_coverage_percent']:.1f} %",
        **{f"skipped: {k}": str(n) for k, n in kinds.items()},
    }
    assert (
        f"skipped {metrics['files_skipped']} of {metrics['eligible_files']} eligible files"
        in coverage["detail"]
    )
    assert "semgrep" not in coverage["action"] and "deps" not in coverage["action"]
    assert "UTF-8" in coverage["action"]
    # The scanners that did not run: an item each, with why, not a coverage fix.
    for scanner in ("deps", "semgrep"):
        item = by_id[f"scanner-not-run:{scanner}"]
        assert item["severity"] == "low"
        assert item["evidence"] == [{"label": "why", "value": report["unavailable"][scanner]}]
        assert "skipped no file" in item["detail"]

    table = run_cli(["advice"], cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    seen = " ".join(table.stdout.replace("│", " ").split())
    assert f"- coverage: {metrics['scan_coverage_percent']:.1f} %" in seen
    assert "skipped: deps" not in seen and "skipped: semgrep" not in seen
    assert "The deps scanner did not run" in seen and "The semgrep scanner did not run" in seen

    gate = run_cli(["gate", "--format", "json"], cwd=tmp_path)
    assert gate.returncode == 1, gate.stdout + gate.stderr  # coverage below 95 % blocks
    conditions = {c["name"]: c for c in json.loads(gate.stdout)["result"]["conditions"]}
    reasons = ", ".join(f"{k}: {n}" for k, n in sorted(kinds.items()))
    assert conditions["scan coverage"]["status"] == "block"
    assert conditions["scan coverage"]["measured"] == round(metrics["scan_coverage_percent"], 2)
    assert conditions["scan coverage"]["evidence"] == (
        f"{metrics['files_scanned']} of {metrics['eligible_files']} eligible files scanned"
        f" ({metrics['scan_coverage_percent']:.1f} %); skipped: {reasons}"
    )
    ran = conditions["scanners ran"]["evidence"]
    assert "not run: deps: no OSV database" in ran
    assert "semgrep: semgrep executable no-such-semgrep not found" in ran
