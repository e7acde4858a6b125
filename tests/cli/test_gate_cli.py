"""`secperf gate` end to end, in-process (one case as a real process), on small real projects.

Each test writes a project with a ``secperf.toml`` (bandit and secrets), scans
it with the real scanners, and checks the exit code (0 pass, 1 block,
3 cannot evaluate, 2 bad input), the reports and the stored gate runs.
Benchmark files are derived from a real pytest-benchmark JSON file by scaling
its per-round data and statistics.
"""

from __future__ import annotations

import json
import re
import socket
import sqlite3
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from support.cli import CliResult, run_cli
from support.paths import FIXTURES as FIXTURES_DIR
from support.paths import SARIF_SCHEMA

FIXTURE = FIXTURES_DIR / "benchmarks" / "pytest_benchmark_tiny.json"
SCHEMA = SARIF_SCHEMA
TIME_STATS = (
    "min", "max", "mean", "stddev", "median", "iqr", "q1", "q3", "ld15iqr", "hd15iqr", "total",
)  # fmt: skip

CLEAN = "def add(a, b):\n    return a + b\n"
RISKY = "import subprocess\n\n\ndef run(cmd):\n    return subprocess.call(cmd, shell=True)\n"


def _env(cwd: Path) -> dict[str, str]:
    home = cwd.parent / "home"
    home.mkdir(exist_ok=True)
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), "COLUMNS": "200"}


def secperf(cwd: Path, *args: str) -> CliResult:
    return run_cli(args, cwd=cwd, env=_env(cwd))


def secperf_process(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "secperf", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
        env=_env(cwd),
    )


def expect(result: CliResult | subprocess.CompletedProcess[str], code: int) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == code, output
    return output


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A clean project with an accepted (empty) baseline."""
    root = tmp_path / "svc"
    (root / "app").mkdir(parents=True)
    (root / "app" / "__init__.py").write_text("")
    (root / "app" / "calc.py").write_text(CLEAN)
    (root / "secperf.toml").write_text('[scan]\nscanners = ["bandit", "secrets"]\n')
    expect(secperf(root, "baseline", "update"), 0)
    return root


def bench_file(
    where: Path,
    name: str,
    *,
    scale: float = 1.0,
    days: int = 0,
    cpu: str | None = None,
    per_round: bool = True,
) -> Path:
    """The fixture's run, ``scale`` times slower, ``days`` later, optionally elsewhere."""
    doc: dict[str, Any] = json.loads(FIXTURE.read_text())
    stamp = datetime.fromisoformat(doc["datetime"]) + timedelta(days=days)
    doc["datetime"] = stamp.isoformat()
    doc["commit_info"]["id"] = f"{days:040x}"
    if cpu is not None:
        doc["machine_info"]["cpu"]["brand_raw"] = cpu
    for bench in doc["benchmarks"]:
        stats = bench["stats"]
        for key in TIME_STATS:
            stats[key] *= scale
        stats["ops"] /= scale
        if per_round:
            stats["data"] = [value * scale for value in stats["data"]]
        else:
            stats.pop("data")
    path = where / name
    path.write_text(json.dumps(doc))
    return path


def gate_runs(root: Path) -> list[str]:
    with sqlite3.connect(root / ".secperf" / "secperf.db") as db:
        return [row[0] for row in db.execute("select verdict from gate_runs order by started_ms")]


def test_clean_project_with_baseline_passes_and_is_stored(project: Path) -> None:
    out = expect(secperf(project, "gate"), 0)
    assert "PASS" in out
    assert "benchmarks: not checked" in out  # says what it did not check
    assert gate_runs(project) == ["pass"]


@pytest.mark.slow
def test_new_high_finding_blocks(project: Path) -> None:
    (project / "app" / "shell.py").write_text(RISKY)
    result = secperf_process(project, "gate", "--format", "json")
    expect(result, 1)
    report = json.loads(result.stdout)
    assert report["result"]["verdict"] == "block"
    assert report["result"]["exit_code"] == 1
    rules = {(f["rule_id"], f["path"], f["state"]) for f in report["findings"]}
    assert ("B602", "app/shell.py", "open") in rules
    blocking = [c for c in report["result"]["conditions"] if c["status"] == "block"]
    assert [c["name"] for c in blocking] == ["new findings >= high"]
    assert "B602 at app/shell.py:5" in blocking[0]["evidence"]
    # --fail-on critical: a high finding no longer blocks.
    expect(secperf_process(project, "gate", "--fail-on", "critical"), 0)
    assert gate_runs(project) == ["block", "pass"]


