"""`secperf findings list` and `triage` on a real scan: ids, one state vocabulary, 80 columns."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import typer
from typer.main import get_command

from secperf.cli import app
from secperf.cli.root import COMMANDS, load_command
from secperf.security.triage import TRIAGE_STATES
from support.cli import CliResult, run_cli

#: Findings in a deep path with long messages: bandit's B602, B404, B607 and B105.
APP = (
    'import subprocess\npassword = "hunter2hunter2hunter2"\nsubprocess.call("ls -l", shell=True)\n'
)
DEEP = "services/payments/internal/adapters/outbound/legacy_gateway_client"


def secperf(cwd: Path, *args: str, columns: int = 80) -> CliResult:
    return run_cli(args, cwd=cwd, env={"COLUMNS": str(columns)})


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("proj")
    (root / DEEP).mkdir(parents=True)
    (root / DEEP / "gateway_connection_factory.py").write_text(APP)
    (root / "secperf.toml").write_text('[scan]\nscanners = ["bandit"]\n')
    scan = secperf(root, "scan", "--format", "json")
    assert scan.returncode in (0, 1), scan.stderr
    return root


def rows(text: str) -> list[list[str]]:
    """The table's rows that start with an id (the first line of each finding)."""
    return [line.split() for line in text.splitlines() if re.match(r"^[0-9a-f]{10} ", line)]


def test_the_id_column_is_what_triage_takes(project: Path) -> None:
    listed = secperf(project, "findings", "list")
    assert listed.returncode == 0, listed.stderr
    header = listed.stdout.splitlines()[0].split()
    assert header == ["id", "severity", "finding", "location", "state", "new"]
    found = rows(listed.stdout)
    assert len(found) == 4
    b602 = next(r for r in found if "B602" in r)
    triaged = secperf(
        project, "triage", b602[0], "--accept-risk", "--reason", "only runs a fixed command"
    )
    assert triaged.returncode == 0, triaged.stderr
    assert "accepted_risk" in triaged.stdout
    shown = secperf(project, "findings", "show", b602[0])
    assert shown.returncode == 0 and "accepted_risk by" in shown.stdout
    secperf(project, "triage", b602[0], "--reopen", "--reason", "undo")


def test_state_column_uses_the_triage_vocabulary(project: Path) -> None:
    """No "new" in the state column: a finding with no decision is open; new is its own column."""
    found = rows(secperf(project, "findings", "list").stdout)
    for row in found:
        state, new = row[-2], row[-1]
        assert state in TRIAGE_STATES and new in ("yes", "-")
    b105 = next(r for r in found if "B105" in r)
    marked = secperf(project, "triage", b105[0], "--false-positive", "--reason", "a test value")
    assert marked.returncode == 0, marked.stderr
    try:
        only = rows(secperf(project, "findings", "list", "--state", "false_positive").stdout)
        assert [r[0] for r in only] == [b105[0]]
        assert only[0][-2:] == ["false_positive", "yes"]
        listed = json.loads(secperf(project, "findings", "list", "--json").stdout)
        by_id = {f["id"]: f for f in listed}
        assert by_id[b105[0]]["state"] == "false_positive" and by_id[b105[0]]["is_new"] is True
        assert by_id[b105[0]]["fingerprint"].startswith(b105[0])
    finally:
        secperf(project, "triage", b105[0], "--reopen", "--reason", "undo")


def test_state_new_is_refused_with_the_states(project: Path) -> None:
    result = secperf(project, "findings", "list", "--state", "new")
    assert result.returncode == 2
    assert "--state" in result.stderr and "false_positive" in result.stderr
    assert "Traceback" not in result.stderr


def test_only_new_findings(project: Path) -> None:
    assert len(rows(secperf(project, "findings", "list", "--new").stdout)) == 4
    baseline = secperf(project, "baseline", "update")
    assert baseline.returncode == 0, baseline.stderr
    rescan = secperf(project, "scan", "--format", "json")
    assert rescan.returncode == 0, rescan.stderr
    try:
        assert secperf(project, "findings", "list", "--new").stdout.strip() == "no findings match"
        assert {r[-1] for r in rows(secperf(project, "findings", "list").stdout)} == {"-"}
    finally:
        (project / ".secperf-baseline.json").unlink(missing_ok=True)
        for path in project.glob("*baseline*"):
            path.unlink()
        secperf(project, "scan", "--format", "json")


