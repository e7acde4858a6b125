"""The findings table never breaks a path inside a name: real runs at 80 and 100 columns.

At 80 columns the state column widens for ``false_positive`` and the location
once got what the ratio gave it: ``requirements.txt:1`` printed as
``requirements.t`` / ``xt:1``. A path now breaks after a ``/`` or before its
``:line``, the location widening at the message's expense; a file report
(``-o``, 160 columns) holds each path whole on one line.
"""

from __future__ import annotations

import json
import re
from itertools import pairwise
from pathlib import Path

import pytest

from secperf.cli.render_coverage import FILE_WIDTH
from support.cli import CliResult, run_cli
from support.paths import FIXTURES

OSV = FIXTURES / "osv"
#: Bandit's B404, B105, B602 and B607.
APP = (
    'import subprocess\npassword = "hunter2hunter2hunter2"\nsubprocess.call("ls -l", shell=True)\n'
)
DEEP = "services/payments/internal/adapters/outbound/legacy_gateway_client"
#: Deep directories, long names (each fits 80 columns beside the other columns).
FILES = (f"{DEEP}/gateway_connection.py", "src/secperf_toolkit/integrations/long_module_name.py")
ID = re.compile(r"^[0-9a-f]{10}  ")


def secperf(cwd: Path, *args: str, columns: int = 80) -> CliResult:
    return run_cli(args, cwd=cwd, env={"COLUMNS": str(columns)})


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The files above and a requirements.txt whose finding is triaged a false positive."""
    root = tmp_path_factory.mktemp("paths")
    for name in FILES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(APP)
    (root / "requirements.txt").write_text("requests==2.19.0\n")
    (root / "secperf.toml").write_text('[scan]\nscanners = ["bandit", "deps"]\n')
    scan = secperf(root, "scan", "--osv-db", str(OSV), "--format", "json")
    assert scan.returncode in (0, 1), scan.stderr
    deps = next(f for f in json.loads(scan.stdout)["findings"] if f["scanner"] == "deps")
    assert deps["path"] == "requirements.txt"
    triaged = secperf(root, "triage", deps["fingerprint"][:10], "--false-positive", "--reason", "x")
    assert triaged.returncode == 0, triaged.stderr
    return root


def locations(project: Path) -> set[str]:
    """Every finding's location as the table shows it, from the JSON listing."""
    listed = json.loads(secperf(project, "findings", "list", "--json").stdout)
    return {f"{f['path']}:{f['line']}" if f["line"] else f["path"] for f in listed}


def table_rows(text: str, columns: int) -> list[tuple[list[str], str]]:
    """Each row of the findings table: its location's lines, and its state."""
    lines = text.splitlines()
    header = lines[0]
    assert header.split() == ["id", "severity", "finding", "location", "state", "new"], text
    start, end = header.index("location"), header.index("state")
    rows: list[tuple[list[str], str]] = []
    for line in lines[2:]:
        if ID.match(line):
            rows.append(([], line[end:].split()[0]))
        elif not line.startswith(" " * 12) or line.strip().startswith(("scan summary", "skipped")):
            break  # the tables after the findings' (scan)
        if fragment := line[start:end].strip():
            rows[-1][0].append(fragment)
    return rows


def assert_paths_whole(text: str, columns: int, expected: set[str]) -> None:
    assert max(map(len, text.splitlines())) <= columns, text
    rows = table_rows(text, columns)
    assert {"".join(lines) for lines, _ in rows} == expected, text
    for lines, _ in rows:
        # Each line of a location ends at a "/", before the ":line", or with the path.
        for line, after in pairwise(lines):
            assert line.endswith("/") or re.fullmatch(r":\d+", after), (lines, text)
    assert ["requirements.txt:1"] in [lines for lines, state in rows if state == "false_positive"]


@pytest.mark.parametrize("columns", [80, 100])
def test_findings_list_breaks_paths_only_between_names(project: Path, columns: int) -> None:
    listed = secperf(project, "findings", "list", columns=columns)
    assert listed.returncode == 0, listed.stderr
    assert_paths_whole(listed.stdout, columns, locations(project))


@pytest.mark.parametrize("columns", [80, 100])
def test_scan_breaks_paths_only_between_names(project: Path, columns: int) -> None:
    scanned = secperf(project, "scan", "--osv-db", str(OSV), columns=columns)
    assert scanned.returncode in (0, 1), scanned.stderr
    assert_paths_whole(scanned.stdout, columns, locations(project))


def test_a_file_report_holds_every_path_whole_on_one_line(project: Path, tmp_path: Path) -> None:
    report = tmp_path / "out.txt"
    scanned = secperf(project, "scan", "--osv-db", str(OSV), "-o", str(report))
    assert scanned.returncode in (0, 1), scanned.stderr
    text = report.read_text()
    assert max(map(len, text.splitlines())) <= FILE_WIDTH
    for lines, _ in table_rows(text, FILE_WIDTH):
        assert len(lines) == 1, lines
    assert {lines[0] for lines, _ in table_rows(text, FILE_WIDTH)} == locations(project)
    assert "…" not in text
