"""Every file accounted for, honest exit codes and summaries: `secperf scan` end to end.

In-process CLI runs (``support.cli.run_cli``) with the real scanners on real
project directories, real git repositories made with the git command line.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from secperf.security.discovery import GIT_IGNORED, FileDiscovery
from support.cli import CliResult, run_cli
from support.paths import SARIF_SCHEMA

GIT = shutil.which("git")
needs_git = pytest.mark.skipif(GIT is None, reason="git is not installed")

AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
SETTINGS = (
    f'{{\n  "aws.accessKeyId": "{AWS_KEY}",\n  "db.password": "hunter2-but-much-longer-Xq9"\n}}\n'
)


def secperf(cwd: Path, *args: str, check: int | None = None) -> CliResult:
    home = cwd.parent / "home"
    home.mkdir(exist_ok=True)
    result = run_cli(args, cwd=cwd, env={"PATH": "/usr/bin:/bin", "HOME": str(home)})
    if check is not None:
        assert result.returncode == check, result.stdout + result.stderr
    return result


def column(table_text: str, index: int) -> str:
    """The text of one column of the tables in ``table_text``, cell lines joined by spaces.

    A folded cell spans several lines; reading the column puts it back together.
    """
    parts = []
    for line in table_text.splitlines():
        cells = line.split("│")
        if len(cells) > index + 1:
            parts.append(cells[index].strip())
    return " ".join(" ".join(parts).split())


def git(cwd: Path, *args: str) -> str:
    assert GIT is not None
    done = subprocess.run(
        [GIT, "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def write(root: Path, relpath: str, text: str | bytes) -> Path:
    path = root / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def scan_json(root: Path, *args: str, check: int = 0) -> dict[str, Any]:
    result = secperf(root, "scan", "--format", "json", "--fail-on", "critical", *args, check=check)
    data: dict[str, Any] = json.loads(result.stdout)
    return data


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "app"
    write(root, "app/main.py", "import subprocess\nsubprocess.call('ls', shell=True)\n")
    return root


# ----------------------------------------------------------------- git: tracked files


@needs_git
def test_a_tracked_file_that_gitignore_matches_is_scanned(project: Path) -> None:
    write(project, ".gitignore", ".vscode/\n*.env\ndata/\n")
    write(project, ".vscode/settings.json", SETTINGS)
    git(project, "init", "-q")
    git(project, "add", "-f", ".gitignore", "app/main.py", ".vscode/settings.json")
    write(project, "data/dump.sql", "-- local data\n")
    git(project, "commit", "-q", "-m", "start")
    # Untracked and ignored: git would not commit it, and neither is it scanned.
    write(project, "local.env", f"AWS_ACCESS_KEY_ID={AWS_KEY}\n")
    data = scan_json(project, "--scanners", "secrets")
    found = {(f["path"], f["rule_id"]) for f in data["findings"]}
    assert (".vscode/settings.json", "aws-access-key") in found
    assert (".vscode/settings.json", "secret-keyword") in found
    assert not any(path == "local.env" for path, _ in found)
    excluded = {e["path"]: e["reason"] for e in data["excluded"]}
    assert excluded["local.env"] == "ignored by git (untracked and matched by .gitignore)"
    assert excluded["data/"] == "ignored by git (untracked and matched by .gitignore)"
    # secperf's own state folder ignores itself: git status stays clean of it.
    assert (project / ".secperf" / ".gitignore").read_text().splitlines()[-1] == "*"
    status = git(project, "status", "--porcelain", "--untracked-files=all")
    assert ".secperf" not in status


# ----------------------------------------------------------------- exclusions


def test_default_and_configured_excludes_are_listed_with_their_rule(project: Path) -> None:
    write(project, "venv/lib/site.py", "import pickle\npickle.loads(b'')\n")
    write(project, "node_modules/pkg/index.js", "x = 1\n")
    write(project, "build/gen.py", "eval('1')\n")
    write(project, "docs/logo.png", b"\x89PNG\r\n\x1a\n")
    write(project, "secperf.toml", '[scan]\nextend_exclude = ["build/"]\n')
    data = scan_json(project, "--scanners", "bandit,secrets")
    excluded = {e["path"]: e["reason"] for e in data["excluded"]}
    assert excluded["venv/"] == "excluded by default rule 'venv/'"
    assert excluded["node_modules/"] == "excluded by default rule 'node_modules/'"
    assert excluded["build/"] == "excluded by configured rule 'build/'"
    # Neither bandit nor secrets reads an image: listed, not silently passed over.
    assert excluded["docs/logo.png"] == "no enabled scanner reads this file"
    metrics = data["metrics"]
    assert metrics["exclusion_reasons"]["excluded by default rule 'venv/'"] == 1
    assert metrics["files_excluded"] == len(data["excluded"])
    # Coverage is over eligible files; what was excluded is not in its denominator.
    assert metrics["scan_coverage_percent"] == 100.0
    assert {f["path"] for f in data["findings"]} == {"app/main.py"}

    table = secperf(project, "scan", "--scanners", "bandit,secrets", check=0).stdout
    assert "paths excluded" in column(table, 2)
    assert "excluded by default rule 'venv/' 1" in column(table, 2)


def test_skip_reasons_are_counted_by_kind_and_carried_by_sarif(project: Path) -> None:
    write(project, "app/latin1.py", b"# caf\xe9\nx = 1\n")
    write(project, "app/latin2.py", b"# na\xefve caf\xe9 bar\n")
    write(project, "venv/x.py", "x = 1\n")
    data = scan_json(project, "--scanners", "secrets")
    reasons = [s["reason"] for s in data["skipped"]]
    assert len(reasons) == 2 and len(set(reasons)) == 2  # two offsets, kept per file
    assert data["metrics"]["skip_reasons"] == {"not UTF-8 text": 2}

    result = secperf(project, "scan", "--scanners", "secrets", "--format", "sarif", check=0)
    sarif = json.loads(result.stdout)
    if SARIF_SCHEMA.exists():  # shared/ beside the clone holds the official schema
        jsonschema = pytest.importorskip("jsonschema")
        jsonschema.validate(sarif, json.loads(SARIF_SCHEMA.read_text()))
    [invocation] = sarif["runs"][0]["invocations"]
    notes = invocation["toolExecutionNotifications"]
    skipped = [n for n in notes if n["descriptor"]["id"] == "secperf/coverage/skipped"]
    assert {n["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for n in skipped} == {
        "app/latin1.py",
        "app/latin2.py",
    }
    assert {
        "level": "note",
        "message": {"text": "venv/: not scanned: excluded by default rule 'venv/'"},
        "descriptor": {"id": "secperf/coverage/excluded"},
        "properties": {"kind": "excluded", "reason": "excluded by default rule 'venv/'"},
        "locations": [
            {"physicalLocation": {"artifactLocation": {"uri": "venv/", "uriBaseId": "%SRCROOT%"}}}
        ],
    } in notes
    assert invocation["executionSuccessful"] is True


# ----------------------------------------------------------------- exit codes


def test_a_requested_scanner_that_cannot_run_exits_3(project: Path) -> None:
    write(project, "requirements.txt", "requests==2.25.1\n")
    result = secperf(project, "scan", "--scanners", "deps")
    assert result.returncode == 3, result.stdout + result.stderr
    assert "cannot evaluate: deps checked nothing: no OSV database: pass --osv-db" in (
        " ".join(result.stderr.split())
    )
    if shutil.which("semgrep") is None:
        semgrep = secperf(project, "scan", "--scanners", "semgrep")
        assert semgrep.returncode == 3
        assert "cannot evaluate: semgrep checked nothing" in semgrep.stderr
    # Enabled by default only: said in the summary, the exit code stays the scan's.
    default = secperf(project, "scan", "--fail-on", "critical")
    assert default.returncode == 0, default.stdout + default.stderr
    assert "deps did not run" in default.stdout


# ----------------------------------------------------------------- summary and output


def test_a_warm_scan_says_it_read_nothing(project: Path) -> None:
    secperf(project, "scan", "--scanners", "bandit", "--fail-on", "critical", check=0)
    data = scan_json(project, "--scanners", "bandit")
    metrics = data["metrics"]
    assert metrics["cache_misses"] == 0 and metrics["cache_hits"] >= 1
    assert metrics["files_read"] == 0 and metrics["lines_read"] == 0
    assert metrics["lines_scanned"] > 0  # covered, from the cache
    assert metrics["slowest_files_ms"] == {}
    table = secperf(project, "scan", "--scanners", "bandit", "--fail-on", "critical").stdout
    assert "none read this time (all from the cache)" in column(table, 2)
    assert "slowest file" not in table


def test_output_file_with_the_table_format_holds_tables(project: Path) -> None:
    target = project / "out" / "scan.txt"
    secperf(project, "scan", "--scanners", "bandit", "-o", str(target), "--fail-on", "critical")
    text = target.read_text()
    assert "scan summary" in text and "B602" in text
    assert not text.lstrip().startswith("{")
    assert "\x1b[" not in text  # no terminal codes in a file


def test_long_paths_are_not_cut_in_output_that_is_not_a_terminal(project: Path) -> None:
    deep = "app/" + "/".join(f"package_with_a_long_name_{i}" for i in range(4)) + "/mod.py"
    # The only file: it is the slowest file the summary names.
    (project / "app" / "main.py").unlink()
    write(project, deep, "x = 1\n")
    result = secperf(project, "scan", "--scanners", "secrets", "--fail-on", "critical")
    assert "…" not in result.stdout
    # Folded over lines, never cut: the summary's value column holds the whole path.
    assert deep in column(result.stdout, 2).replace(" ", "")


@needs_git
def test_a_root_its_enclosing_repository_ignores_is_walked(tmp_path: Path) -> None:
    outer = tmp_path / "outer"
    write(outer, ".gitignore", "versions/\n")
    write(outer, "versions/3.11/lib/os.py", "x = 1\n")
    write(outer, "versions/3.11/lib/.gitignore", "skip.py\n")
    write(outer, "versions/3.11/lib/skip.py", "x = 1\n")
    git(outer, "init", "-q")
    found = FileDiscovery().discover(outer / "versions" / "3.11")
    # Like a Python install inside a pyenv clone: scanned, not "ignored by git".
    assert found.mode == "walk"
    assert [f.relpath for f in found.files] == ["lib/.gitignore", "lib/os.py"]
    assert found.excluded == [("lib/skip.py", "matched by .gitignore (not a git work tree)")]
    inside = FileDiscovery().discover(outer)
    assert inside.mode == "git" and ("versions/", GIT_IGNORED) in inside.excluded


def test_a_partly_checked_manifest_is_not_a_scanner_that_checked_nothing(
    project: Path, tmp_path: Path
) -> None:
    from test_scanner_deps import osv_dir

    db = str(osv_dir(tmp_path))
    # A pin checked, a bad line skipped: partly checked, cold and from the cache.
    write(project, "requirements.txt", "requests==2.25.1\nnot a requirement!!\n")
    args = ("--scanners", "deps", "--osv-db", db)
    for attempt in range(2):
        data = scan_json(project, *args)
        assert data["failed_scanners"] == {}
        assert [f["rule_id"] for f in data["findings"]] == ["GHSA-j8r2-6x86-q33q"]
        assert data["metrics"]["cache_hits"] == attempt
    # Only ranges: nothing could be checked, and a scan that asked for deps says so.
    write(project, "requirements.txt", "flask>=2\n")
    result = secperf(project, "scan", *args)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "deps checked nothing: cannot tell the installed version of 1" in result.stderr


# ----------------------------------------------------------------- SARIF logs partly read


def sarif_log(*uris: str) -> str:
    """A gitleaks log with one result at line 2 of each URI."""
    results = [
        {
            "ruleId": "generic-api-key",
            "level": "error",
            "message": {"text": "a key"},
            "locations": [
                {"physicalLocation": {"artifactLocation": {"uri": uri}, "region": {"startLine": 2}}}
            ],
        }
        for uri in uris
    ]
    return json.dumps(
        {
            "version": "2.1.0",
            "runs": [{"tool": {"driver": {"name": "gitleaks"}}, "results": results}],
        }
    )


@pytest.fixture
def with_sarif(project: Path) -> Path:
    write(project, "secperf.toml", '[scan.sarif]\nfiles = ["reports/*.sarif"]\n')
    return project


def test_a_sarif_log_with_a_skipped_result_is_partly_checked(with_sarif: Path) -> None:
    write(with_sarif, "reports/g.sarif", sarif_log("app/main.py", "../../etc/passwd"))
    for attempt in range(2):  # cold, then from the cache
        data = scan_json(with_sarif, "--scanners", "sarif")
        assert data["metrics"]["cache_hits"] == attempt
        assert data["status"] == "partial"
        assert data["failed_scanners"] == {}
        # The imported result is a finding (level error: high); the other is listed.
        assert [(f["rule_id"], f["severity"], f["path"]) for f in data["findings"]] == [
            ("gitleaks/generic-api-key", "high", "app/main.py")
        ]
        [skip] = data["skipped"]
        assert (skip["path"], skip["scanner"]) == ("reports/g.sarif", "sarif")
        assert skip["reason"].startswith("1 SARIF result skipped: runs[0].results[1].locations")
        assert skip["reason"].endswith("'../../etc/passwd' is outside the project root")
    table = secperf(with_sarif, "scan", "--scanners", "sarif", "--fail-on", "critical", check=0)
    assert "checked nothing" not in table.stdout + table.stderr
    # The scan's own exit code: a new high finding fails the default --fail-on high.
    secperf(with_sarif, "scan", "--scanners", "sarif", check=1)


def test_a_sarif_log_that_gave_nothing_still_checked_nothing(with_sarif: Path) -> None:
    write(with_sarif, "reports/g.sarif", sarif_log("../../etc/passwd", "/etc/shadow"))
    result = secperf(with_sarif, "scan", "--scanners", "sarif", "--fail-on", "critical", check=3)
    assert "cannot evaluate: sarif checked nothing: 2 SARIF results skipped: " in result.stderr
    assert "sarif checked nothing" in column(result.stdout, 1)
    write(with_sarif, "reports/g.sarif", '{"version": "2.1.0", "runs": [')
    result = secperf(with_sarif, "scan", "--scanners", "sarif", "--fail-on", "critical", check=3)
    assert "cannot evaluate: sarif checked nothing: malformed SARIF in reports/g.sarif" in (
        result.stderr
    )


# ----------------------------------------------------------------- skips counted by kind


def test_skips_are_counted_by_kind_not_by_file_name_or_count(
    with_sarif: Path, tmp_path: Path
) -> None:
    from test_scanner_deps import osv_dir

    write(with_sarif, "requirements.txt", "requests==2.25.1\n-r https://example.com/r.txt\n")
    write(with_sarif, "requirements-dev.txt", "requests==2.25.1\n-r https://example.com/d.txt\n")
    write(with_sarif, "requirements-test.txt", "requests==2.25.1\nflask>=2\nrich\n")
    write(with_sarif, "reports/g.sarif", sarif_log("app/main.py", "../a.py", "../b.py"))
    args = ("--scanners", "deps,sarif", "--osv-db", str(osv_dir(tmp_path)))
    data = scan_json(with_sarif, *args)
    reasons = {s["path"]: s["reason"] for s in data["skipped"]}
    assert reasons["requirements.txt"].startswith("requirements.txt:2: -r https://example.com/")
    assert reasons["requirements-test.txt"].startswith(
        "cannot tell the installed version of 2 requirement(s)"
    )
    assert reasons["reports/g.sarif"].startswith("2 SARIF results skipped: ")
    assert data["metrics"]["skip_reasons"] == {
        "remote include not read": 2,
        "unpinned requirements": 1,
        "SARIF results skipped": 1,
    }
    table = column(secperf(with_sarif, "scan", *args, "--fail-on", "critical", check=0).stdout, 2)
    assert "remote include not read 2, unpinned requirements 1" in table
    assert "SARIF results skipped 1" in table


# ----------------------------------------------------------------- coverage and its table agree


def coverage_numbers(stdout: str) -> tuple[int, int | None, int | None]:
    """The coverage row's skipped files, and the "not scanned" rows' files (None: no row)."""
    summary = column(stdout, 2)
    labels = column(stdout, 1)
    found = re.search(r"of eligible files \(\d+ of \d+; (\d+) skipped\)", summary)
    assert found is not None, summary
    lowering = re.search(r"skipped \((\d+) files?; lowers coverage\)", labels)
    reports = re.search(r"skipped in reports \((\d+) files?; not in coverage\)", labels)
    return (
        int(found.group(1)),
        int(lowering.group(1)) if lowering else None,
        int(reports.group(1)) if reports else None,
    )


def test_coverage_and_the_not_scanned_table_agree(with_sarif: Path) -> None:
    write(with_sarif, "requirements.txt", "requests==2.25.1\n")
    # Default scanners, no OSV data, no semgrep rules: two scanners did not run.
    result = secperf(with_sarif, "scan", "--fail-on", "critical", check=0)
    data = scan_json(with_sarif)
    assert set(data["unavailable"]) == {"deps", "semgrep"}
    assert data["metrics"]["files_skipped"] == 0
    # No file was skipped for them: coverage says so, and so does the table.
    assert coverage_numbers(result.stdout) == (0, None, None)
    assert "lowers coverage" not in result.stdout and "unavailable" not in result.stdout
    assert "deps did not run" in column(result.stdout, 1)
    assert "semgrep did not run" in column(result.stdout, 1)

    # A file two scanners could not read is one skipped file, of two kinds.
    write(with_sarif, "app/latin1.py", b"# caf\xe9\nx = 1\n")
    result = secperf(with_sarif, "scan", "--fail-on", "critical", check=0)
    assert scan_json(with_sarif)["metrics"]["files_skipped"] == 1
    assert coverage_numbers(result.stdout) == (1, 1, None)
    assert "not UTF-8 text 1" in column(result.stdout, 2)

    # A SARIF log only the sarif scanner reads is a report: coverage leaves it out.
    write(with_sarif, "reports/g.sarif", sarif_log("app/main.py", "../../etc/passwd"))
    result = secperf(with_sarif, "scan", "--scanners", "sarif", "--fail-on", "critical", check=0)
    assert coverage_numbers(result.stdout) == (0, None, 1)
    assert "SARIF results skipped 1" in column(result.stdout, 2)
    data = scan_json(with_sarif, "--scanners", "sarif")
    assert data["metrics"]["files_skipped"] == 0 and data["metrics"]["eligible_files"] == 0
