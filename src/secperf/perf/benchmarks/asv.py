"""Import asv results: one results file, a machine directory or a results directory."""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from secperf.model import BenchmarkResult
from secperf.perf.benchmarks.machine import machine_fingerprint
from secperf.perf.benchmarks.validation import (
    BenchmarkImportError,
    as_list,
    count,
    join,
    keep,
    log,
    non_negative,
    number,
    obj,
    ordered,
    param_text,
    read_json,
    record,
    show,
)

#: asv benchmark types whose values are times or sizes, so never negative.
_ASV_NON_NEGATIVE_TYPES = frozenset({"time", "memory", "peakmemory"})
#: asv statistics columns that are counts (at least 1), and ordered pairs.
_ASV_COUNT_STATS = ("number", "repeat")
_ASV_STATS_ORDER = (("ci_99_a", "ci_99_b"), ("q_25", "q_75"))

#: The column layout asv (results format version 2) writes.
ASV_RESULT_COLUMNS = (
    "result",
    "params",
    "version",
    "started_at",
    "duration",
    "stats_ci_99_a",
    "stats_ci_99_b",
    "stats_q_25",
    "stats_q_75",
    "stats_number",
    "stats_repeat",
    "samples",
    "profile",
)
#: asv's benchmark types by name prefix (the names asv's benchmarks.json uses).
_ASV_PREFIX_TYPES = {"time": "time", "peakmem": "peakmemory", "mem": "memory", "track": "track"}
_ASV_DEFAULT_UNITS = {"time": "seconds", "peakmemory": "bytes", "memory": "bytes"}
_ASV_NON_RESULT_FILES = frozenset({"machine.json", "benchmarks.json"})


def load_asv_results(
    path: str | os.PathLike[str],
    machine_json: str | os.PathLike[str] | None = None,
    *,
    strict: bool = True,
    problems: list[BenchmarkImportError] | None = None,
) -> list[BenchmarkResult]:
    """Read asv results: one results JSON file, a machine directory or a results directory.

    Both layouts are read: version 2 (``result_columns``) and the older one where
    ``results`` maps a name to a number, null, NaN or ``{"result": ..., "params":
    ...}``. Parameterised benchmarks give one result per parameter combination
    (asv's cartesian-product order) with ``params`` set. A null result is kept as
    status "failed", NaN as "skipped" (asv's meaning of the two). The benchmark
    type and unit come from ``benchmarks.json`` when found beside the results, or
    from the name's prefix (``time_``, ``mem_``, ``peakmem_``, ``track_``); time
    benchmarks are in seconds and also get ``stats["median"]`` (asv's result).

    ``machine_json`` fills machine facts the results file lacks; in a directory,
    each machine directory's own ``machine.json`` is used. With ``strict=False``
    a bad file or entry is appended to ``problems`` and the rest is kept.
    """
    root = Path(path)
    explicit_machine = _load_machine_json(Path(machine_json)) if machine_json else None
    if root.is_dir():
        files = sorted(_asv_result_files(root))
        if not files:
            raise BenchmarkImportError(root, "", "no asv results files found")
    elif root.exists():
        files = [root]
    else:
        raise BenchmarkImportError(root, "", "no such file or directory")

    results: list[BenchmarkResult] = []
    for file in files:
        machine_extra = explicit_machine
        if machine_extra is None and (file.parent / "machine.json").is_file():
            machine_extra = _load_machine_json(file.parent / "machine.json")
        catalogue = _find_benchmarks_json(file, root)
        try:
            results.extend(_asv_file(file, machine_extra or {}, catalogue, strict, problems))
        except BenchmarkImportError as problem:
            # A file-level problem: fatal for a single file, reported in a directory.
            if strict or not root.is_dir():
                raise
            record(problem, strict, problems)
    return results


def _asv_result_files(root: Path) -> Iterator[Path]:
    for dirpath, _dirnames, filenames in os.walk(root):
        for filename in filenames:
            if filename.endswith(".json") and filename not in _ASV_NON_RESULT_FILES:
                yield Path(dirpath) / filename


def _load_machine_json(path: Path) -> dict[str, Any]:
    doc = obj(path, "", read_json(path), "a JSON object (asv machine.json)")
    return {k: v for k, v in doc.items() if k != "version"}


def _find_benchmarks_json(file: Path, root: Path) -> dict[str, dict[str, Any]]:
    """asv's benchmark catalogue: in the results directory, above the machine directory."""
    for candidate in (file.parent.parent / "benchmarks.json", file.parent / "benchmarks.json"):
        if candidate.is_file():
            try:
                doc = read_json(candidate)
            except BenchmarkImportError as exc:
                log.warning("ignoring asv catalogue: %s", exc)
                return {}
            if isinstance(doc, dict):
                return {k: v for k, v in doc.items() if isinstance(v, dict)}
    return {}


