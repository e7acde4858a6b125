"""``secperf scan``'s table lists the findings to read first, and says how to see the rest.

A scan of a large codebase finds thousands of findings: the terminal table
lists ``--limit`` of them (50 by default), open before set aside, then new
before existing, then most severe first, then a line saying how many were
left out and which commands list them all. ``--limit 0``, JSON and an ``--output`` file
hold every finding.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from support.cli import run_cli

#: Files of the project below: each has a high finding (B602, the shell call)
#: and a low one (B404, the subprocess import).
FILES = 60
ID = re.compile(r"^([0-9a-f]{10})  ", re.MULTILINE)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project of ``FILES`` files, each with a high (B602) and a low (B404) finding."""
    (tmp_path / "secperf.toml").write_text('[scan]\nscanners = ["bandit"]\nfail_on = "critical"\n')
    for i in range(FILES):
        (tmp_path / f"mod_{i:03d}.py").write_text(
            "import subprocess\n\n\n"
            f"def run_{i}(cmd):\n    return subprocess.call(cmd, shell=True)\n"
        )
    return tmp_path


def _listed(stdout: str) -> list[str]:
    """The fingerprint prefixes the table lists, in its order."""
    return ID.findall(stdout)


def _findings(project: Path) -> list[dict[str, object]]:
    proc = run_cli(["scan", "--format", "json"], cwd=project)
    assert proc.returncode == 0, proc.stderr
    findings: list[dict[str, object]] = json.loads(proc.stdout)["findings"]
    return findings


def test_the_table_lists_the_most_severe_first_and_names_the_rest(project: Path) -> None:
    findings = _findings(project)
    total = len(findings)
    assert total == 2 * FILES
    highs = [str(f["fingerprint"])[:10] for f in findings if f["severity"] == "high"]
    assert len(highs) == FILES

    proc = run_cli(["scan"], cwd=project)
    assert proc.returncode == 0, proc.stderr
    listed = _listed(proc.stdout)
    # The 50 listed are high ones (60 of them beat the 60 low ones), in the scan's order.
    assert len(listed) == 50
    assert listed == highs[:50]
    assert f"50 of {total} findings listed: open, then new, then most severe first." in proc.stdout
    assert (
        f"All of them: secperf findings list --limit {total}, or secperf scan --limit 0"
        in proc.stdout
    )
    # Every line fits an 80-column terminal.
    assert max(len(line) for line in proc.stdout.splitlines()) <= 80

    # The command it names lists every finding.
    listing = run_cli(["findings", "list", "--limit", str(total)], cwd=project)
    assert listing.returncode == 0, listing.stderr
    assert len(_listed(listing.stdout)) == total


def test_limit_0_and_an_output_file_hold_every_finding(project: Path, tmp_path: Path) -> None:
    total = len(_findings(project))
    proc = run_cli(["scan", "--limit", "0"], cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert len(_listed(proc.stdout)) == total
    assert "findings listed" not in proc.stdout

    report = tmp_path / "report.txt"
    proc = run_cli(["scan", "--limit", "5", "-o", str(report)], cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert len(_listed(report.read_text())) == total


def test_new_and_open_findings_come_before_the_others(project: Path) -> None:
    findings = _findings(project)
    accepted = run_cli(["baseline", "update"], cwd=project)
    assert accepted.returncode == 0, accepted.stderr
    # One new low finding: listed first although less severe than every high one.
    (project / "zz_new.py").write_text("import subprocess\n")
    # A high finding set aside as a false positive goes after the open ones.
    first_high = next(str(f["fingerprint"]) for f in findings if f["severity"] == "high")
    triaged = run_cli(
        ["triage", first_high[:10], "--false-positive", "--reason", "test data"], cwd=project
    )
    assert triaged.returncode == 0, triaged.stderr

    proc = run_cli(["scan", "--limit", "3"], cwd=project)
    assert proc.returncode == 0, proc.stderr
    listed = _listed(proc.stdout)
    assert len(listed) == 3
    assert "new" in proc.stdout.splitlines()[0]
    first = next(line for line in proc.stdout.splitlines() if line.startswith(listed[0]))
    assert "B404" in first and first.rstrip().endswith("yes")
    assert first_high[:10] not in listed
    assert f"3 of {len(findings) + 1} findings listed" in proc.stdout


def test_a_negative_limit_is_a_usage_error(project: Path) -> None:
    proc = run_cli(["scan", "--limit", "-1"], cwd=project)
    assert proc.returncode == 2
    assert "--limit" in proc.stderr


def test_a_scanned_directory_is_named_in_the_commands_that_list_the_rest(
    project: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    proc = run_cli(["scan", str(project), "--limit", "10"], cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr
    total = 2 * FILES
    hint = f"All of them: secperf --project-dir {project} findings list --limit {total}"
    assert hint in proc.stdout
    assert f"or secperf scan {project} --limit 0" in proc.stdout
    # That command, run where the scan was, lists them all.
    listing = run_cli(
        ["--project-dir", str(project), "findings", "list", "--limit", str(total)], cwd=elsewhere
    )
    assert listing.returncode == 0, listing.stderr
    assert len(_listed(listing.stdout)) == total