def _fingerprint(project: Path) -> str:
    result = secperf(project, "gate", "--format", "json")
    report = json.loads(result.stdout)
    return str(next(f["fingerprint"] for f in report["findings"] if f["rule_id"] == "B602"))


def _waivers(project: Path, body: str) -> None:
    (project / "secperf-waivers.toml").write_text(body)


def test_waiver_by_fingerprint_and_by_rule_glob(project: Path) -> None:
    (project / "app" / "shell.py").write_text(RISKY)
    fingerprint = _fingerprint(project)
    future = (date.today() + timedelta(days=30)).isoformat()
    _waivers(
        project,
        f'[[finding]]\nfingerprint = "{fingerprint}"\nowner = "alice"\n'
        f'reason = "input is a constant"\nexpires = {future}\n',
    )
    result = secperf(project, "gate", "--format", "json")
    expect(result, 0)
    condition = next(
        c
        for c in json.loads(result.stdout)["result"]["conditions"]
        if c["name"] == "new findings >= high"
    )
    assert condition["status"] == "waived"
    assert "WAIVED" in condition["evidence"] and "owner: alice" in condition["evidence"]

    _waivers(
        project,
        f'[[finding]]\nrule = "B602"\npath = "app/*.py"\nowner = "bob"\n'
        f'reason = "reviewed"\nexpires = "{future}"\n',
    )
    expect(secperf(project, "gate"), 0)
    # The glob must match: another directory is not covered.
    _waivers(
        project,
        f'[[finding]]\nrule = "B602"\npath = "tests/**"\nowner = "bob"\n'
        f'reason = "reviewed"\nexpires = "{future}"\n',
    )
    expect(secperf(project, "gate"), 1)


def test_expired_waiver_blocks_and_says_so(project: Path) -> None:
    (project / "app" / "shell.py").write_text(RISKY)
    _waivers(
        project,
        '[[finding]]\nrule = "B602"\npath = "app/**"\nowner = "carol"\n'
        'reason = "until the rewrite"\nexpires = 2020-10-01\n',
    )
    out = expect(secperf(project, "gate"), 1)
    assert "waiver expired on 2020-10-01 (owner: carol)" in " ".join(out.split())


def test_malformed_waiver_file_is_a_usage_error(project: Path) -> None:
    _waivers(
        project,
        '[[finding]]\nrule = "B602"\npath = "*"\nowner = "x"\nreason = "y"\nexpires = 2030-01-01\n'
        '[[finding]]\nrule = "B101"\nowner = "x"\nreason = "y"\nexpires = 2030-01-01\n',
    )
    out = expect(secperf(project, "gate"), 2)
    assert "secperf-waivers.toml: finding[1].path: required with rule" in out
    _waivers(project, "[[finding]\n")
    out = expect(secperf(project, "gate"), 2)
    assert "secperf-waivers.toml: not valid TOML" in out


def test_a_waiver_file_with_several_problems_names_them_all(project: Path) -> None:
    _waivers(
        project,
        '[[finding]]\nrule = "B602"\npath = "*"\nowner = "x"\nexpires = 2030-01-01\n'
        '[[finding]]\nfingerprint = "0123"\nowner = "x"\nreason = "y"\nexpires = "soon"\n'
        '[[benchmark]]\nname = "bench::*"\nowner = "x"\nreason = "y"\nexpires = 2030-01-01\n',
    )
    result = secperf(project, "gate")
    expect(result, 2)
    assert result.stdout == ""
    file = project / "secperf-waivers.toml"
    # One problem a line, each naming the file, the waiver and the key (folded
    # lines of the terminal joined up).
    shown = " ".join(result.stderr.split())
    assert shown == " ".join(
        [
            f"{file}: finding[0].reason: required key is missing; expected a non-empty string"
            " [waiver of rule 'B602' in '*']",
            f"{file}: finding[1].expires: expected a date such as 2026-10-01, got 'soon'"
            " [waiver of fingerprint '0123']",
            f"{file}: finding[1].fingerprint: give at least 8 characters of the fingerprint"
            " [waiver of fingerprint '0123']",
            f"{file}: benchmark[0].max_regression: required key is missing; expected a"
            " regression such as \"15%\" or 0.15 [waiver of benchmark 'bench::*']",
        ]
    )
    assert result.stderr.count(f"{file}: ") == 4


