"""Statistics over stored data: scans against performance, and regressions.

Pure functions over numpy arrays and plain dataclasses; no I/O. The store, the
alert engine and the gate call them.
"""

from secperf.analysis.changepoint import ChangePoint, e_divisive
from secperf.analysis.correlation import (
    CorrelationOptions,
    LeadLag,
    SeriesCorrelation,
    SeriesInput,
    benjamini_hochberg,
    correlate_all,
    correlate_series,
    lead_lag,
)
from secperf.analysis.regression import (
    RegressionStatus,
    RegressionVerdict,
    compare_benchmark,
    ms_per_kloc,
    scan_time_regression,
)
from secperf.analysis.windows import QuietWindow, ScanWindow, match_quiet_windows

__all__ = [
    "ChangePoint",
    "CorrelationOptions",
    "LeadLag",
    "QuietWindow",
    "RegressionStatus",
    "RegressionVerdict",
    "ScanWindow",
    "SeriesCorrelation",
    "SeriesInput",
    "benjamini_hochberg",
    "compare_benchmark",
    "correlate_all",
    "correlate_series",
    "e_divisive",
    "lead_lag",
    "match_quiet_windows",
    "ms_per_kloc",
    "scan_time_regression",
]
