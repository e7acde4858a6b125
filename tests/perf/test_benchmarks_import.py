"""Import of pytest-benchmark and asv results, and machine fingerprints."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from secperf.model import BenchmarkResult
from secperf.perf.benchmarks import (
    PYTEST_BENCHMARK_STATS,
    BenchmarkImportError,
    comparability_fields,
    load_asv_results,
    load_pytest_benchmark,
    local_machine_info,
    machine_fingerprint,
)
from support.paths import FIXTURES as FIXTURES_DIR

FIXTURES = FIXTURES_DIR / "benchmarks"
PB_FIXTURE = FIXTURES / "pytest_benchmark_tiny.json"
ASV_RESULTS = FIXTURES / "asv" / "results"
ASV_V2 = ASV_RESULTS / "ci-box" / "4f1b2a3c-virtualenv-py3.11-numpy.json"
ASV_V1 = ASV_RESULTS / "ci-box" / "9e8d7c6b-virtualenv-py3.11.json"

BENCH_SOURCE = """
import pytest

def test_join(benchmark):
    benchmark(",".join, ["a"] * 50)

@pytest.mark.parametrize("n", [10, 200])
def test_sorted(benchmark, n):
    benchmark.group = "sorting"
    benchmark.extra_info["size"] = n
    benchmark(sorted, list(range(n, 0, -1)))