def test_unwritable_report_dir_is_a_usage_error_before_the_scan(
    project: Path, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    out = expect(secperf(project, "gate", "--report-dir", str(blocker / "reports")), 2)
    assert f"--report-dir: cannot create {blocker / 'reports'}" in out
    assert "Traceback" not in out


def test_benchmark_regressions_with_per_round_data(project: Path, tmp_path: Path) -> None:
    first = bench_file(tmp_path, "base.json")
    out = expect(secperf(project, "gate", "--benchmarks", str(first)), 3)
    assert "no earlier successful run" in out  # the first run has nothing to compare with

    slower = bench_file(tmp_path, "slower.json", scale=1.20, days=1)
    result = secperf(project, "gate", "--benchmarks", str(slower), "--format", "json")
    expect(result, 1)
    report = json.loads(result.stdout)
    assert {b["method"] for b in report["benchmarks"]} == {"mann-whitney-u"}
    assert all(b["gate_status"] == "block" for b in report["benchmarks"])
    assert all(19 < b["effect_pct"] < 21 for b in report["benchmarks"])

    # One per cent slower than the (now stored) 20 % run: below the 5 % minimum effect.
    barely = bench_file(tmp_path, "barely.json", scale=1.20 * 1.01, days=2)
    out = expect(secperf(project, "gate", "--benchmarks", str(barely)), 0)
    assert "PASS" in out

    # A waiver allows a 15 % regression of one benchmark, not 20 %.
    future = (date.today() + timedelta(days=30)).isoformat()
    _waivers(
        project,
        f'[[benchmark]]\nname = "test_tinybench.py::test_sum"\nmax_regression = "25%"\n'
        f'owner = "dan"\nreason = "new check"\nexpires = {future}\n'
        f'[[benchmark]]\nname = "test_tinybench.py::test_sorted*"\nmax_regression = "15%"\n'
        f'owner = "dan"\nreason = "new check"\nexpires = {future}\n',
    )
    much = bench_file(tmp_path, "much.json", scale=1.20 * 1.01 * 1.20, days=3)
    result = secperf(project, "gate", "--benchmarks", str(much), "--format", "json")
    expect(result, 1)
    statuses = {b["name"]: b["gate_status"] for b in json.loads(result.stdout)["benchmarks"]}
    assert statuses == {
        "test_tinybench.py::test_sum": "waived",
        "test_tinybench.py::test_sorted[10]": "block",
        "test_tinybench.py::test_sorted[100]": "block",
    }


def test_other_machine_and_too_few_samples_cannot_evaluate(project: Path, tmp_path: Path) -> None:
    expect(secperf(project, "gate", "--benchmarks", str(bench_file(tmp_path, "a.json"))), 3)
    elsewhere = bench_file(tmp_path, "b.json", days=1, cpu="Some Other CPU")
    out = expect(secperf(project, "gate", "--benchmarks", str(elsewhere)), 3)
    assert "not comparable" in " ".join(out.split())

    bare = tmp_path / "bare"
    bare.mkdir()
    no_rounds = bench_file(bare, "c.json", days=2, per_round=False)
    result = secperf(project, "gate", "--benchmarks", str(no_rounds), "--format", "json")
    expect(result, 3)
    reasons = [b["reason"] for b in json.loads(result.stdout)["benchmarks"]]
    assert reasons and all(r.startswith("too few samples") for r in reasons)


def test_bad_benchmark_file_is_a_usage_error(project: Path, tmp_path: Path) -> None:
    out = expect(secperf(project, "gate", "--benchmarks", str(tmp_path / "missing.json")), 2)
    assert "missing.json: no such file" in out
    broken = tmp_path / "broken.json"
    broken.write_text('{"benchmarks": [')
    out = expect(secperf(project, "gate", "--benchmarks", str(broken)), 2)
    assert "broken.json: malformed JSON" in out
    expect(secperf(project, "gate", "--scan-id", "nope"), 2)


def test_reports_are_written_and_valid(project: Path, tmp_path: Path) -> None:
    (project / "app" / "shell.py").write_text(RISKY)
    expect(secperf(project, "gate", "--benchmarks", str(bench_file(tmp_path, "a.json"))), 1)
    slower = bench_file(tmp_path, "s.json", scale=1.3, days=1)
    reports = tmp_path / "reports"
    expect(secperf(project, "gate", "--benchmarks", str(slower), "--report-dir", str(reports)), 1)

    summary = json.loads((reports / "gate.json").read_text())
    conditions = summary["result"]["conditions"]
    suite = ET.parse(reports / "gate.junit.xml").getroot()
    cases = suite.findall(".//testcase")
    assert [c.get("name") for c in cases] == [c["name"] for c in conditions]
    failed = {c.get("name") for c in cases if c.find("failure") is not None}
    assert "new findings >= high" in failed
    assert "benchmark test_tinybench.py::test_sum" in failed

    markdown = (reports / "gate.md").read_text()
    assert markdown.startswith("## secperf gate: ❌ **BLOCK**")
    assert "| new findings &gt;= high | security | 1 |" in markdown
    assert "### Performance" in markdown and "app/shell.py:5" in markdown

    sarif = json.loads((reports / "gate.sarif").read_text())
    rules = [r["ruleId"] for r in sarif["runs"][0]["results"]]
    assert "B602" in rules and "secperf/performance/benchmark-regression" in rules
    if not SCHEMA.exists():
        pytest.skip(f"SARIF schema not found at {SCHEMA}; cannot validate gate.sarif")
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(sarif, json.loads(SCHEMA.read_text()))


def test_stored_scan_by_id(project: Path) -> None:
    (project / "app" / "shell.py").write_text(RISKY)
    scanned = secperf(project, "scan", "--format", "json")
    scan_id = json.loads(scanned.stdout)["scan_id"]
    (project / "app" / "shell.py").unlink()  # the stored scan is judged, not the tree
    out = expect(secperf(project, "gate", "--scan-id", scan_id), 1)
    assert "B602" in out
    expect(secperf(project, "gate"), 0)


def test_a_change_that_slows_real_code_is_blocked(project: Path, tmp_path: Path) -> None:
    """Real pytest-benchmark runs, before and after a change that makes a function slower."""
    pytest.importorskip("pytest_benchmark")
    bench_dir = project / "benchmarks"
    bench_dir.mkdir()
    (bench_dir / "test_speed.py").write_text(
        "from app.work import crunch\n\n\n"
        "def test_crunch(benchmark):\n"
        "    benchmark.pedantic(crunch, rounds=30, iterations=1, warmup_rounds=2)\n"
    )

    def run_benchmarks(body: str, out: Path) -> Path:
        (project / "app" / "work.py").write_text(body)
        done = subprocess.run(
            [
                sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                "--benchmark-json", str(out), "--benchmark-disable-gc",
                str(bench_dir / "test_speed.py"),
            ],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=240,
            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(project)},
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        return out

    # Ten times the work: a busy machine can slow the first run by a few times,
    # never by ten, so the regression is seen whatever else the machine does.
    fast = "def crunch():\n    return sum(i * i for i in range(20_000))\n"
    slow = "def crunch():\n    return sum(i * i for i in range(200_000))\n"
    before = run_benchmarks(fast, tmp_path / "before.json")
    # The work module is clean code: the baseline still covers the scan.
    expect(secperf(project, "baseline", "update"), 0)
    expect(secperf(project, "gate", "--benchmarks", str(before)), 3)  # no history yet
    after = run_benchmarks(slow, tmp_path / "after.json")
    report_dir = tmp_path / "reports"
    expect(secperf(project, "gate", "--benchmarks", str(after), "--report-dir", str(report_dir)), 1)
    verdict = json.loads((report_dir / "gate.json").read_text())
    blocking = [c for c in verdict["result"]["conditions"] if c["status"] == "block"]
    assert [c["name"] for c in blocking] == ["benchmark benchmarks/test_speed.py::test_crunch"]
    assert blocking[0]["measured"].startswith("+")


def test_gate_table_is_whole_at_80_columns(project: Path) -> None:
    """Every header whole, nothing cut with an ellipsis, the evidence readable down its column."""
    (project / "app" / "calc.py").write_text(RISKY)
    result = run_cli(["gate"], cwd=project, env={**_env(project), "COLUMNS": "80"})
    expect(result, 1)
    lines = result.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), result.stdout
    assert "…" not in result.stdout
    header = next(line for line in lines if line.startswith("condition"))
    assert header.split() == ["condition", "measured", "threshold", "status", "evidence"]
    start = header.index("evidence")
    rows = lines[lines.index(header) + 2 :]
    evidence = " ".join(line[start:].strip() for line in rows if len(line) > start)
    assert "new findings at or above high" in " ".join(evidence.split())


