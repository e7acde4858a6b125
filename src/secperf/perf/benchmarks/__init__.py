"""Import benchmark results from pytest-benchmark and asv, and fingerprint machines.

Both tools write JSON; each benchmark becomes one ``model.BenchmarkResult``
(one per parameter combination for asv's parameterised benchmarks). Times are
kept in seconds, as both tools record them.

Bad input raises ``BenchmarkImportError`` naming the file and the JSON path of
the offending value. With ``strict=False`` a bad benchmark entry (or, for an asv
results directory, a bad file) is reported through ``problems`` and skipped;
every good entry is kept.

One module per idea: ``pytest_benchmark.py`` and ``asv.py`` (the two imports),
``machine.py`` (machine facts and fingerprints), ``validation.py`` (the error and
the JSON checks both imports share).
"""

from secperf.perf.benchmarks.asv import ASV_RESULT_COLUMNS, load_asv_results
from secperf.perf.benchmarks.machine import (
    comparability_fields,
    local_machine_info,
    machine_fingerprint,
)
from secperf.perf.benchmarks.pytest_benchmark import PYTEST_BENCHMARK_STATS, load_pytest_benchmark
from secperf.perf.benchmarks.validation import BenchmarkImportError

__all__ = [
    "ASV_RESULT_COLUMNS",
    "PYTEST_BENCHMARK_STATS",
    "BenchmarkImportError",
    "comparability_fields",
    "load_asv_results",
    "load_pytest_benchmark",
    "local_machine_info",
    "machine_fingerprint",
]
