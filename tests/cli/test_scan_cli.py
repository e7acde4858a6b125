"""`secperf scan`, `baseline`, `findings` and `triage` end to end, with the real scanners.

The commands run in-process (``support.cli.run_cli``) on a real project
directory; the leak test runs them as real ``python -m secperf``
processes, whose stderr carries the log lines too. The store is the real
SQLite file they write. The planted secrets below are fake test values; the
test checks that none of them appears in any output, report, database, cache
or log.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from support.cli import CliResult, run_cli
from support.paths import SARIF_SCHEMA

FAKE_AWS_KEY = "AKIAZZZZZZZZEXAMPLE7"
FAKE_PASSWORD = "correct-horse-battery-staple-42"
FAKE_GITHUB_TOKEN = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
PLANTED = (FAKE_AWS_KEY, FAKE_PASSWORD, FAKE_GITHUB_TOKEN)

SCHEMA = SARIF_SCHEMA


def _env(cwd: Path) -> dict[str, str]:
    home = cwd.parent / "home"
    home.mkdir(exist_ok=True)
    return {"PATH": "/usr/bin:/bin", "HOME": str(home)}


def secperf(cwd: Path, *args: str, check: int | None = None) -> CliResult:
    result = run_cli(args, cwd=cwd, env=_env(cwd))
    if check is not None:
        assert result.returncode == check, result.stdout + result.stderr
    return result


def secperf_process(
    cwd: Path, *args: str, check: int | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "secperf", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
        env=_env(cwd),
    )
    if check is not None:
        assert result.returncode == check, result.stdout + result.stderr
    return result


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "svc"
    (root / "app").mkdir(parents=True)
    (root / "app" / "__init__.py").write_text("")
    (root / "app" / "handlers.py").write_text(
        "import subprocess\n\n"
        f'AWS_ACCESS_KEY_ID = "{FAKE_AWS_KEY}"\n'
        f'password = "{FAKE_PASSWORD}"\n\n\n'
        "def run(cmd):\n"
        "    return subprocess.call(cmd, shell=True)\n"
    )
    (root / "app" / "config.yaml").write_text(f"github_token: {FAKE_GITHUB_TOKEN}\n")
    (root / "secperf.toml").write_text('[scan]\nscanners = ["bandit", "secrets"]\n')
    return root


def all_text_under(root: Path) -> bytes:
    blobs = []
    for path in root.rglob("*"):
        if path.is_file() and path.suffix not in (".py", ".yaml"):
            blobs.append(path.read_bytes())
    return b"\n".join(blobs)


@pytest.mark.slow
def test_scan_reports_in_every_format_without_leaking_secrets(
    project: Path, tmp_path: Path
) -> None:
    table = secperf_process(project, "scan", check=1)  # B602 and the AWS key are high
    as_json = secperf_process(project, "scan", "--format", "json", check=1)
    sarif_out = tmp_path / "out" / "report.sarif"
    sarif = secperf_process(project, "scan", "--format", "sarif", "-o", str(sarif_out), check=1)
    listed = secperf_process(project, "findings", "list", "--json", check=0)

    report = json.loads(as_json.stdout)
    rules = {(f["rule_id"], f["path"]) for f in report["findings"]}
    assert ("B602", "app/handlers.py") in rules
    assert ("aws-access-key", "app/handlers.py") in rules
    assert any(r == "github-token" for r, _ in rules), rules
    # handlers.py, __init__.py and secperf.toml for secrets, config.yaml too; .py for bandit
    assert report["metrics"]["files_scanned"] == 4
    assert "B602" in table.stdout and "scan summary" in table.stdout

    outputs = [table, as_json, sarif, listed]
    text = "".join(r.stdout + r.stderr for r in outputs)
    text += sarif_out.read_text()
    stored = all_text_under(project / ".secperf")
    for secret in PLANTED:
        assert secret not in text, f"{secret[:4]}... printed"
        assert secret.encode() not in stored, f"{secret[:4]}... stored"
        # Nor a large piece of it (e.g. a preview that shows too much).
        assert secret[4:-4] not in text


def test_unwritable_output_is_a_usage_error(project: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = secperf(project, "scan", "--format", "sarif", "-o", str(blocker / "scan.sarif"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"--output: cannot write {blocker / 'scan.sarif'}" in result.stderr
    assert "Traceback" not in result.stderr


def test_sarif_output_is_valid(project: Path, tmp_path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    if not SCHEMA.exists():
        pytest.skip(f"the official SARIF schema is not at {SCHEMA} (shared/ beside the clone)")
    out = tmp_path / "scan.sarif"
    secperf(project, "scan", "--format", "sarif", "--output", str(out), check=1)
    log = json.loads(out.read_text())
    jsonschema.validate(log, json.loads(SCHEMA.read_text()))
    results = log["runs"][0]["results"]
    assert results
    for result in results:
        assert result["partialFingerprints"]["secperfFingerprint/v1"]
        assert float(result["properties"]["security-severity"]) >= 0
        assert result["baselineState"] == "new"


def test_baseline_then_only_new_findings_count(project: Path) -> None:
    secperf(project, "scan", check=1)
    secperf(project, "baseline", "update", check=0)
    baseline = json.loads((project / ".secperf-baseline.json").read_text())
    assert len(baseline["findings"]) >= 4
    assert FAKE_AWS_KEY not in json.dumps(baseline)
    secperf(project, "scan", check=0)  # everything is in the baseline now

    # Moving code to other lines keeps every fingerprint: still nothing new.
    handlers = project / "app" / "handlers.py"
    handlers.write_text("\n\n\n# moved\n" + handlers.read_text())
    moved = json.loads(secperf(project, "scan", "--format", "json", check=0).stdout)
    assert moved["metrics"]["new_findings"] == 0

    (project / "app" / "extra.py").write_text("import os\nos.system(input())\n")
    result = secperf(project, "scan", "--format", "json", "--fail-on", "medium", check=1)
    report = json.loads(result.stdout)
    assert report["metrics"]["new_findings"] >= 1
    assert {f["path"] for f in report["findings"] if f["is_new"]} == {"app/extra.py"}


def test_triage_sets_findings_aside(project: Path) -> None:
    report = json.loads(secperf(project, "scan", "--format", "json", check=1).stdout)
    high = [f for f in report["findings"] if f["severity"] in ("high", "critical")]
    for finding in high:
        secperf(
            project,
            "triage",
            finding["fingerprint"][:12],
            "--accept-risk",
            "--reason",
            "internal tool",
            "--until",
            "2999-01-01",
            check=0,
        )
    again = json.loads(secperf(project, "scan", "--format", "json", check=0).stdout)
    states = {f["fingerprint"]: f["state"] for f in again["findings"]}
    assert all(states[f["fingerprint"]] == "accepted_risk" for f in high)

    fp = high[0]["fingerprint"]
    secperf(project, "triage", fp, "--false-positive", "--reason", "test data", check=0)
    rate = json.loads(secperf(project, "scan", "--format", "json", check=0).stdout)
    assert rate["metrics"]["false_positive_rate"] == pytest.approx(1 / len(rate["findings"]))
    shown = secperf(project, "findings", "show", fp[:10], check=0)
    assert "false_positive" in shown.stdout and "accepted_risk" in shown.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["triage", "abc", "--false-positive", "--reason", "x"], "at least 6 characters"),
        (["triage", "abcdef123", "--reason", "x"], "exactly one of"),
        (["triage", "abcdef123", "--false-positive"], "--reason is required"),
        (["scan", "--scanners", "bandit,nope"], "unknown scanner 'nope'"),
        (["scan", "--osv-db", "/nonexistent/osv"], "does not exist"),
        (["scan", "--fail-on", "urgent"], "unknown severity"),
    ],
)
def test_bad_usage_exits_2_with_a_reason(project: Path, args: list[str], message: str) -> None:
    result = secperf(project, *args, check=2)
    assert message in result.stderr


def test_malformed_baseline_is_a_clear_error(project: Path) -> None:
    (project / ".secperf-baseline.json").write_text("{not json")
    result = secperf(project, "scan", check=2)
    assert ".secperf-baseline.json: not valid JSON" in result.stderr


def test_a_directory_given_on_the_command_line_brings_its_own_config(
    project: Path, tmp_path: Path
) -> None:
    (project / "secperf.toml").write_text('[scan]\nscanners = ["bandit"]\nfail_on = "critical"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = secperf(elsewhere, "scan", str(project), "--format", "json", check=0)
    report = json.loads(result.stdout)
    assert set(report["metrics"]["scanner_durations_ms"]) == {"bandit"}
    assert (project / ".secperf" / "secperf.db").exists()
    assert not (elsewhere / ".secperf").exists()