def _condition(report_dir: Path, name: str) -> dict[str, Any]:
    conditions = json.loads((report_dir / "gate.json").read_text())["result"]["conditions"]
    return next(c for c in conditions if c["name"] == name)


def test_scan_time_evidence_is_in_ms_per_1000_lines(project: Path, tmp_path: Path) -> None:
    """Real cold scans build the history; every rendering of the figure says ms per 1,000 lines."""
    # The fixture's baseline scan was cold too: with these four, 5 comparable scans
    # (too few for change-point detection to split them: the medians are always shown).
    for _ in range(4):
        expect(secperf(project, "scan", "--no-cache"), 0)
    reports = tmp_path / "reports"
    result = run_cli(
        ["gate", "--no-cache", "--report-dir", str(reports)],
        cwd=project,
        env={**_env(project), "COLUMNS": "1000"},  # the evidence on one line
    )
    assert result.returncode in (0, 1), result.stdout + result.stderr  # pass, or slower
    evidence = _condition(reports, "scan time per 1,000 lines")["evidence"]
    medians = re.search(r"median ([\d,.]+) -> ([\d,.]+) ms per 1,000 lines", evidence)
    assert medians is not None, evidence
    assert " s -> " not in evidence and not evidence.endswith(" s")
    assert medians.group(0) in result.stdout
    assert medians.group(0).replace("->", "-&gt;") in (reports / "gate.md").read_text()
    assert "ms/kLOC" in (reports / "gate.md").read_text()  # its performance table


