"""Import pytest-benchmark results (``--benchmark-json`` files, saved ``.benchmarks`` runs)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from secperf.model import BenchmarkResult
from secperf.perf.benchmarks.machine import machine_fingerprint
from secperf.perf.benchmarks.validation import (
    BenchmarkImportError,
    as_list,
    count,
    iso_to_ms,
    join,
    non_negative,
    num,
    number,
    obj,
    ordered,
    param_text,
    read_json,
    record,
)

#: pytest-benchmark's numeric summary statistics, all kept in ``stats``.
PYTEST_BENCHMARK_STATS = (
    "min",
    "max",
    "mean",
    "stddev",
    "rounds",
    "median",
    "iqr",
    "q1",
    "q3",
    "iqr_outliers",
    "stddev_outliers",
    "ld15iqr",
    "hd15iqr",
    "ops",
    "total",
    "iterations",
)
#: Without these a pytest-benchmark entry cannot be compared at all.
_PYTEST_BENCHMARK_REQUIRED = ("min", "max", "mean", "median", "stddev", "rounds")
#: Counts, with the least value each can take: a benchmark ran at least one
#: round of at least one iteration.
_PYTEST_BENCHMARK_COUNTS = {"rounds": 1, "iterations": 1, "iqr_outliers": 0, "stddev_outliers": 0}
#: Pairs (smaller, larger) that hold in any summary computed from real rounds.
_PYTEST_BENCHMARK_ORDER = (
    ("min", "q1"),
    ("q1", "median"),
    ("median", "q3"),
    ("q3", "max"),
    ("min", "mean"),
    ("mean", "max"),
    ("min", "ld15iqr"),
    ("ld15iqr", "hd15iqr"),
    ("hd15iqr", "max"),
)


def load_pytest_benchmark(
    path: str | os.PathLike[str],
    *,
    strict: bool = True,
    problems: list[BenchmarkImportError] | None = None,
) -> list[BenchmarkResult]:
    """Read a ``--benchmark-json`` file (or a saved ``.benchmarks`` run).

    ``name`` is the test's full node id (unique across files); stats keep every
    numeric field, per-round ``data`` (``--benchmark-save-data``) becomes ``data``.
    A file that is not JSON or not a pytest-benchmark document always raises;
    with ``strict=False`` a bad benchmark entry is appended to ``problems``
    (and logged) and the others are kept.
    """
    file = Path(path)
    doc = obj(file, "", read_json(file), "a JSON object (pytest-benchmark document)")
    if "benchmarks" not in doc:
        raise BenchmarkImportError(file, "benchmarks", "missing (not a pytest-benchmark file?)")
    entries = as_list(file, "benchmarks", doc["benchmarks"])
    machine_info = obj(file, "machine_info", doc.get("machine_info") or {})
    commit_info = obj(file, "commit_info", doc.get("commit_info") or {})
    if "datetime" not in doc:
        raise BenchmarkImportError(file, "datetime", "missing")
    timestamp_ms = iso_to_ms(file, "datetime", doc["datetime"])
    machine = machine_fingerprint(machine_info)

    commit_id = commit_info.get("id")
    commit = commit_id if isinstance(commit_id, str) and commit_id not in ("", "unknown") else None
    common_extra: dict[str, Any] = {
        "commit_dirty": bool(commit_info.get("dirty", False)),
        "branch": commit_info.get("branch"),
        "commit_time": commit_info.get("time"),
        "project": commit_info.get("project"),
        "tool_version": doc.get("version"),
    }
    if commit_info.get("error"):
        common_extra["commit_error"] = commit_info["error"]

    results: list[BenchmarkResult] = []
    for index, entry in enumerate(entries):
        try:
            results.append(
                _pytest_benchmark_entry(
                    file, join("benchmarks", index), entry, timestamp_ms, machine, commit,
                    machine_info, common_extra,
                )
            )  # fmt: skip
        except BenchmarkImportError as problem:
            record(problem, strict, problems)
    return results


def _pytest_benchmark_entry(
    file: Path,
    where: str,
    entry: Any,
    timestamp_ms: int,
    machine: str,
    commit: str | None,
    machine_info: dict[str, Any],
    common_extra: dict[str, Any],
) -> BenchmarkResult:
    entry = obj(file, where, entry)
    name = entry.get("fullname") or entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise BenchmarkImportError(file, join(where, "fullname"), "missing benchmark name")
    if "stats" not in entry:
        raise BenchmarkImportError(file, join(where, "stats"), "missing")
    stats_where = join(where, "stats")
    raw_stats = obj(file, stats_where, entry["stats"])
    stats: dict[str, float] = {}
    for key in PYTEST_BENCHMARK_STATS:
        key_where = join(stats_where, key)
        if key in raw_stats:
            value = non_negative(file, key_where, number(file, key_where, raw_stats[key]))
            if key in _PYTEST_BENCHMARK_COUNTS:
                value = count(file, key_where, value, _PYTEST_BENCHMARK_COUNTS[key])
            stats[key] = value
        elif key in _PYTEST_BENCHMARK_REQUIRED:
            raise BenchmarkImportError(file, key_where, "missing")
    ordered(file, lambda key: join(stats_where, key), stats, _PYTEST_BENCHMARK_ORDER)
    data: tuple[float, ...] = ()
    if raw_stats.get("data") is not None:
        data_where = join(stats_where, "data")
        rounds = as_list(file, data_where, raw_stats["data"])
        data = tuple(
            non_negative(file, join(data_where, i), number(file, join(data_where, i), v))
            for i, v in enumerate(rounds)
        )
        if len(data) != stats["rounds"]:
            raise BenchmarkImportError(
                file,
                data_where,
                f"{len(data)} round times for {num(stats['rounds'])} rounds (stats.rounds)",
            )
    raw_params = entry.get("params") or {}
    params = {
        str(k): param_text(v) for k, v in obj(file, join(where, "params"), raw_params).items()
    }
    extra = dict(common_extra)
    extra.update(
        {
            "short_name": entry.get("name"),
            "group": entry.get("group"),
            "param": entry.get("param"),
            "extra_info": entry.get("extra_info") or {},
            "options": entry.get("options") or {},
            "outliers": raw_stats.get("outliers"),
            "unit": "seconds",
        }
    )
    return BenchmarkResult(
        name=name,
        source="pytest-benchmark",
        timestamp_ms=timestamp_ms,
        machine=machine,
        commit=commit,
        status="ok",
        stats=stats,
        data=data,
        params=params,
        machine_info=machine_info,
        extra=extra,
    )
