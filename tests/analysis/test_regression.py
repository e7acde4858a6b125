"""Benchmark and scan-time regression verdicts on synthetic timings."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from secperf.analysis.regression import (
    RegressionStatus,
    compare_benchmark,
    ms_per_kloc,
    scan_time_regression,
)
from secperf.model import BenchmarkResult

BASE_S = 0.010  # a 10 ms benchmark


def _rounds(seed: int, scale: float, n: int = 30, noise: float = 0.02) -> tuple[float, ...]:
    rng = np.random.default_rng(seed)
    return tuple(float(v) for v in rng.lognormal(np.log(BASE_S * scale), noise, n))


def _run(
    data: tuple[float, ...] = (),
    *,
    ts: int = 0,
    machine: str = "m1",
    median: float | None = None,
    status: str = "ok",
    commit: str | None = None,
    name: str = "bench_parse",
) -> BenchmarkResult:
    stats = (
        {"median": median if median is not None else float(np.median(data))}
        if (data or median is not None)
        else {}
    )
    return BenchmarkResult(
        name=name,
        source="pytest-benchmark",
        timestamp_ms=ts,
        machine=machine,
        commit=commit,
        status=status,
        stats=stats,
        data=data,
    )


def _history(seed: int, n: int, scale: float = 1.0, noise: float = 0.02) -> list[BenchmarkResult]:
    rng = np.random.default_rng(seed)
    medians = rng.lognormal(np.log(BASE_S * scale), noise, n)
    return [_run(median=float(m), ts=i, commit=f"c{i}") for i, m in enumerate(medians)]


# --------------------------------------------------------------------------- Mann-Whitney path


def test_mann_whitney_detects_a_ten_percent_slowdown() -> None:
    verdict = compare_benchmark(_run(_rounds(2, 1.10), ts=2), [_run(_rounds(1, 1.0), ts=1)])
    assert verdict.status is RegressionStatus.REGRESSION
    assert verdict.blocks
    assert verdict.method == "mann-whitney-u"
    assert verdict.p_value is not None and verdict.p_value < 1e-6
    assert verdict.effect_pct == pytest.approx(10, abs=2.5)
    assert verdict.n_current == verdict.n_baseline == 30
    assert verdict.baseline_median == pytest.approx(BASE_S, rel=0.02)


def test_mann_whitney_ignores_a_one_percent_slowdown() -> None:
    verdict = compare_benchmark(
        _run(_rounds(2, 1.01, noise=0.005), ts=2), [_run(_rounds(1, 1.0, noise=0.005), ts=1)]
    )
    # 1 % is measurable with this little noise, but below the 5 % minimum effect.
    assert verdict.status is RegressionStatus.NO_CHANGE
    assert verdict.effect_pct == pytest.approx(1, abs=0.5)
    assert "5%" in verdict.reason


def test_mann_whitney_reports_an_improvement() -> None:
    verdict = compare_benchmark(_run(_rounds(2, 0.8), ts=2), [_run(_rounds(1, 1.0), ts=1)])
    assert verdict.status is RegressionStatus.IMPROVEMENT
    assert verdict.effect_pct is not None and verdict.effect_pct < -15


def test_mann_whitney_a_a_rarely_flags() -> None:
    flagged = sum(
        compare_benchmark(_run(_rounds(1000 + s, 1.0), ts=2), [_run(_rounds(s, 1.0), ts=1)]).status
        is not RegressionStatus.NO_CHANGE
        for s in range(100)
    )
    assert flagged <= 2


def test_compares_with_the_latest_run_on_the_same_machine() -> None:
    old_slow = _run(_rounds(1, 1.3), ts=1, commit="old")
    latest = _run(_rounds(2, 1.0), ts=5, commit="latest")
    other = _run(_rounds(3, 2.0), ts=9, machine="m2")
    verdict = compare_benchmark(_run(_rounds(4, 1.0), ts=10), [latest, other, old_slow])
    assert verdict.status is RegressionStatus.NO_CHANGE
    assert verdict.baseline_commit == "latest"


# --------------------------------------------------------------------------- history path


def test_history_path_detects_a_slowdown_without_rounds() -> None:
    verdict = compare_benchmark(_run(median=BASE_S * 1.10, ts=100), _history(1, 20))
    assert verdict.status is RegressionStatus.REGRESSION
    assert verdict.method == "history-prediction-t"
    assert verdict.n_baseline == 20
    assert verdict.effect_pct == pytest.approx(10, abs=2)
    assert verdict.new_regime is True


def test_history_path_no_change_for_a_typical_value() -> None:
    verdict = compare_benchmark(_run(median=BASE_S * 1.005, ts=100), _history(1, 20))
    assert verdict.status is RegressionStatus.NO_CHANGE
    assert verdict.new_regime is False


def test_history_path_uses_only_the_runs_since_the_last_change_point() -> None:
    # The benchmark got 20 % slower 15 runs ago and stayed there: accepted history.
    history = _history(1, 15, scale=1.0) + [
        _run(median=r.stats["median"], ts=100 + i) for i, r in enumerate(_history(2, 15, 1.2))
    ]
    verdict = compare_benchmark(_run(median=BASE_S * 1.2, ts=1000), history)
    assert verdict.status is RegressionStatus.NO_CHANGE
    assert verdict.n_baseline == 15
    assert verdict.baseline_median == pytest.approx(BASE_S * 1.2, rel=0.02)
    assert "since the change at run 15" in verdict.reason


def test_history_path_when_rounds_are_too_few() -> None:
    history = [_run(_rounds(s, 1.0, n=3), ts=s) for s in range(10)]
    verdict = compare_benchmark(_run(_rounds(99, 1.15, n=3), ts=100), history)
    assert verdict.method == "history-prediction-t"
    assert verdict.status is RegressionStatus.REGRESSION


def test_scan_time_regression_per_kloc() -> None:
    history = [ms_per_kloc(d, 50_000) for d in (1000, 1010, 990, 1005, 995, 1002, 998)]
    assert history[0] == pytest.approx(20.0)
    slower = scan_time_regression(ms_per_kloc(1200, 50_000), history)
    assert slower.status is RegressionStatus.REGRESSION
    assert slower.effect_pct == pytest.approx(20, abs=1)
    same = scan_time_regression(ms_per_kloc(1003, 50_000), history)
    assert same.status is RegressionStatus.NO_CHANGE
    assert scan_time_regression(16.0, history).status is RegressionStatus.IMPROVEMENT


# --------------------------------------------------------------------------- run-to-run spread


def _drifting_runs(seed: int, n: int, drift: float, noise: float = 0.01) -> list[BenchmarkResult]:
    """``n`` runs of 30 rounds, each run shifted as a whole by a log-normal drift."""
    rng = np.random.default_rng(seed)
    runs = []
    for i, shift in enumerate(rng.normal(0.0, drift, n)):
        data = tuple(float(v) for v in BASE_S * np.exp(shift + rng.normal(0.0, noise, 30)))
        runs.append(_run(data, ts=i, commit=f"c{i}"))
    return runs


def _scaled_rounds(scale: float, seed: int, noise: float = 0.005) -> tuple[float, ...]:
    rng = np.random.default_rng(seed)
    return tuple(float(v) for v in BASE_S * scale * np.exp(rng.normal(0.0, noise, 30)))


def test_mann_whitney_finding_within_the_run_to_run_spread_is_no_change() -> None:
    # Earlier runs wander by about 4 % as a whole; the latest happened to be fast.
    scales = [1.0 + 0.04 * ((i * 7) % 5 - 2) / 2 for i in range(19)] + [0.95]
    history = [_run(_scaled_rounds(s, i), ts=i) for i, s in enumerate(scales)]
    current = _run(_scaled_rounds(1.02, 99), ts=100)
    alone = compare_benchmark(current, [history[-1]])
    assert alone.status is RegressionStatus.REGRESSION  # 7 % over the latest run's rounds
    verdict = compare_benchmark(current, history)
    assert verdict.status is RegressionStatus.NO_CHANGE
    assert verdict.method == "mann-whitney-u"
    assert "within the run-to-run spread of the last 20 runs" in verdict.reason
    assert verdict.p_value is not None and verdict.p_value >= 0.01
    assert verdict.effect_pct == pytest.approx(7.4, abs=1)


def test_mann_whitney_finding_beyond_the_run_to_run_spread_still_blocks() -> None:
    history = _drifting_runs(5, 20, drift=0.01)
    current = _run(_scaled_rounds(1.2, 99, noise=0.01), ts=100)
    verdict = compare_benchmark(current, history)
    assert verdict.status is RegressionStatus.REGRESSION
    assert verdict.method == "mann-whitney-u"
    assert "beyond the run-to-run spread of the last 20 runs" in verdict.reason
    assert verdict.p_value is not None and verdict.p_value < 0.01
    assert verdict.n_current == verdict.n_baseline == 30  # rounds, as before


def test_mann_whitney_stands_when_the_history_changed_regime_too_recently() -> None:
    # 20 runs at 10 ms, then 3 at 12 ms (a change too recent to test against):
    # the latest run is the only sound baseline.
    history = [_run(_scaled_rounds(1.0, i), ts=i) for i in range(20)]
    history += [_run(_scaled_rounds(1.2, 50 + i), ts=20 + i) for i in range(3)]
    verdict = compare_benchmark(_run(_scaled_rounds(1.4, 99), ts=100), history)
    assert verdict.status is RegressionStatus.REGRESSION
    assert "run-to-run spread not tested" in verdict.reason
    assert "changed regime at run 20" in verdict.reason


def test_run_to_run_drift_keeps_a_a_false_positives_rare() -> None:
    # 3 % drift between runs: the rounds alone flag about one A/A pair in eight.
    alone = flagged = 0
    for seed in range(60):
        runs = _drifting_runs(seed, 21, drift=0.03)
        current = replace(runs[-1], timestamp_ms=1000)
        alone += compare_benchmark(current, [runs[-2]]).blocks
        flagged += compare_benchmark(current, runs[:-1]).blocks
    assert alone >= 4
    assert flagged <= 1


def test_history_path_a_a_false_positives_match_the_confidence() -> None:
    # The prediction t-test is exact for log-normal noise: about 1 % at 99 %.
    flagged = 0
    for seed in range(300):
        rng = np.random.default_rng(10_000 + seed)
        medians = rng.lognormal(np.log(BASE_S), 0.03, 21)
        history = [_run(median=float(m), ts=i) for i, m in enumerate(medians[:-1])]
        flagged += compare_benchmark(_run(median=float(medians[-1]), ts=100), history).blocks
    assert flagged <= 8  # expected 3; 8 is beyond 3 standard deviations


# --------------------------------------------------------------------------- cannot evaluate


def test_machine_mismatch_cannot_evaluate() -> None:
    history = [_run(_rounds(s, 1.0), ts=s, machine="ci-large") for s in range(6)]
    verdict = compare_benchmark(_run(_rounds(9, 2.0), ts=10, machine="laptop"), history)
    assert verdict.status is RegressionStatus.CANNOT_EVALUATE
    assert "ci-large" in verdict.reason and "laptop" in verdict.reason
    assert not verdict.blocks


def test_too_few_samples_cannot_evaluate() -> None:
    history = [_run(_rounds(s, 1.0, n=3), ts=s) for s in range(2)]
    verdict = compare_benchmark(_run(_rounds(9, 2.0, n=3), ts=10), history)
    assert verdict.status is RegressionStatus.CANNOT_EVALUATE
    assert "too few samples" in verdict.reason
    assert "3 rounds" in verdict.reason and "2 runs" in verdict.reason


def test_no_history_and_failed_runs_cannot_evaluate() -> None:
    assert compare_benchmark(_run(_rounds(1, 1.0)), []).status is RegressionStatus.CANNOT_EVALUATE
    failed = compare_benchmark(_run(_rounds(1, 1.0), status="failed"), [_run(_rounds(2, 1.0))])
    assert failed.status is RegressionStatus.CANNOT_EVALUATE
    assert "failed" in failed.reason
    only_failed = compare_benchmark(_run(_rounds(1, 1.0)), [_run(_rounds(2, 1.0), status="failed")])
    assert only_failed.status is RegressionStatus.CANNOT_EVALUATE
    assert "no earlier successful run" in only_failed.reason


def test_scan_time_short_history_cannot_evaluate() -> None:
    verdict = scan_time_regression(25.0, [20.0, 20.5])
    assert verdict.status is RegressionStatus.CANNOT_EVALUATE
    assert "only 2 earlier runs" in verdict.reason


def test_recent_regime_too_short_cannot_evaluate() -> None:
    history = [*(20.0 + 0.1 * (i % 3) for i in range(20)), 30.0, 30.1, 29.9]
    verdict = scan_time_regression(30.0, history)
    assert verdict.status is RegressionStatus.CANNOT_EVALUATE
    assert "changed regime at run 20" in verdict.reason


# --------------------------------------------------------------------------- bad input


def test_bad_input_is_rejected_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match="history\\[0\\] is benchmark 'other'"):
        compare_benchmark(_run(_rounds(1, 1.0)), [_run(_rounds(2, 1.0), name="other")])
    with pytest.raises(ValueError, match="min_effect"):
        compare_benchmark(_run(_rounds(1, 1.0)), [], min_effect=-1)
    with pytest.raises(ValueError, match="confidence"):
        scan_time_regression(1.0, [1.0] * 6, confidence=1.0)
    with pytest.raises(ValueError, match="lines_scanned"):
        ms_per_kloc(100.0, 0)
    with pytest.raises(ValueError, match="positive"):
        scan_time_regression(0.0, [1.0] * 6)
    with pytest.raises(ValueError, match="not finite"):
        scan_time_regression(1.0, [1.0, float("inf"), 1.0, 1.0, 1.0])