"""


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=dev", "-c", "user.email=dev@example.org", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.fixture(scope="module")
def pb_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run pytest-benchmark for real on a tiny file in a fresh git repository."""
    project = tmp_path_factory.mktemp("benchproject")
    (project / "test_tiny_bench.py").write_text(BENCH_SOURCE)
    (project / "pytest.ini").write_text("[pytest]\n")
    _git(project, "init", "-q", "-b", "main")
    _git(project, "add", ".")
    _git(project, "commit", "-q", "-m", "tiny benchmarks")
    head = _git(project, "rev-parse", "HEAD")
    out = project / "results.json"
    before_ms = int(time.time() * 1000)
    proc = subprocess.run(
        [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
            "test_tiny_bench.py", f"--benchmark-json={out}", "--benchmark-save-data",
            "--benchmark-max-time=0.001", "--benchmark-min-rounds=5",
            "--benchmark-warmup=off",
        ],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    after_ms = int(time.time() * 1000)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {"path": out, "head": head, "before_ms": before_ms, "after_ms": after_ms}


# --------------------------------------------------------------------------- pytest-benchmark


def test_real_pytest_benchmark_run_keeps_every_stat(pb_run: dict[str, Any]) -> None:
    raw = json.loads(pb_run["path"].read_text())
    results = load_pytest_benchmark(pb_run["path"])

    assert [r.name for r in results] == [b["fullname"] for b in raw["benchmarks"]]
    assert {r.name for r in results} == {
        "test_tiny_bench.py::test_join",
        "test_tiny_bench.py::test_sorted[10]",
        "test_tiny_bench.py::test_sorted[200]",
    }
    for result, entry in zip(results, raw["benchmarks"], strict=True):
        assert result.source == "pytest-benchmark"
        assert result.status == "ok"
        assert set(result.stats) == set(PYTEST_BENCHMARK_STATS)
        for key in PYTEST_BENCHMARK_STATS:
            assert result.stats[key] == entry["stats"][key]
        assert result.extra["outliers"] == entry["stats"]["outliers"]
        assert len(result.data) == entry["stats"]["rounds"] >= 5
        assert result.data == tuple(entry["stats"]["data"])
        assert result.stats["min"] <= result.stats["median"] <= result.stats["max"]
        assert result.commit == pb_run["head"]
        assert result.extra["branch"] == "main"
        assert result.extra["commit_dirty"] is False
        assert pb_run["before_ms"] - 1000 <= result.timestamp_ms <= pb_run["after_ms"] + 1000
        assert result.machine_info == raw["machine_info"]
        assert result.machine == machine_fingerprint(raw["machine_info"])

    by_name = {r.name: r for r in results}
    sorted_10 = by_name["test_tiny_bench.py::test_sorted[10]"]
    assert sorted_10.params == {"n": "10"}
    assert sorted_10.extra["group"] == "sorting"
    assert sorted_10.extra["short_name"] == "test_sorted[10]"
    assert sorted_10.extra["extra_info"] == {"size": 10}
    assert by_name["test_tiny_bench.py::test_join"].params == {}


def test_real_run_fingerprint_matches_this_machine(pb_run: dict[str, Any]) -> None:
    # secperf's own command timings and pytest-benchmark results from this
    # machine must land in the same history.
    (result, *_) = load_pytest_benchmark(pb_run["path"])
    assert result.machine == machine_fingerprint(local_machine_info())


def test_saved_fixture_file() -> None:
    raw = json.loads(PB_FIXTURE.read_text())
    results = load_pytest_benchmark(PB_FIXTURE)
    assert len(results) == 3
    assert {r.commit for r in results} == {"2b47964e5e1d2552f4dc4a1b6f1c24fa4697e165"}
    assert results[0].stats["mean"] == raw["benchmarks"][0]["stats"]["mean"]
    stamp = datetime.fromisoformat(raw["datetime"])
    assert results[0].timestamp_ms == int(stamp.timestamp() * 1000)
    assert results[2].params == {"n": "100"}
    assert results[2].extra["commit_time"] == "2026-11-27T21:18:20+00:00"
    assert all(len(r.data) == r.stats["rounds"] for r in results)


def test_datetime_becomes_utc_milliseconds(tmp_path: Path) -> None:
    doc = json.loads(PB_FIXTURE.read_text())
    doc["datetime"] = "2024-03-01T12:00:00.250000+00:00"
    aware = tmp_path / "aware.json"
    aware.write_text(json.dumps(doc))
    doc["datetime"] = "2024-03-01T12:00:00.250000"  # older versions wrote naive UTC
    naive = tmp_path / "naive.json"
    naive.write_text(json.dumps(doc))
    expected = 1709294400250
    assert load_pytest_benchmark(aware)[0].timestamp_ms == expected
    assert load_pytest_benchmark(naive)[0].timestamp_ms == expected


def test_without_saved_data_and_without_git(tmp_path: Path) -> None:
    doc = json.loads(PB_FIXTURE.read_text())
    for entry in doc["benchmarks"]:
        del entry["stats"]["data"]
    doc["commit_info"] = {"id": "unknown", "dirty": False, "error": "not a git repository"}
    path = tmp_path / "nodata.json"
    path.write_text(json.dumps(doc))
    results = load_pytest_benchmark(path)
    assert [r.data for r in results] == [(), (), ()]
    assert all(r.commit is None for r in results)
    assert results[0].extra["commit_error"] == "not a git repository"


def _write(tmp_path: Path, name: str, doc: Any) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def test_malformed_json_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text(PB_FIXTURE.read_text()[:500])
    with pytest.raises(BenchmarkImportError, match=r"results\.json: malformed JSON at line \d+"):
        load_pytest_benchmark(path)


def test_wrong_top_level_type(tmp_path: Path) -> None:
    path = _write(tmp_path, "results.json", [1, 2])
    with pytest.raises(BenchmarkImportError, match=r"results\.json: expected a JSON object"):
        load_pytest_benchmark(path)
    path = _write(tmp_path, "other.json", {"hello": 1})
    with pytest.raises(BenchmarkImportError, match=r"other\.json: benchmarks: missing"):
        load_pytest_benchmark(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BenchmarkImportError, match="no such file"):
        load_pytest_benchmark(tmp_path / "absent.json")


def test_non_numeric_stat_names_the_json_path(tmp_path: Path) -> None:
    doc = json.loads(PB_FIXTURE.read_text())
    doc["benchmarks"][2]["stats"]["mean"] = "fast"
    path = _write(tmp_path, "results.json", doc)
    with pytest.raises(BenchmarkImportError) as caught:
        load_pytest_benchmark(path)
    assert str(caught.value) == (f'{path}: benchmarks[2].stats.mean: expected a number, got "fast"')
    assert caught.value.where == "benchmarks[2].stats.mean"


def test_bad_entries_with_strict_false_keep_the_good_ones(tmp_path: Path) -> None:
    doc = json.loads(PB_FIXTURE.read_text())
    del doc["benchmarks"][0]["stats"]
    doc["benchmarks"][1]["stats"]["data"][3] = None
    path = _write(tmp_path, "results.json", doc)

    with pytest.raises(BenchmarkImportError, match=r"benchmarks\[0\]\.stats: missing"):
        load_pytest_benchmark(path)

    problems: list[BenchmarkImportError] = []
    results = load_pytest_benchmark(path, strict=False, problems=problems)
    assert [r.name for r in results] == [doc["benchmarks"][2]["fullname"]]
    assert [p.where for p in problems] == ["benchmarks[0].stats", "benchmarks[1].stats.data[3]"]
    assert "expected a number, got null" in str(problems[1])


def test_non_finite_and_missing_required_stats(tmp_path: Path) -> None:
    doc = json.loads(PB_FIXTURE.read_text())
    doc["benchmarks"][0]["stats"]["stddev"] = math.inf
    del doc["benchmarks"][1]["stats"]["median"]
    path = _write(tmp_path, "results.json", doc)
    problems: list[BenchmarkImportError] = []
    assert len(load_pytest_benchmark(path, strict=False, problems=problems)) == 1
    assert "benchmarks[0].stats.stddev: expected a finite number" in str(problems[0])
    assert "benchmarks[1].stats.median: missing" in str(problems[1])


def test_bad_datetime(tmp_path: Path) -> None:
    doc = json.loads(PB_FIXTURE.read_text())
    doc["datetime"] = "yesterday"
    path = _write(tmp_path, "results.json", doc)
    with pytest.raises(BenchmarkImportError, match='datetime: expected an ISO 8601 date, got "yes'):
        load_pytest_benchmark(path)


# --------------------------------------------------------------------------- asv


def _by_key(results: list[BenchmarkResult]) -> dict[tuple[str, str, str], BenchmarkResult]:
    return {
        ((r.commit or "")[:8], r.extra["benchmark"], json.dumps(r.params, sort_keys=True)): r
        for r in results
    }


def test_asv_results_directory_both_layouts() -> None:
    results = load_asv_results(ASV_RESULTS)
    # v2 file: 1 + 4 + 1 + 1 + 1 + 1 results; v1 file: 1 + 1 + 1 + 4 + 1.
    assert len(results) == 9 + 8
    assert {r.source for r in results} == {"asv"}
    assert {r.commit for r in results} == {
        "4f1b2a3c5d6e7f8091a2b3c4d5e6f708192a3b4c",
        "9e8d7c6b5a49382716051f4e3d2c1b0a99887766",
    }
    machine_info = json.loads((ASV_RESULTS / "ci-box" / "machine.json").read_text())
    machine_info["python"] = "3.11"
    assert {r.machine for r in results} == {machine_fingerprint(machine_info)}


def test_asv_v2_layout_values() -> None:
    results = _by_key(load_asv_results(ASV_V2, ASV_RESULTS / "ci-box" / "machine.json"))
    keys = load_asv_results(ASV_V2)
    assert len(keys) == 9

    timed = results[("4f1b2a3c", "benchmarks.TimeSuite.time_keys", "{}")]
    assert timed.status == "ok"
    assert timed.stats == {
        "result": 1.2345e-05,
        "median": 1.2345e-05,
        "ci_99_a": 1.1e-05,
        "ci_99_b": 1.4e-05,
        "q_25": 1.2e-05,
        "q_75": 1.3e-05,
        "number": 1000.0,
        "repeat": 10.0,
        "rounds": 5.0,
    }
    assert timed.data == (1.21e-05, 1.23e-05, 1.2345e-05, 1.25e-05, 1.3e-05)
    assert timed.timestamp_ms == 1732700000000
    assert timed.extra["commit_date_ms"] == 1732600000000
    assert timed.extra["env_name"] == "virtualenv-py3.11-numpy"
    assert timed.extra["type"] == "time"
    assert timed.extra["unit"] == "seconds"
    assert timed.extra["duration_s"] == 1.5234
    assert timed.extra["benchmark_version"] == "a1"
    assert timed.machine_info["machine"] == "ci-box"


def test_asv_parameterised_benchmarks_expand_per_combination() -> None:
    results = load_asv_results(ASV_V2)
    sort = [r for r in results if r.extra["benchmark"] == "benchmarks.TimeSuite.time_sort"]
    # Cartesian-product order, the last parameter varying fastest; names from benchmarks.json.
    assert [r.params for r in sort] == [
        {"n": "10", "container": "'list'"},
        {"n": "10", "container": "'tuple'"},
        {"n": "100", "container": "'list'"},
        {"n": "100", "container": "'tuple'"},
    ]
    assert [r.status for r in sort] == ["ok", "ok", "skipped", "failed"]
    assert [r.stats.get("result") for r in sort] == [1.1e-06, 9.5e-06, None, None]
    assert sort[1].stats["ci_99_b"] == 1e-05
    assert sort[2].stats == {} and sort[3].data == ()


def test_asv_failed_skipped_and_other_types() -> None:
    results = _by_key(load_asv_results(ASV_V2))
    assert results[("4f1b2a3c", "benchmarks.TimeSuite.time_broken", "{}")].status == "failed"
    assert results[("4f1b2a3c", "benchmarks.time_skipped", "{}")].status == "skipped"
    memory = results[("4f1b2a3c", "benchmarks.MemSuite.mem_list", "{}")]
    assert memory.stats == {"result": 2048.0}  # no median: not a timing
    assert (memory.extra["type"], memory.extra["unit"]) == ("memory", "bytes")
    track = results[("4f1b2a3c", "benchmarks.track_value", "{}")]
    assert (track.stats, track.extra["type"]) == ({"result": 42.0}, "track")


def test_asv_older_layout() -> None:
    results = _by_key(load_asv_results(ASV_V1))
    plain = results[("9e8d7c6b", "benchmarks.TimeSuite.time_keys", "{}")]
    assert (plain.status, plain.stats["result"]) == ("ok", 1.5e-05)
    assert plain.timestamp_ms == 1700000100000
    assert plain.extra["benchmark_version"] == "a1"
    assert plain.extra["duration_s"] == 1.1
    assert results[("9e8d7c6b", "benchmarks.TimeSuite.time_broken", "{}")].status == "failed"
    skipped = results[("9e8d7c6b", "benchmarks.time_skipped", "{}")]
    assert skipped.status == "skipped"
    assert skipped.timestamp_ms == 1700000000000  # no started_at: the commit date
    first = results[
        ("9e8d7c6b", "benchmarks.TimeSuite.time_sort", '{"container": "\'list\'", "n": "10"}')
    ]
    assert first.stats["ci_99_a"] == 0.8e-06 and first.stats["ci_99_b"] == 1.2e-06
    assert first.stats["q_25"] == 0.95e-06 and first.stats["repeat"] == 3.0
    assert first.data == (0.9e-06, 1e-06, 1.1e-06)
    last = results[
        ("9e8d7c6b", "benchmarks.TimeSuite.time_sort", '{"container": "\'tuple\'", "n": "100"}')
    ]
    assert last.status == "failed"
    assert results[("9e8d7c6b", "benchmarks.MemSuite.mem_list", "{}")].stats == {"result": 1024.0}


def test_asv_single_file_without_catalogue(tmp_path: Path) -> None:
    target = tmp_path / "4f1b2a3c-virtualenv-py3.11-numpy.json"
    shutil.copy(ASV_V2, target)
    results = load_asv_results(target)
    sort = [r for r in results if r.extra["benchmark"] == "benchmarks.TimeSuite.time_sort"]
    assert sort[0].params == {"param1": "10", "param2": "'list'"}
    types = {r.extra["benchmark"]: r.extra["type"] for r in results}
    assert types["benchmarks.MemSuite.mem_list"] == "memory"  # from the mem_ prefix
    assert types["benchmarks.track_value"] == "track"


def test_asv_machine_json_fills_missing_facts(tmp_path: Path) -> None:
    doc = json.loads(ASV_V2.read_text())
    doc["params"] = {}
    path = _write(tmp_path, "run.json", doc)
    bare = load_asv_results(path)
    filled = load_asv_results(path, ASV_RESULTS / "ci-box" / "machine.json")
    assert bare[0].machine != filled[0].machine
    assert filled[0].machine == load_asv_results(ASV_V2)[0].machine
    assert comparability_fields(filled[0].machine_info)["name"] == "ci-box"


def test_asv_bad_entries(tmp_path: Path) -> None:
    doc = json.loads(ASV_V2.read_text())
    doc["results"]["benchmarks.TimeSuite.time_sort"][0] = [1.0, 2.0]  # 4 combinations
    doc["results"]["benchmarks.TimeSuite.time_keys"][0] = ["slow"]
    path = _write(tmp_path, "run.json", doc)
    with pytest.raises(BenchmarkImportError) as caught:
        load_asv_results(path)
    assert str(caught.value) == (
        f'{path}: results["benchmarks.TimeSuite.time_keys"].result[0]: '
        'expected a number, got "slow"'
    )
    problems: list[BenchmarkImportError] = []
    results = load_asv_results(path, strict=False, problems=problems)
    assert len(results) == 9 - 1 - 4
    assert "expected 4 values (one per parameter combination), got 2" in str(problems[1])


def test_asv_directory_with_a_corrupt_file(tmp_path: Path) -> None:
    results_dir = tmp_path / "results"
    shutil.copytree(ASV_RESULTS, results_dir)
    (results_dir / "ci-box" / "deadbeef-virtualenv-py3.11.json").write_text("{not json")
    with pytest.raises(BenchmarkImportError, match=r"deadbeef-virtualenv-py3\.11\.json: malformed"):
        load_asv_results(results_dir)
    problems: list[BenchmarkImportError] = []
    assert len(load_asv_results(results_dir, strict=False, problems=problems)) == 17
    assert len(problems) == 1


def test_asv_wrong_shapes(tmp_path: Path) -> None:
    with pytest.raises(BenchmarkImportError, match="no asv results files found"):
        load_asv_results(tmp_path)
    with pytest.raises(BenchmarkImportError, match="results: missing"):
        load_asv_results(_write(tmp_path, "x.json", {"commit_hash": "abc"}))
    with pytest.raises(BenchmarkImportError, match="expected a JSON object"):
        load_asv_results(_write(tmp_path, "y.json", "text"))
    with pytest.raises(BenchmarkImportError, match="no such file or directory"):
        load_asv_results(tmp_path / "missing")


# --------------------------------------------------------------------------- fingerprints


def test_fingerprint_is_stable_and_ignores_host_details() -> None:
    info = local_machine_info()
    fingerprint = machine_fingerprint(info)
    assert len(fingerprint) == 16 and int(fingerprint, 16) >= 0
    assert machine_fingerprint(dict(info)) == fingerprint
    moved = dict(info, node="another-runner", release="9.9", memory_bytes=1)
    assert machine_fingerprint(moved) == fingerprint
    assert machine_fingerprint(dict(info, cpu_model="Some Other CPU")) != fingerprint
    assert machine_fingerprint(dict(info, python_version="3.99.0")) != fingerprint
    assert machine_fingerprint(local_machine_info(name="bench-box")) != fingerprint


def test_comparability_fields_across_layouts() -> None:
    asv = comparability_fields(
        {"arch": "x86_64", "cpu": "AMD  EPYC", "machine": "box", "num_cpu": "2",
         "os": "Linux 6.1.0", "python": "3.11"}
    )  # fmt: skip
    assert asv == {
        "cpu": "amd epyc",
        "cores": "2",
        "arch": "x86_64",
        "system": "linux",
        "python": "cpython 3.11",
        "name": "box",
    }
    pypy = comparability_fields({"python": "pypy3.10"})
    assert pypy["python"] == "pypy 3.10"


def test_asv_parameter_combinations_have_their_own_names() -> None:
    results = load_asv_results(ASV_V1)
    sort_names = sorted(
        r.name for r in results if r.extra["benchmark"] == "benchmarks.TimeSuite.time_sort"
    )
    assert len(sort_names) == len(set(sort_names)) >= 4
    assert any("n=10" in n and "container='list'" in n for n in sort_names)


# --------------------------------------------------------------------------- nonsense values


def _pb_with(tmp_path: Path, index: int, **stats: Any) -> Path:
    doc = json.loads(PB_FIXTURE.read_text())
    doc["benchmarks"][index]["stats"].update(stats)
    return _write(tmp_path, "bench.json", doc)


def test_a_negative_median_names_the_file_and_the_json_path(tmp_path: Path) -> None:
    path = _pb_with(tmp_path, 2, median=-0.3)
    with pytest.raises(BenchmarkImportError) as caught:
        load_pytest_benchmark(path)
    assert str(caught.value) == f"{path}: benchmarks[2].stats.median: -0.3 is negative"
    assert caught.value.where == "benchmarks[2].stats.median"


@pytest.mark.parametrize(
    ("stats", "where", "problem"),
    [
        ({"min": -1e-7}, "stats.min", "-1e-07 is negative"),
        ({"stddev": -0.1}, "stats.stddev", "-0.1 is negative"),
        ({"ops": -5}, "stats.ops", "-5 is negative"),
        ({"total": -1}, "stats.total", "-1 is negative"),
        ({"rounds": 0}, "stats.rounds", "0 is less than 1"),
        ({"rounds": -3}, "stats.rounds", "-3 is negative"),
        ({"rounds": 2.5}, "stats.rounds", "2.5 is not a whole number"),
        ({"iterations": 0}, "stats.iterations", "0 is less than 1"),
        ({"iqr_outliers": 1.5}, "stats.iqr_outliers", "1.5 is not a whole number"),
        ({"min": 1.0}, "stats.min", "1 is greater than q1"),
        ({"max": 1e-9}, "stats.q3", "is greater than max (1e-09)"),
        ({"mean": 1.0}, "stats.mean", "1 is greater than max"),
    ],
)
def test_nonsense_stats_are_refused_naming_the_field(
    tmp_path: Path, stats: dict[str, Any], where: str, problem: str
) -> None:
    path = _pb_with(tmp_path, 1, **stats)
    with pytest.raises(BenchmarkImportError) as caught:
        load_pytest_benchmark(path)
    assert caught.value.where == f"benchmarks[1].{where}"
    assert problem in caught.value.problem
    assert str(caught.value).startswith(f"{path}: benchmarks[1].{where}: ")


def test_round_times_must_be_non_negative_and_match_the_rounds(tmp_path: Path) -> None:
    doc = json.loads(PB_FIXTURE.read_text())
    doc["benchmarks"][0]["stats"]["data"][4] = -2e-7
    doc["benchmarks"][1]["stats"]["data"].pop()
    path = _write(tmp_path, "bench.json", doc)
    problems: list[BenchmarkImportError] = []
    results = load_pytest_benchmark(path, strict=False, problems=problems)
    # The good entry is kept; each bad one is a listed skip with its reason.
    assert [r.name for r in results] == [doc["benchmarks"][2]["fullname"]]
    assert [p.where for p in problems] == [
        "benchmarks[0].stats.data[4]",
        "benchmarks[1].stats.data",
    ]
    assert problems[0].problem == "-2e-07 is negative"
    rounds = doc["benchmarks"][1]["stats"]["rounds"]
    assert problems[1].problem == f"{rounds - 1} round times for {rounds} rounds (stats.rounds)"


def test_a_blank_benchmark_name_is_refused(tmp_path: Path) -> None:
    doc = json.loads(PB_FIXTURE.read_text())
    doc["benchmarks"][1]["fullname"] = "   "
    path = _write(tmp_path, "bench.json", doc)
    with pytest.raises(BenchmarkImportError) as caught:
        load_pytest_benchmark(path)
    assert str(caught.value) == f"{path}: benchmarks[1].fullname: missing benchmark name"


def test_float_rounding_in_the_summary_is_not_a_contradiction(tmp_path: Path) -> None:
    doc = json.loads(PB_FIXTURE.read_text())
    stats = doc["benchmarks"][0]["stats"]
    # A mean one ulp above the max happens when every round took the same time.
    stats["mean"] = math.nextafter(stats["max"], math.inf)
    # A median above the max by more than rounding is a contradiction.
    doc["benchmarks"][2]["stats"]["median"] = doc["benchmarks"][2]["stats"]["max"] * 1.001
    path = _write(tmp_path, "bench.json", doc)
    problems: list[BenchmarkImportError] = []
    results = load_pytest_benchmark(path, strict=False, problems=problems)
    assert [r.name for r in results] == [b["fullname"] for b in doc["benchmarks"][:2]]
    assert [p.where for p in problems] == ["benchmarks[2].stats.median"]


def test_asv_nonsense_values_name_the_field(tmp_path: Path) -> None:
    doc = json.loads(ASV_V2.read_text())
    results = doc["results"]
    results["benchmarks.TimeSuite.time_keys"][0] = [-1.2e-05]  # a negative time
    results["benchmarks.MemSuite.mem_list"][4] = -0.2  # a negative duration
    results["benchmarks.TimeSuite.time_sort"][9][1] = 0  # stats_number: no iterations
    results["benchmarks.track_value"][0] = [-42.0]  # a tracked value may be negative
    path = _write(tmp_path, "run.json", doc)
    problems: list[BenchmarkImportError] = []
    loaded = load_asv_results(path, strict=False, problems=problems)
    assert sorted(str(p) for p in problems) == sorted(
        [
            f'{path}: results["benchmarks.TimeSuite.time_keys"].result[0]: -1.2e-05 is negative',
            f'{path}: results["benchmarks.MemSuite.mem_list"].duration: -0.2 is negative',
            f'{path}: results["benchmarks.TimeSuite.time_sort"].stats_number[1]: 0 is less than 1',
        ]
    )
    track = [r for r in loaded if r.extra["benchmark"] == "benchmarks.track_value"]
    assert [r.stats["result"] for r in track] == [-42.0]


def test_asv_contradicting_intervals_and_negative_samples(tmp_path: Path) -> None:
    doc = json.loads(ASV_V2.read_text())
    row = doc["results"]["benchmarks.TimeSuite.time_keys"]
    row[5], row[6] = [1.5e-05], [1.1e-05]  # ci_99_a above ci_99_b
    path = _write(tmp_path, "run.json", doc)
    with pytest.raises(BenchmarkImportError) as caught:
        load_asv_results(path)
    assert caught.value.where == 'results["benchmarks.TimeSuite.time_keys"].stats_ci_99_a[0]'
    assert "is greater than ci_99_b" in caught.value.problem

    row[5], row[6] = [1.1e-05], [1.4e-05]
    row[11] = [[1.2e-05, -1.0]]
    path = _write(tmp_path, "run.json", doc)
    with pytest.raises(BenchmarkImportError, match=r"samples\[0\]\[1\]: -1 is negative"):
        load_asv_results(path)


def test_asv_empty_benchmark_name(tmp_path: Path) -> None:
    doc = json.loads(ASV_V2.read_text())
    doc["results"][" "] = doc["results"]["benchmarks.track_value"]
    path = _write(tmp_path, "run.json", doc)
    with pytest.raises(BenchmarkImportError, match=r'results\[" "\]: empty benchmark name'):
        load_asv_results(path)