@pytest.mark.parametrize("columns", [80, 66, 50])
def test_findings_table_is_whole_at_narrow_widths(project: Path, columns: int) -> None:
    """Nothing is cut: every line fits, no ellipsis, each path reads whole down its column."""
    result = secperf(project, "findings", "list", columns=columns)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert all(len(line) <= columns for line in lines), result.stdout
    assert "…" not in result.stdout
    header = lines[0]
    names = header.split()
    assert names[0] == "id" and "location" in names and "state" in names
    # Least useful first: "new" goes below 72 columns, then "severity" below 60.
    assert ("new" in names) == (columns >= 72)
    assert ("severity" in names) == (columns >= 60)
    start, end = header.index("location"), header.index("state")
    location = "".join(line[start:end].strip() for line in lines[2:])
    path = f"{DEEP}/gateway_connection_factory.py"
    assert location.count(path) == 4, location


def test_scan_table_and_findings_list_agree(project: Path) -> None:
    scanned = secperf(project, "scan")
    listed = secperf(project, "findings", "list")
    assert sorted(map(tuple, rows(scanned.stdout))) == sorted(map(tuple, rows(listed.stdout)))


def test_the_root_help_lines_are_each_commands_own() -> None:
    """`secperf --help` lists COMMANDS without importing them: their text must not drift."""
    root = get_command(app)
    ctx = typer.Context(root)
    names = [c.name for c in COMMANDS]
    assert len(set(names)) == len(names)
    for entry in COMMANDS:
        command = load_command(entry)
        own = (command.help or "").split("\n\n")[0].strip()
        assert own == entry.help, f"{entry.name}: update its help in secperf.cli.root.COMMANDS"
        assert root.get_command(ctx, entry.name) is not None  # type: ignore[attr-defined]


def test_a_mistyped_command_gets_a_suggestion(tmp_path: Path) -> None:
    """Commands load when used, yet a typo is still matched against all of them."""
    result = secperf(tmp_path, "finding", "list")
    assert result.returncode == 2
    assert "No such command 'finding'. Did you mean 'findings'?" in result.stderr


def test_a_limited_table_says_how_many_it_left_out(project: Path) -> None:
    """The scan found 4: `--limit 2` lists 2 and says so, `--limit 0` lists all, silently."""
    limited = secperf(project, "findings", "list", "--limit", "2")
    assert limited.returncode == 0, limited.stderr
    assert len(rows(limited.stdout)) == 2
    assert "2 of 4 findings listed. All of them: add --limit 0." in limited.stdout
    everything = secperf(project, "findings", "list", "--limit", "0")
    assert everything.returncode == 0, everything.stderr
    assert len(rows(everything.stdout)) == 4
    assert "findings listed" not in everything.stdout + everything.stderr
    # The default (200) leaves nothing out here: no line either.
    default = secperf(project, "findings", "list")
    assert len(rows(default.stdout)) == 4 and "findings listed" not in default.stdout


def test_json_lists_every_finding_whatever_the_limit(project: Path) -> None:
    result = secperf(project, "findings", "list", "--json", "--limit", "1")
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)  # nothing but the JSON on stdout
    assert len(listed) == 4
    assert "findings listed" not in result.stderr


def test_new_filters_before_the_limit(project: Path) -> None:
    """Every finding is new (no baseline): `--new --limit 1` lists one of 4, not of 1."""
    result = secperf(project, "findings", "list", "--new", "--limit", "1")
    assert result.returncode == 0, result.stderr
    assert len(rows(result.stdout)) == 1
    assert "1 of 4 findings listed." in result.stdout


def test_a_store_read_through_sqlalchemy_counts_alike(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store the plain reader declines (PostgreSQL, a migration due) lists the same."""
    from secperf.store import sqlite_reader

    def declined(*_args: object, **_kwargs: object) -> sqlite_reader.Listing:
        raise sqlite_reader.NotReadable("declined by the test")

    fast = secperf(project, "findings", "list", "--new", "--limit", "2")
    monkeypatch.setattr(sqlite_reader, "latest_scan_listing", declined)
    slow = secperf(project, "findings", "list", "--new", "--limit", "2")
    assert slow.returncode == 0, slow.stderr
    assert slow.stdout == fast.stdout
    assert "2 of 4 findings listed." in slow.stdout
    listed = json.loads(secperf(project, "findings", "list", "--json", "--limit", "2").stdout)
    assert len(listed) == 4


def test_limit_refuses_a_negative_number(project: Path) -> None:
    result = secperf(project, "findings", "list", "--limit", "-1")
    assert result.returncode == 2
    assert "--limit" in result.stderr


def test_a_bad_severity_names_its_option(project: Path) -> None:
    result = secperf(project, "findings", "list", "--severity", "bogus")
    assert result.returncode == 2
    assert "--severity: unknown severity 'bogus'; expected one of critical" in result.stderr
