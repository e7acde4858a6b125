"""`secperf bench` end to end (in-process): real commands timed, real files imported, real store."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from secperf.model import BenchmarkResult
from secperf.perf.benchmarks import local_machine_info, machine_fingerprint
from secperf.store import Store
from support.cli import CliResult, run_cli
from support.paths import FIXTURES as FIXTURES_DIR

FIXTURES = FIXTURES_DIR / "benchmarks"
PYTEST_TINY = FIXTURES / "pytest_benchmark_tiny.json"
ASV_RESULTS = FIXTURES / "asv" / "results"


def env_for(cwd: Path) -> dict[str, str]:
    home = cwd.parent / "home"
    home.mkdir(exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "COLUMNS": "200",
        "GIT_CONFIG_NOSYSTEM": "1",
    }


def secperf(cwd: Path, *args: str) -> CliResult:
    return run_cli(args, cwd=cwd, env=env_for(cwd))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "secperf.toml").write_text('[store]\nurl = "data/secperf.db"\n')
    return root


def stored(project: Path) -> list[BenchmarkResult]:
    db = project / "data" / "secperf.db"
    if not db.exists():
        return []
    with Store.open(db) as store:
        return store.benchmark_results(limit=None)


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env_for(cwd), capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_bench_times_a_command_and_stores_it_with_commit_and_machine(project: Path) -> None:
    git(project, "init", "-q")
    git(project, "-c", "user.name=t", "-c", "user.email=t@example.org", "add", ".")
    git(project, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qm", "x")
    head = git(project, "rev-parse", "HEAD")

    # The short form: `bench` with no subcommand runs the command.
    code = "x = sum(range(20000))"
    result = secperf(project, "bench", "-n", "5", "--warmup", "1", "--", sys.executable, "-c", code)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "median" in result.stdout and "MAD" in result.stdout and "max RSS" in result.stdout

    [saved] = stored(project)
    assert saved.source == "command"
    assert saved.name == f"{sys.executable} -c {code}"
    assert saved.stats["rounds"] == 5 and len(saved.data) == 5
    assert saved.stats["min"] <= saved.stats["median"] <= saved.stats["max"]
    assert saved.stats["max_rss_bytes"] > 0
    assert saved.commit == head
    assert saved.machine == machine_fingerprint(local_machine_info())
    assert saved.extra["warmup"] == 1

    listed = secperf(project, "bench", "list")
    assert listed.returncode == 0, listed.stderr
    assert (
        code in listed.stdout and head[:8] in listed.stdout and saved.machine[:8] in listed.stdout
    )


def test_bench_run_with_a_name_outside_a_repository(project: Path) -> None:
    result = secperf(
        project, "bench", "run", "-n", "2", "-w", "0", "--name", "tiny", "--", sys.executable,
        "-c", "pass",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    [saved] = stored(project)
    assert saved.name == "tiny" and saved.commit is None and saved.stats["rounds"] == 2


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ([sys.executable, "-c", "import sys; sys.exit('boom')"], "exited with 1"),
        (["no-such-command-here"], "no-such-command-here: command not found"),
    ],
)
def test_a_failing_command_is_an_error_and_nothing_is_stored(
    project: Path, command: list[str], expected: str
) -> None:
    result = secperf(project, "bench", "run", "-n", "2", "--", *command)
    assert result.returncode == 2
    assert expected in result.stderr
    assert stored(project) == []


def test_import_pytest_benchmark_and_asv(project: Path) -> None:
    result = secperf(project, "bench", "import", str(PYTEST_TINY), str(ASV_RESULTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "pytest-benchmark, 3 ok" in result.stdout
    assert "asv," in result.stdout

    results = stored(project)
    by_source: dict[str, list[BenchmarkResult]] = {}
    for r in results:
        by_source.setdefault(r.source, []).append(r)
    assert len(by_source["pytest-benchmark"]) == 3
    assert all(r.commit for r in by_source["pytest-benchmark"])
    asv = by_source["asv"]
    assert {r.status for r in asv} == {"ok", "failed", "skipped"}
    assert len({r.commit for r in asv}) == 2  # two results files, two commits

    again = secperf(project, "bench", "import", str(PYTEST_TINY))
    assert again.returncode == 0
    assert "0 new results stored (3 already stored)" in again.stdout

    listed = secperf(project, "bench", "list", "--name", "test_tinybench.py::test_sum")
    assert listed.returncode == 0
    assert "test_sum" in listed.stdout and "test_sorted" not in listed.stdout

    as_json = secperf(project, "bench", "list", "--json")
    assert as_json.returncode == 0, as_json.stderr
    listed_json = json.loads(as_json.stdout)["results"]
    assert sorted((r["name"], r["source"]) for r in listed_json) == sorted(
        (r.name, r.source) for r in results
    )
    narrow = run_cli(["bench", "list"], cwd=project, env={**env_for(project), "COLUMNS": "80"})
    assert all(len(line) <= 80 for line in narrow.stdout.splitlines()), narrow.stdout
    assert "…" not in narrow.stdout
    # Each name reads whole down its column (folded, never cut).
    lines = narrow.stdout.splitlines()
    header = next(line for line in lines if line.split()[:1] == ["name"])
    end = header.index("commit")
    names = "".join(line[:end].strip() for line in lines[lines.index(header) + 2 :])
    assert all(r.name.replace(" ", "") in names.replace(" ", "") for r in results)


def test_an_asv_results_file_alone(project: Path, tmp_path: Path) -> None:
    one = next(p for p in (ASV_RESULTS / "ci-box").iterdir() if p.name != "machine.json")
    result = secperf(project, "bench", "import", str(one))
    assert result.returncode == 0, result.stdout + result.stderr
    assert stored(project) and {r.source for r in stored(project)} == {"asv"}


def test_a_malformed_file_stores_nothing_at_all(project: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    doc = json.loads(PYTEST_TINY.read_text())
    del doc["benchmarks"][1]["stats"]["median"]
    bad.write_text(json.dumps(doc))
    # The good file comes first: it must not be stored either.
    result = secperf(project, "bench", "import", str(PYTEST_TINY), str(bad))
    assert result.returncode == 2
    assert "bad.json" in result.stderr
    assert "benchmarks[1].stats.median: missing" in result.stderr
    assert "nothing was stored" in result.stderr
    assert stored(project) == []


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"benchmarks": [', "malformed JSON at line 1"),
        ('{"hello": 1}', "neither a pytest-benchmark file"),
        (None, "no such file or directory"),
    ],
)
def test_bad_import_input_names_the_file(
    project: Path, tmp_path: Path, content: str | None, expected: str
) -> None:
    path = tmp_path / "input.json"
    if content is not None:
        path.write_text(content)
    result = secperf(project, "bench", "import", str(path))
    assert result.returncode == 2
    assert str(path) in result.stderr and expected in result.stderr
    assert "Traceback" not in result.stderr
    assert stored(project) == []


def test_list_with_nothing_stored(project: Path) -> None:
    result = secperf(project, "bench", "list")
    assert result.returncode == 0
    assert "no stored results" in result.stderr
