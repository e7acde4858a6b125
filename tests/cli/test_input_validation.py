"""Nonsense input through the command line: a clear error naming the field, exit 2.

The CLI in-process on real files and a real SQLite store: benchmark JSON with
impossible statistics, alert rules with impossible parameters, a config with
several wrong keys at once, and how `findings show` lays out what it shows.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from secperf.store import Store
from support.cli import CliResult, run_cli
from support.paths import FIXTURES as FIXTURES_DIR

FIXTURES = FIXTURES_DIR / "benchmarks"


def secperf(cwd: Path, *args: str, columns: int = 200) -> CliResult:
    home = cwd.parent / "home"
    home.mkdir(exist_ok=True)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home)}
    env["COLUMNS"] = str(columns)
    return run_cli(args, cwd=cwd, env=env)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    return root


def test_import_of_a_negative_median_stores_nothing_and_names_the_field(project: Path) -> None:
    doc = json.loads((FIXTURES / "pytest_benchmark_tiny.json").read_text())
    doc["benchmarks"][2]["stats"]["median"] = -0.3
    (project / "bench.json").write_text(json.dumps(doc))
    result = secperf(project, "import", "pytest-benchmark", "bench.json")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "bench.json: benchmarks[2].stats.median: -0.3 is negative" in result.stderr
    assert "nothing was stored" in result.stderr
    assert "Traceback" not in result.stderr
    db = project / ".secperf" / "secperf.db"
    if db.exists():
        with Store.open(db) as store:
            assert store.benchmark_results(limit=None) == []


def test_rules_check_refuses_a_negative_min_effect(project: Path) -> None:
    (project / "alerts.toml").write_text(
        '[[rules]]\nname = "ScansSlowResponses"\nkind = "scan_impact"\n'
        'metric = "response_time_ms"\nmin_effect_pct = -1\n'
    )
    result = secperf(project, "alerts", "rules", "check", "alerts.toml")
    assert result.returncode == 2, result.stdout + result.stderr
    assert (
        "alerts.toml: rules[0] ('ScansSlowResponses'): min_effect_pct: must not be negative, "
        "got -1" in result.stdout
    )


def test_config_check_lists_every_problem_at_once(project: Path) -> None:
    (project / "secperf.toml").write_text('[server]\nport = 99999\ntoken = "short"\n')
    result = secperf(project, "config", "check")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "secperf.toml: server.port: expected an integer from 0 to 65535" in result.stderr
    assert "secperf.toml: server.token: the token must be at least 16 characters" in result.stderr
    assert "short" not in result.stderr + result.stdout


SARIF = {
    "version": "2.1.0",
    "runs": [
        {
            "tool": {"driver": {"name": "gitleaks", "rules": [{"id": "R1"}]}},
            "results": [
                {
                    "ruleId": "R1",
                    "level": "error",
                    "message": {"text": "something found here"},
                    "locations": [
                        {
                            "physicalLocation": {
                                "artifactLocation": {"uri": "app.py"},
                                "region": {"startLine": 2},
                            }
                        }
                    ],
                }
            ],
        }
    ],
}


def test_findings_show_keeps_labels_and_values_apart(project: Path) -> None:
    (project / "app.py").write_text(
        "import subprocess\n\n\ndef run(cmd):\n    return subprocess.call(cmd, shell=True)\n"
    )
    (project / "tool.sarif").write_text(json.dumps(SARIF))
    (project / "secperf.toml").write_text('[scan]\nscanners = ["bandit", "sarif"]\n')
    report = json.loads(secperf(project, "scan", "--format", "json").stdout)
    by_scanner = {f["scanner"]: f for f in report["findings"]}
    assert by_scanner["sarif"]["properties"]["tool_version"] is None  # the case at hand

    for finding in (by_scanner["sarif"], by_scanner["bandit"]):
        shown = secperf(project, "findings", "show", finding["fingerprint"][:12], columns=80)
        assert shown.returncode == 0, shown.stdout + shown.stderr
        lines = [line.rstrip() for line in shown.stdout.splitlines() if line.strip()]
        assert all(len(line) <= 80 for line in lines)
        # Every row is "label", at least two spaces, then the value in one column.
        first = re.match(r"^fingerprint( {2,})\S", lines[0])
        assert first, lines[0]
        column = first.end() - 1
        for line in lines:
            label = line[:column].strip()
            assert line[:column] == label.ljust(column), f"not aligned: {line!r}"
            assert len(label) <= column - 2, f"label runs into its value: {line!r}"
            assert line[column] != " " or label == "code", f"value not in its column: {line!r}"
        assert "null" not in shown.stdout

    sarif_shown = secperf(project, "findings", "show", by_scanner["sarif"]["fingerprint"])
    rows = dict(
        re.split(r" {2,}", line.strip(), maxsplit=1)
        for line in sarif_shown.stdout.splitlines()
        if line.strip()
    )
    assert rows["tool_version"] == "-"
    assert rows["original_rule_id"] == "R1"
