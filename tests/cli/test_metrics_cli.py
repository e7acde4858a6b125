"""`secperf metrics list|query` and `secperf import pytest-benchmark|asv` on a real store."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from secperf.model import Sample
from secperf.store import Store
from support.cli import CliResult, run_cli
from support.paths import FIXTURES as FIXTURES_DIR

FIXTURES = FIXTURES_DIR / "benchmarks"


def secperf(cwd: Path, *args: str) -> CliResult:
    return run_cli(args, cwd=cwd)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "secperf.toml").write_text('[store]\nurl = "data/secperf.db"\n')
    now = time.time_ns() // 1_000_000
    with Store.open(tmp_path / "data" / "secperf.db") as store:
        store.write_samples(
            [
                Sample("response_time_ms", {"job": job}, now - i * 1000, 10.0 + i % 7)
                for job in ("api", "web")
                for i in range(600)
            ]
        )
    return tmp_path


def test_metrics_list_and_query(project: Path) -> None:
    listed = secperf(project, "metrics", "list")
    assert listed.returncode == 0, listed.stderr
    assert "response_time_ms" in listed.stdout and "milliseconds" in listed.stdout

    table = secperf(project, "metrics", "query", "response_time_ms", "--since", "15m")
    assert table.returncode == 0, table.stderr
    assert "job=api" in table.stdout and "job=web" in table.stdout

    raw = secperf(
        project, "metrics", "query", "response_time_ms", "-l", "job=api", "--step", "1m", "--json"
    )
    data = json.loads(raw.stdout)
    assert [s["labels"] for s in data["series"]] == [{"job": "api"}]
    series = data["series"][0]
    assert 10 <= len(series["timestamps_ms"]) <= 11
    assert min(series["min"]) == 10.0 and max(series["max"]) == 16.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["metrics", "query", "response_time_ms", "--since", "soon"], "soon"),
        (["metrics", "query", "response_time_ms", "-l", "job"], "expected NAME=VALUE"),
        (["metrics", "query", "response_time_ms", "--step", "0"], "--step: must be longer"),
        (["metrics", "query", "response_time_ms", "--since", "0"], "--since: must be longer"),
    ],
)
def test_bad_query_options_exit_2(project: Path, args: list[str], message: str) -> None:
    result = secperf(project, *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_query_without_data_cannot_evaluate(project: Path) -> None:
    result = secperf(project, "metrics", "query", "cpu_percent")
    assert result.returncode == 3
    assert "no samples of cpu_percent" in result.stderr


def test_import_by_kind_is_all_or_nothing(project: Path) -> None:
    wrong = secperf(project, "import", "pytest-benchmark", str(FIXTURES / "asv" / "results"))
    assert wrong.returncode == 2 and "not pytest-benchmark" in wrong.stderr
    with Store.open(project / "data" / "secperf.db") as store:
        assert store.benchmark_results() == []

    ok = secperf(
        project, "import", "pytest-benchmark", str(FIXTURES / "pytest_benchmark_tiny.json")
    )
    assert ok.returncode == 0, ok.stderr
    asv = secperf(project, "import", "asv", str(FIXTURES / "asv" / "results"))
    assert asv.returncode == 0, asv.stderr
    with Store.open(project / "data" / "secperf.db") as store:
        sources = {r.source for r in store.benchmark_results()}
    assert sources == {"pytest-benchmark", "asv"}
