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
