"""Import benchmark results from pytest-benchmark and asv, and fingerprint machines.

Both tools write JSON; each benchmark becomes one ``model.BenchmarkResult``
(one per parameter combination for asv's parameterised benchmarks). Times are
kept in seconds, as both tools record them.

Bad input raises ``BenchmarkImportError`` naming the file and the JSON path of
the offending value. With ``strict=False`` a bad benchmark entry (or, for an asv
results directory, a bad file) is reported through ``problems`` and skipped;
every good entry is kept.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import math
import os
import platform
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from secperf.model import BenchmarkResult

__all__ = [
    "BenchmarkImportError",
    "comparability_fields",
    "load_asv_results",
    "load_pytest_benchmark",
    "local_machine_info",
    "machine_fingerprint",
]

log = logging.getLogger(__name__)

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

_IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class BenchmarkImportError(ValueError):
    """A benchmark file that cannot be read; names the file and the JSON path."""

    def __init__(self, file: str | os.PathLike[str], where: str, problem: str) -> None:
        self.file = str(file)
        self.where = where
        self.problem = problem
        super().__init__(f"{self.file}: {where}: {problem}" if where else f"{self.file}: {problem}")


# --------------------------------------------------------------------------- helpers


def _join(parent: str, key: str | int) -> str:
    """Extend a JSON path: ``benchmarks`` + 3 -> ``benchmarks[3]``."""
    if isinstance(key, int):
        return f"{parent}[{key}]"
    if _IDENTIFIER_RE.match(key):
        return f"{parent}.{key}" if parent else key
    return f"{parent}[{json.dumps(key)}]"


def _show(value: Any) -> str:
    """A short JSON rendering of a bad value for an error message."""
    try:
        text = json.dumps(value, allow_nan=True, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BenchmarkImportError(path, "", "no such file") from None
    except UnicodeDecodeError as exc:
        raise BenchmarkImportError(path, "", f"not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise BenchmarkImportError(path, "", f"cannot read: {exc.strerror or exc}") from None
    try:
        # asv writes NaN for skipped benchmarks; the json module accepts it.
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BenchmarkImportError(
            path, "", f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None


def _number(file: Path, where: str, value: Any, *, finite: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BenchmarkImportError(file, where, f"expected a number, got {_show(value)}")
    if finite and not math.isfinite(value):
        raise BenchmarkImportError(file, where, f"expected a finite number, got {value!r}")
    return float(value)


def _num(value: float) -> str:
    """A number as JSON wrote it: ``0``, not ``0.0``."""
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def _non_negative(file: Path, where: str, value: float) -> float:
    """Times, sizes and rates cannot be below zero."""
    if value < 0:
        raise BenchmarkImportError(file, where, f"{_num(value)} is negative")
    return value


def _count(file: Path, where: str, value: float, least: int) -> float:
    """A whole number of at least ``least`` (rounds, iterations, outliers)."""
    if value != int(value):
        raise BenchmarkImportError(file, where, f"{_num(value)} is not a whole number")
    if value < least:
        raise BenchmarkImportError(file, where, f"{_num(value)} is less than {least}")
    return value


def _ordered(
    file: Path,
    where_of: Callable[[str], str],
    stats: dict[str, float],
    pairs: tuple[tuple[str, str], ...],
) -> None:
    """Check ``stats[a] <= stats[b]`` for each pair present, allowing float rounding.

    ``where_of(a)`` gives the JSON path named in the error.
    """
    for smaller, larger in pairs:
        if smaller not in stats or larger not in stats:
            continue
        low, high = stats[smaller], stats[larger]
        # Quartiles and means are computed in floating point: allow their rounding.
        if low - high > 1e-9 * max(abs(low), abs(high)):
            raise BenchmarkImportError(
                file,
                where_of(smaller),
                f"{_num(low)} is greater than {larger} ({_num(high)}); "
                "the statistics contradict each other",
            )


def _keep(file: Path, where: str, value: float) -> float:
    """Any finite number (a ``track_`` benchmark may record negative values)."""
    return value


def _obj(file: Path, where: str, value: Any, what: str = "an object") -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BenchmarkImportError(file, where, f"expected {what}, got {_show(value)}")
    return value


def _list(file: Path, where: str, value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise BenchmarkImportError(file, where, f"expected a list, got {_show(value)}")
    return value


def _param_text(value: Any) -> str:
    """Parameter values become strings: text as is, anything else as JSON."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return repr(value)


