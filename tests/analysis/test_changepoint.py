"""E-divisive change points: planted steps are found where they are, noise gives none."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from secperf.analysis.changepoint import (
    divergence_profile,
    divergence_profile_naive,
    e_divisive,
)


def _noisy(seed: int, n: int, level: float = 100.0, sd: float = 3.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(level, sd, n)


@pytest.mark.parametrize("power", [1.0, 0.5, 1.5])
def test_fast_profile_matches_the_definition(power: float) -> None:
    x = _noisy(3, 40)
    x[25:] += 5
    assert np.allclose(divergence_profile(x, power), divergence_profile_naive(x, power))


def test_clear_ten_percent_step_found_at_its_index() -> None:
    x = _noisy(1, 300)
    x[180:] *= 1.10
    points = e_divisive(x)
    assert [p.index for p in points] == [180]
    cp = points[0]
    assert cp.p_value < 1e-6
    assert cp.mean_before == pytest.approx(100, rel=0.02)
    assert cp.mean_after == pytest.approx(110, rel=0.02)
    assert cp.change_pct == pytest.approx(10, abs=1.5)


def test_two_steps_both_found_with_the_regime_means() -> None:
    x = _noisy(2, 300)
    x[100:] += 10
    x[220:] -= 20
    points = e_divisive(x)
    assert len(points) == 2
    # One noisy sample at a boundary may fall on either side.
    assert abs(points[0].index - 100) <= 1
    assert abs(points[1].index - 220) <= 1
    assert points[0].mean_after == pytest.approx(110, abs=1)
    assert points[1].mean_before == pytest.approx(110, abs=1)
    assert points[1].mean_after == pytest.approx(90, abs=1)


def test_step_in_the_last_points_is_found() -> None:
    x = _noisy(4, 100, sd=2.0)
    x[95:] *= 1.10
    assert [p.index for p in e_divisive(x, min_size=5)] == [95]


def test_no_step_gives_no_change_point_across_seeds() -> None:
    false_alarms = sum(bool(e_divisive(_noisy(seed, 150))) for seed in range(100))
    # alpha = 0.01 per series; the selection correction keeps it at or under that.
    assert false_alarms <= 3


def test_deterministic() -> None:
    x = _noisy(5, 200)
    x[120:] += 4
    assert e_divisive(x) == e_divisive(x.copy())


def test_naive_and_fast_agree_on_change_points() -> None:
    x = _noisy(6, 80)
    x[50:] += 6
    fast, naive = e_divisive(x), e_divisive(x, naive=True)
    assert [p.index for p in fast] == [p.index for p in naive] == [50]
    assert fast[0].qhat == pytest.approx(naive[0].qhat)
    assert fast[0].p_value == pytest.approx(naive[0].p_value)


def test_short_and_constant_series() -> None:
    assert e_divisive([1.0, 2.0, 3.0]) == []
    assert e_divisive([5.0] * 50) == []
    step = [1.0] * 20 + [2.0] * 20
    points = e_divisive(step)
    assert [p.index for p in points] == [20]
    assert points[0].p_value == 0.0


@pytest.mark.parametrize(
    ("values", "kwargs", "message"),
    [
        ([1.0, float("nan"), 2.0], {}, "index 1"),
        ([[1.0, 2.0]], {}, "1-d"),
        (["a", "b"], {}, "numbers"),
        (list(range(20)), {"max_points": 10}, "max_points=10"),
        (list(range(20)), {"min_size": 0}, "min_size"),
        (list(range(20)), {"alpha": 1.5}, "alpha"),
        (list(range(20)), {"power": 2.0}, "power"),
    ],
)
def test_bad_input_names_the_problem(values: object, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        e_divisive(values, **kwargs)