def _asv_file(
    file: Path,
    machine_extra: dict[str, Any],
    catalogue: dict[str, dict[str, Any]],
    strict: bool,
    problems: list[BenchmarkImportError] | None,
) -> list[BenchmarkResult]:
    doc = obj(file, "", read_json(file), "a JSON object (asv results file)")
    if "results" not in doc:
        raise BenchmarkImportError(file, "results", "missing (not an asv results file?)")
    entries = obj(file, "results", doc["results"])
    run_params = obj(file, "params", doc.get("params") or {})
    machine_info: dict[str, Any] = dict(machine_extra)
    machine_info.update(run_params)  # what was in effect for the run wins
    if "python" not in machine_info and isinstance(doc.get("python"), str):
        machine_info["python"] = doc["python"]
    machine = machine_fingerprint(machine_info)

    commit = doc.get("commit_hash")
    if commit is not None and not isinstance(commit, str):
        raise BenchmarkImportError(file, "commit_hash", f"expected a string, got {show(commit)}")
    date = doc.get("date")
    commit_date_ms = (
        int(non_negative(file, "date", number(file, "date", date))) if date is not None else None
    )
    common = {
        "env_name": doc.get("env_name"),
        "python": doc.get("python"),
        "requirements": doc.get("requirements") or {},
        "commit_date_ms": commit_date_ms,
    }

    version = doc.get("version")
    new_layout = "result_columns" in doc or version == 2
    if new_layout:
        columns = as_list(file, "result_columns", doc.get("result_columns"))
        if not all(isinstance(c, str) for c in columns):
            raise BenchmarkImportError(file, "result_columns", "expected a list of column names")
        old_started = old_duration = old_version = {}
    else:
        columns = []
        old_started = obj(file, "started_at", doc.get("started_at") or {})
        old_duration = obj(file, "duration", doc.get("duration") or {})
        old_version = obj(file, "benchmark_version", doc.get("benchmark_version") or {})

    results: list[BenchmarkResult] = []
    for name, row in entries.items():
        where = join("results", name)
        try:
            if not name.strip():
                raise BenchmarkImportError(file, where, "empty benchmark name")
            if new_layout:
                fields = _asv_row_v2(file, where, columns, row)
            else:
                fields = _asv_row_v1(file, where, row)
                fields.setdefault("started_at", old_started.get(name))
                fields.setdefault("duration", old_duration.get(name))
                fields.setdefault("version", old_version.get(name))
            results.extend(
                _asv_expand(
                    file, where, name, fields, catalogue.get(name, {}), commit, commit_date_ms,
                    machine, machine_info, common,
                )
            )  # fmt: skip
        except BenchmarkImportError as problem:
            record(problem, strict, problems)
    return results


def _asv_row_v2(file: Path, where: str, columns: list[str], row: Any) -> dict[str, Any]:
    values = as_list(file, where, row)
    if len(values) > len(columns):
        raise BenchmarkImportError(
            file, where, f"{len(values)} values for {len(columns)} result_columns"
        )
    fields: dict[str, Any] = dict(zip(columns, values, strict=False))
    stats: dict[str, Any] = {}
    for column in list(fields):
        if column.startswith("stats_"):
            stats[column[6:]] = fields.pop(column)
    fields["stats_columns"] = stats
    return fields


def _asv_row_v1(file: Path, where: str, row: Any) -> dict[str, Any]:
    """Older layout: a bare number / null / NaN, or a dict with result, params, stats."""
    if not isinstance(row, dict):
        row = {"result": [row], "params": [], "stats": None, "samples": None}
    result = row.get("result")
    if result is not None and not isinstance(result, list):
        result = [result]
    stats = row.get("stats")
    if stats is not None and not isinstance(stats, list):
        stats = [stats]
    samples = row.get("samples")
    # Turn a per-combination list of stats dicts into asv's per-statistic columns.
    columns: dict[str, list[Any]] = {}
    if stats is not None:
        for index, item in enumerate(stats):
            if item is None:
                continue
            item = obj(file, join(join(where, "stats"), index), item)
            flat = dict(item)
            ci = flat.pop("ci_99", None)
            if isinstance(ci, list) and len(ci) == 2:
                flat["ci_99_a"], flat["ci_99_b"] = ci
            for key, value in flat.items():
                columns.setdefault(key, [None] * len(stats))[index] = value
    return {
        "result": result,
        "params": row.get("params") or [],
        "samples": samples,
        "stats_columns": columns,
    }