def _iso_to_ms(file: Path, where: str, value: Any) -> int:
    if not isinstance(value, str):
        raise BenchmarkImportError(file, where, f"expected an ISO 8601 date, got {_show(value)}")
    try:
        stamp = datetime.fromisoformat(value)
    except ValueError:
        raise BenchmarkImportError(
            file, where, f"expected an ISO 8601 date, got {_show(value)}"
        ) from None
    if stamp.tzinfo is None:  # older pytest-benchmark wrote naive UTC times
        stamp = stamp.replace(tzinfo=UTC)
    return int(stamp.timestamp() * 1000)


def _record(
    problem: BenchmarkImportError, strict: bool, problems: list[BenchmarkImportError] | None
) -> None:
    if strict:
        raise problem
    log.warning("skipped benchmark entry: %s", problem)
    if problems is not None:
        problems.append(problem)


# --------------------------------------------------------------------------- machines


def _clean(value: Any) -> str:
    return " ".join(str(value).split()).lower() if value not in (None, "") else ""


def comparability_fields(machine_info: dict[str, Any]) -> dict[str, str]:
    """The machine facts that decide whether two measurements are comparable.

    Accepts pytest-benchmark's ``machine_info``, asv's machine parameters
    (``machine.json`` or a results file's ``params``) and ``local_machine_info()``.
    Returns normalised (lower-case, single-spaced) values for ``cpu`` (model or
    brand), ``cores``, ``arch``, ``system`` (kernel name only, not its release),
    ``python`` (implementation and major.minor) and ``name`` (only a name chosen
    on purpose: asv's ``machine`` or ``machine_name``; a host name is not used,
    because CI runners get a new one on every run). Missing facts are "".
    """
    cpu_block = machine_info.get("cpu")
    if isinstance(cpu_block, dict):
        # pytest-benchmark (py-cpuinfo) layout, where "machine" is the architecture.
        cpu = cpu_block.get("brand_raw") or cpu_block.get("brand") or ""
        cores = cpu_block.get("count", "")
        arch = machine_info.get("machine") or cpu_block.get("arch_string_raw") or ""
        name = machine_info.get("machine_name", "")
    else:
        # asv layout, where "machine" is the name the user chose.
        cpu = cpu_block or machine_info.get("cpu_model") or ""
        cores = machine_info.get("num_cpu") or machine_info.get("cpu_count") or ""
        arch = machine_info.get("arch") or ""
        name = machine_info.get("machine_name") or machine_info.get("machine") or ""
    system = machine_info.get("system") or ""
    if not system and isinstance(machine_info.get("os"), str):
        system = machine_info["os"].split(" ", 1)[0]  # asv: "Linux 6.1.0-18-amd64"
    implementation = machine_info.get("python_implementation") or ""
    python = str(machine_info.get("python_version") or machine_info.get("python") or "")
    if python.lower().startswith("pypy"):
        implementation, python = "PyPy", python[4:]
    match = re.match(r"\s*(\d+)\.(\d+)", python)
    version = f"{match.group(1)}.{match.group(2)}" if match else python
    if version and not implementation:
        implementation = "CPython"  # asv records only the version of CPython
    return {
        "cpu": _clean(cpu),
        "cores": _clean(cores),
        "arch": _clean(arch),
        "system": _clean(system),
        "python": _clean(f"{implementation} {version}".strip()),
        "name": _clean(name),
    }


def machine_fingerprint(machine_info: dict[str, Any]) -> str:
    """A short stable hash (16 hex digits) of ``comparability_fields(machine_info)``.

    Two results compare fairly when their fingerprints are equal: same CPU model,
    core count, architecture, operating system, Python implementation and
    major.minor version, and the same chosen machine name when one is given.
    Memory size, kernel release and host name are left out on purpose: they
    change without changing the figures much, and would split the history.
    """
    fields = comparability_fields(machine_info)
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def _proc_cpuinfo_model() -> str:
    try:
        with Path("/proc/cpuinfo").open(encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "Hardware"):
                    return value.strip()
    except OSError:
        pass
    return ""


def _memory_bytes() -> int | None:
    try:
        return int(psutil.virtual_memory().total)
    except (OSError, psutil.Error):  # memory size is informative only
        return None


