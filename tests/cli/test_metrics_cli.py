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
    assert "response_time_ms" in listed.stdout and " ms " in listed.stdout

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
        (
            ["metrics", "query", "response_time_ms", "--since", "soon"],
            "--since: invalid duration 'soon'",
        ),
        (["metrics", "query", "response_time_ms", "--since", "1x"], "--since: invalid duration"),
        (["metrics", "query", "response_time_ms", "--step", "1x"], "--step: invalid duration '1x'"),
        (["metrics", "query", "response_time_ms", "--step", ""], "--step: invalid duration ''"),
        (["metrics", "query", "response_time_ms", "-l", "job"], "expected NAME=VALUE"),
        (["metrics", "query", "response_time_ms", "--step", "0"], "--step: must be longer"),
        (["metrics", "query", "response_time_ms", "--since", "0"], "--since: must be longer"),
        (
            ["metrics", "query", "security_findings{"],
            "metric 'security_findings{': the label matchers must end with '}'",
        ),
        (["metrics", "query", "response_time_ms{job}"], "'job' is not a label matcher"),
        (["metrics", "query", "9lives"], "'9lives' is not a metric name"),
    ],
)
def test_bad_query_options_exit_2(project: Path, args: list[str], message: str) -> None:
    result = secperf(project, *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_query_takes_a_selector_with_label_matchers(project: Path) -> None:
    result = secperf(project, "metrics", "query", 'response_time_ms{job!="web"}', "--json")
    assert result.returncode == 0, result.stderr
    assert [s["labels"] for s in json.loads(result.stdout)["series"]] == [{"job": "api"}]
    result = secperf(project, "metrics", "query", 'response_time_ms{job="web"}', "--json")
    assert [s["labels"] for s in json.loads(result.stdout)["series"]] == [{"job": "web"}]


def table_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_query_with_a_step_says_times_are_bucket_starts(project: Path) -> None:
    result = secperf(project, "metrics", "query", "response_time_ms", "--step", "1m")
    assert result.returncode == 0, result.stderr
    assert "times are bucket starts, 1m buckets" in result.stdout
    header = next(line for line in table_lines(result.stdout) if "labels" in line)
    assert header.split() == ["labels", "first", "last", "points", "min", "avg", "max", "trend"]
    assert all(len(line) <= 80 for line in result.stdout.splitlines())


def test_derived_security_series_have_a_unit_and_kind(tmp_path: Path) -> None:
    """security_findings and security_new_findings come from a scan's counted findings."""
    (tmp_path / "secperf.toml").write_text('[store]\nurl = "data/secperf.db"\n')
    now = time.time_ns() // 1_000_000
    with Store.open(tmp_path / "data" / "secperf.db") as store:
        store.write_samples(
            [
                Sample("security_findings", {"category": "sast", "target": "/repo"}, now, 3.0),
                Sample("security_new_findings", {"severity": "high", "target": "/repo"}, now, 1.0),
                Sample("disk_read_ops", {"host": "a"}, now, 12.0),
                Sample("scan_process_rss_bytes", {"scan_id": "s1"}, now, 1e6),
            ]
        )
    listed = json.loads(secperf(tmp_path, "metrics", "list", "--json").stdout)
    kinds = {m["name"]: (m["unit"], m["kind"]) for m in listed["metrics"]}
    assert kinds == {
        "disk_read_ops": ("operations_per_second", "performance"),
        "scan_process_rss_bytes": ("bytes", "performance"),
        "security_findings": ("count", "security"),
        "security_new_findings": ("count", "security"),
    }
    table = secperf(tmp_path, "metrics", "list")
    rows = {line.split()[0]: line.split()[1:3] for line in table_lines(table.stdout)[3:]}
    assert rows["security_findings"] == ["count", "security"]
    assert rows["disk_read_ops"] == ["ops/s", "performance"]


def column_text(lines: list[str], name: str, after: str | None = None) -> str:
    """The text of one column of a table without side borders, folded lines joined up."""
    header = next(line for line in lines if line.split()[:1] in (["metric"], ["labels"]))
    start = header.index(name)
    end = header.index(after) if after else None
    body = lines[lines.index(header) + 2 :]
    return "".join(line[start:end].strip() for line in body)


def test_metric_tables_fit_80_columns(tmp_path: Path) -> None:
    """Long names and many labels wrap inside their column, whole; no header is cut."""
    (tmp_path / "secperf.toml").write_text('[store]\nurl = "data/secperf.db"\n')
    now = time.time_ns() // 1_000_000
    labels = {f"label_{i}": f"value-{i}-" + "x" * 20 for i in range(4)}
    with Store.open(tmp_path / "data" / "secperf.db") as store:
        store.write_samples(
            [
                Sample("scan_process_cpu_percent", labels, now - i * 1000, float(i))
                for i in range(100)
            ]
        )
    listed = secperf(tmp_path, "metrics", "list")
    query = secperf(tmp_path, "metrics", "query", "scan_process_cpu_percent", "--step", "10s")
    for result in (listed, query):
        assert result.returncode == 0, result.stderr
        assert all(len(line) <= 80 for line in result.stdout.splitlines()), result.stdout
        assert "…" not in result.stdout
    assert column_text(table_lines(listed.stdout), "labels").replace(" ", "") == ",".join(
        sorted(labels)
    )
    shown = column_text(table_lines(query.stdout), "labels", "first")
    assert shown.replace(" ", "") == ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


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