def _asv_type(name: str, info: dict[str, Any]) -> str | None:
    kind = info.get("type")
    if isinstance(kind, str):
        return kind
    leaf = name.rsplit(".", 1)[-1]
    for prefix, kind_name in _ASV_PREFIX_TYPES.items():
        if leaf.startswith(prefix + "_"):
            return kind_name
    return None


def _asv_expand(
    file: Path,
    where: str,
    name: str,
    fields: dict[str, Any],
    info: dict[str, Any],
    commit: str | None,
    commit_date_ms: int | None,
    machine: str,
    machine_info: dict[str, Any],
    common: dict[str, Any],
) -> list[BenchmarkResult]:
    params_where = join(where, "params")
    param_lists = as_list(file, params_where, fields.get("params") or [])
    for index, values in enumerate(param_lists):
        as_list(file, join(params_where, index), values)
    combos = list(itertools.product(*param_lists))
    param_names = info.get("param_names")
    if not isinstance(param_names, list) or len(param_names) != len(param_lists):
        param_names = [f"param{i + 1}" for i in range(len(param_lists))]

    def per_combo(key: str, value: Any) -> list[Any]:
        """A (param-list) column: null means missing for every combination."""
        if value is None:
            return [None] * len(combos)
        items = as_list(file, join(where, key), value)
        if len(items) != len(combos):
            raise BenchmarkImportError(
                file,
                join(where, key),
                f"expected {len(combos)} values (one per parameter combination), got {len(items)}",
            )
        return items

    result_values = per_combo("result", fields.get("result"))
    sample_lists = per_combo("samples", fields.get("samples"))
    stat_columns = {
        key: per_combo(f"stats_{key}", value)
        for key, value in (fields.get("stats_columns") or {}).items()
    }
    started = fields.get("started_at")
    if started is not None:
        started_where = join(where, "started_at")
        timestamp_ms = int(non_negative(file, started_where, number(file, started_where, started)))
    elif commit_date_ms is not None:
        timestamp_ms = commit_date_ms  # old files lack run times; the commit date is the best
    else:
        raise BenchmarkImportError(file, join(where, "started_at"), "missing, and no date")

    duration = fields.get("duration")
    if duration is not None:
        duration_where = join(where, "duration")
        duration = non_negative(file, duration_where, number(file, duration_where, duration))

    kind = _asv_type(name, info)
    # Times and sizes cannot be negative; a track_ benchmark may record anything.
    measured = non_negative if kind in _ASV_NON_NEGATIVE_TYPES else keep
    unit = info.get("unit") or (_ASV_DEFAULT_UNITS.get(kind) if kind else None)
    base_extra = dict(common)
    base_extra.update(
        {
            "type": kind,
            "unit": unit,
            "benchmark_version": fields.get("version"),
            "duration_s": duration,
            "param_names": list(param_names),
            "benchmark": name,
        }
    )

    out: list[BenchmarkResult] = []
    for index, combo in enumerate(combos):
        value_where = join(join(where, "result"), index)
        value = result_values[index]
        stats: dict[str, float] = {}
        data: tuple[float, ...] = ()
        if value is None:
            status = "failed"
        elif isinstance(value, float) and math.isnan(value):
            status = "skipped"
        else:
            status = "ok"
            stats["result"] = measured(file, value_where, number(file, value_where, value))
            if kind == "time":
                # asv reports a timing benchmark as the median of its samples.
                stats["median"] = stats["result"]
            for key, column in stat_columns.items():
                if column[index] is not None:
                    stat_where = join(join(where, f"stats_{key}"), index)
                    stats[key] = number(file, stat_where, column[index])
                    if key in _ASV_COUNT_STATS:
                        stats[key] = count(file, stat_where, stats[key], 1)

            def stat_at(key: str, i: int = index) -> str:
                return join(join(where, f"stats_{key}"), i)

            ordered(file, stat_at, stats, _ASV_STATS_ORDER)
            samples = sample_lists[index]
            if samples is not None:
                sample_where = join(join(where, "samples"), index)
                items = as_list(file, sample_where, samples)
                data = tuple(
                    measured(file, join(sample_where, i), number(file, join(sample_where, i), v))
                    for i, v in enumerate(items)
                )
                stats["rounds"] = float(len(data))
        params = {str(n): param_text(v) for n, v in zip(param_names, combo, strict=True)}
        # One name per parameter combination, as pytest-benchmark names test_x[10]:
        # history, comparisons and the store's identity all go by name.
        shown = f"{name}({', '.join(f'{k}={v}' for k, v in params.items())})" if params else name
        out.append(
            BenchmarkResult(
                name=shown,
                source="asv",
                timestamp_ms=timestamp_ms,
                machine=machine,
                commit=commit,
                status=status,
                stats=stats,
                data=data,
                params=params,
                machine_info=machine_info,
                extra=dict(base_extra),
            )
        )
    return out