def local_machine_info(name: str | None = None) -> dict[str, Any]:
    """This machine's facts, in a layout ``machine_fingerprint`` understands.

    ``name`` is an optional chosen machine name (as asv's); it becomes part of
    the fingerprint.
    """
    info: dict[str, Any] = {
        "node": platform.node(),
        "system": platform.system(),
        "release": platform.release(),
        "arch": platform.machine(),
        "python_implementation": platform.python_implementation(),
        "python_version": platform.python_version(),
        "cpu_model": _proc_cpuinfo_model() or platform.processor(),
        "cpu_count": os.cpu_count() or 0,
        "memory_bytes": _memory_bytes(),
    }
    if name:
        info["machine_name"] = name
    return info


# --------------------------------------------------------------------------- pytest-benchmark


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
    doc = _obj(file, "", _read_json(file), "a JSON object (pytest-benchmark document)")
    if "benchmarks" not in doc:
        raise BenchmarkImportError(file, "benchmarks", "missing (not a pytest-benchmark file?)")
    entries = _list(file, "benchmarks", doc["benchmarks"])
    machine_info = _obj(file, "machine_info", doc.get("machine_info") or {})
    commit_info = _obj(file, "commit_info", doc.get("commit_info") or {})
    if "datetime" not in doc:
        raise BenchmarkImportError(file, "datetime", "missing")
    timestamp_ms = _iso_to_ms(file, "datetime", doc["datetime"])
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
                    file, _join("benchmarks", index), entry, timestamp_ms, machine, commit,
                    machine_info, common_extra,
                )
            )  # fmt: skip
        except BenchmarkImportError as problem:
            _record(problem, strict, problems)
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
    entry = _obj(file, where, entry)
    name = entry.get("fullname") or entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise BenchmarkImportError(file, _join(where, "fullname"), "missing benchmark name")
    if "stats" not in entry:
        raise BenchmarkImportError(file, _join(where, "stats"), "missing")
    stats_where = _join(where, "stats")
    raw_stats = _obj(file, stats_where, entry["stats"])
    stats: dict[str, float] = {}
    for key in PYTEST_BENCHMARK_STATS:
        key_where = _join(stats_where, key)
        if key in raw_stats:
            value = _non_negative(file, key_where, _number(file, key_where, raw_stats[key]))
            if key in _PYTEST_BENCHMARK_COUNTS:
                value = _count(file, key_where, value, _PYTEST_BENCHMARK_COUNTS[key])
            stats[key] = value
        elif key in _PYTEST_BENCHMARK_REQUIRED:
            raise BenchmarkImportError(file, key_where, "missing")
    _ordered(file, lambda key: _join(stats_where, key), stats, _PYTEST_BENCHMARK_ORDER)
    data: tuple[float, ...] = ()
    if raw_stats.get("data") is not None:
        data_where = _join(stats_where, "data")
        rounds = _list(file, data_where, raw_stats["data"])
        data = tuple(
            _non_negative(file, _join(data_where, i), _number(file, _join(data_where, i), v))
            for i, v in enumerate(rounds)
        )
        if len(data) != stats["rounds"]:
            raise BenchmarkImportError(
                file,
                data_where,
                f"{len(data)} round times for {_num(stats['rounds'])} rounds (stats.rounds)",
            )
    raw_params = entry.get("params") or {}
    params = {
        str(k): _param_text(v) for k, v in _obj(file, _join(where, "params"), raw_params).items()
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


# --------------------------------------------------------------------------- asv


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
            _record(problem, strict, problems)
    return results


def _asv_result_files(root: Path) -> Iterator[Path]:
    for dirpath, _dirnames, filenames in os.walk(root):
        for filename in filenames:
            if filename.endswith(".json") and filename not in _ASV_NON_RESULT_FILES:
                yield Path(dirpath) / filename


def _load_machine_json(path: Path) -> dict[str, Any]:
    doc = _obj(path, "", _read_json(path), "a JSON object (asv machine.json)")
    return {k: v for k, v in doc.items() if k != "version"}


def _find_benchmarks_json(file: Path, root: Path) -> dict[str, dict[str, Any]]:
    """asv's benchmark catalogue: in the results directory, above the machine directory."""
    for candidate in (file.parent.parent / "benchmarks.json", file.parent / "benchmarks.json"):
        if candidate.is_file():
            try:
                doc = _read_json(candidate)
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
    doc = _obj(file, "", _read_json(file), "a JSON object (asv results file)")
    if "results" not in doc:
        raise BenchmarkImportError(file, "results", "missing (not an asv results file?)")
    entries = _obj(file, "results", doc["results"])
    run_params = _obj(file, "params", doc.get("params") or {})
    machine_info: dict[str, Any] = dict(machine_extra)
    machine_info.update(run_params)  # what was in effect for the run wins
    if "python" not in machine_info and isinstance(doc.get("python"), str):
        machine_info["python"] = doc["python"]
    machine = machine_fingerprint(machine_info)

    commit = doc.get("commit_hash")
    if commit is not None and not isinstance(commit, str):
        raise BenchmarkImportError(file, "commit_hash", f"expected a string, got {_show(commit)}")
    date = doc.get("date")
    commit_date_ms = (
        int(_non_negative(file, "date", _number(file, "date", date))) if date is not None else None
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
        columns = _list(file, "result_columns", doc.get("result_columns"))
        if not all(isinstance(c, str) for c in columns):
            raise BenchmarkImportError(file, "result_columns", "expected a list of column names")
        old_started = old_duration = old_version = {}
    else:
        columns = []
        old_started = _obj(file, "started_at", doc.get("started_at") or {})
        old_duration = _obj(file, "duration", doc.get("duration") or {})
        old_version = _obj(file, "benchmark_version", doc.get("benchmark_version") or {})

    results: list[BenchmarkResult] = []
    for name, row in entries.items():
        where = _join("results", name)
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
            _record(problem, strict, problems)
    return results


def _asv_row_v2(file: Path, where: str, columns: list[str], row: Any) -> dict[str, Any]:
    values = _list(file, where, row)
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
            item = _obj(file, _join(_join(where, "stats"), index), item)
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
    params_where = _join(where, "params")
    param_lists = _list(file, params_where, fields.get("params") or [])
    for index, values in enumerate(param_lists):
        _list(file, _join(params_where, index), values)
    combos = list(itertools.product(*param_lists))
    param_names = info.get("param_names")
    if not isinstance(param_names, list) or len(param_names) != len(param_lists):
        param_names = [f"param{i + 1}" for i in range(len(param_lists))]

    def per_combo(key: str, value: Any) -> list[Any]:
        """A (param-list) column: null means missing for every combination."""
        if value is None:
            return [None] * len(combos)
        items = _list(file, _join(where, key), value)
        if len(items) != len(combos):
            raise BenchmarkImportError(
                file,
                _join(where, key),
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
        started_where = _join(where, "started_at")
        timestamp_ms = int(
            _non_negative(file, started_where, _number(file, started_where, started))
        )
    elif commit_date_ms is not None:
        timestamp_ms = commit_date_ms  # old files lack run times; the commit date is the best
    else:
        raise BenchmarkImportError(file, _join(where, "started_at"), "missing, and no date")

    duration = fields.get("duration")
    if duration is not None:
        duration_where = _join(where, "duration")
        duration = _non_negative(file, duration_where, _number(file, duration_where, duration))

    kind = _asv_type(name, info)
    # Times and sizes cannot be negative; a track_ benchmark may record anything.
    measured = _non_negative if kind in _ASV_NON_NEGATIVE_TYPES else _keep
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
        value_where = _join(_join(where, "result"), index)
        value = result_values[index]
        stats: dict[str, float] = {}
        data: tuple[float, ...] = ()
        if value is None:
            status = "failed"
        elif isinstance(value, float) and math.isnan(value):
            status = "skipped"
        else:
            status = "ok"
            stats["result"] = measured(file, value_where, _number(file, value_where, value))
            if kind == "time":
                # asv reports a timing benchmark as the median of its samples.
                stats["median"] = stats["result"]
            for key, column in stat_columns.items():
                if column[index] is not None:
                    stat_where = _join(_join(where, f"stats_{key}"), index)
                    stats[key] = _number(file, stat_where, column[index])
                    if key in _ASV_COUNT_STATS:
                        stats[key] = _count(file, stat_where, stats[key], 1)

            def stat_at(key: str, i: int = index) -> str:
                return _join(_join(where, f"stats_{key}"), i)

            _ordered(file, stat_at, stats, _ASV_STATS_ORDER)
            samples = sample_lists[index]
            if samples is not None:
                sample_where = _join(_join(where, "samples"), index)
                items = _list(file, sample_where, samples)
                data = tuple(
                    measured(file, _join(sample_where, i), _number(file, _join(sample_where, i), v))
                    for i, v in enumerate(items)
                )
                stats["rounds"] = float(len(data))
        params = {str(n): _param_text(v) for n, v in zip(param_names, combo, strict=True)}
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