OSV = FIXTURES_DIR / "osv"


@pytest.fixture
def default_project(tmp_path: Path) -> Path:
    """No secperf.toml: the default scanners (deps among them), a vulnerable pin, no OSV data."""
    root = tmp_path / "plain"
    (root / "app").mkdir(parents=True)
    (root / "app" / "calc.py").write_text(CLEAN)
    (root / "requirements.txt").write_text("requests==2.19.0\n")
    expect(secperf(root, "baseline", "update"), 0)
    return root


def test_default_deps_without_osv_data_is_reported_not_judged(
    default_project: Path, tmp_path: Path
) -> None:
    """As `secperf scan` does for a scanner it was not asked for by name: exit 0, never unsaid."""
    reports = tmp_path / "reports"
    expect(secperf(default_project, "gate", "--report-dir", str(reports)), 0)
    ran = _condition(reports, "scanners ran")["evidence"]
    assert "not run: deps: no OSV database: pass --osv-db PATH" in ran
    assert not ran.startswith("deps") and ", deps," not in ran.split(";")[0]
    summary = json.loads((reports / "gate.json").read_text())
    assert "fixable vulnerable dependencies" not in {
        c["name"] for c in summary["result"]["conditions"]
    }
    assert any(
        n.startswith("vulnerable dependencies: not checked (deps did not run: no OSV database")
        for n in summary["notes"]
    ), summary["notes"]
    # A stored scan of the same configuration is judged the same way.
    scanned = secperf(default_project, "scan", "--format", "json")
    assert json.loads(scanned.stdout)["unavailable"]["deps"].startswith("no OSV database")
    scan_id = json.loads(scanned.stdout)["scan_id"]
    out = expect(secperf(default_project, "gate", "--scan-id", scan_id, "--format", "json"), 0)
    assert "not run: deps: no OSV database" in out


def test_deps_given_osv_data_is_judged(default_project: Path) -> None:
    """--osv-db asks for the condition: the pinned vulnerable version blocks."""
    result = secperf(default_project, "gate", "--osv-db", str(OSV), "--format", "json")
    expect(result, 1)
    conditions = {c["name"]: c for c in json.loads(result.stdout)["result"]["conditions"]}
    fixable = conditions["fixable vulnerable dependencies"]
    assert fixable["status"] == "block" and "requirements.txt" in fixable["evidence"]
    assert "not run: deps" not in conditions["scanners ran"]["evidence"]


def test_deps_given_osv_data_it_cannot_use_cannot_evaluate(default_project: Path) -> None:
    """network = true but the OSV API refuses: the condition cannot be evaluated, exit 3."""
    with socket.socket() as probe:  # a port nothing listens on: the connection is refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (default_project / "secperf.toml").write_text(
        f'[scan.deps]\nnetwork = true\nosv_api_url = "http://127.0.0.1:{port}"\n'
    )
    result = secperf(default_project, "gate", "--format", "json")
    expect(result, 3)
    conditions = {c["name"]: c for c in json.loads(result.stdout)["result"]["conditions"]}
    fixable = conditions["fixable vulnerable dependencies"]
    assert fixable["status"] == "cannot_evaluate"
    assert fixable["evidence"].startswith("the deps scanner checked none of its files: OSV lookup")
    assert "checked nothing: deps: OSV lookup failed" in conditions["scanners ran"]["evidence"]
