"""Counters become per-second rates: first sample, wrap-around, resets, odd clocks."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secperf.perf.collectors.rates import CounterRate, RateTable, counter_increase

U32 = 2**32
U64 = 2**64


def test_first_reading_only_primes() -> None:
    counter = CounterRate()
    assert not counter.primed
    assert counter.update(100, 10.0) is None
    primed: bool = counter.primed  # read again: mypy would keep the narrowing above
    assert primed
    assert counter.update(300, 12.0) == pytest.approx(100.0)


def test_steady_counter_gives_its_rate() -> None:
    counter = CounterRate()
    counter.update(0, 0.0)
    assert counter.update(500, 0.5) == pytest.approx(1000.0)
    assert counter.update(500, 1.0) == 0.0


def test_32_bit_wrap_counts_the_increase_across_the_limit() -> None:
    counter = CounterRate()
    counter.update(U32 - 10, 0.0)
    reading = counter.read(5, 1.0)
    assert reading.kind == "wrap"
    assert reading.rate == pytest.approx(15.0)


def test_64_bit_wrap_counts_the_increase_across_the_limit() -> None:
    counter = CounterRate()
    counter.update(U64 - 1000, 0.0)
    reading = counter.read(1000, 2.0)
    assert reading.kind == "wrap"
    assert reading.rate == pytest.approx(1000.0)


def test_64_bit_counter_declared_does_not_wrap_at_32_bits() -> None:
    counter = CounterRate(bits=64)
    counter.update(U32 - 10, 0.0)
    reading = counter.read(5, 1.0)
    assert reading.kind == "reset"
    assert reading.rate == pytest.approx(5.0)


def test_decrease_far_from_a_limit_is_a_reset_counted_from_zero() -> None:
    counter = CounterRate()
    counter.update(1_000_000, 0.0)
    reading = counter.read(400, 2.0)
    # Like Prometheus' rate(): the counter restarted at 0 and reached 400.
    assert reading.kind == "reset"
    assert reading.rate == pytest.approx(200.0)


def test_drop_from_near_the_limit_to_a_large_value_is_a_reset_not_a_wrap() -> None:
    counter = CounterRate()
    counter.update(U32 - 10, 0.0)
    reading = counter.read(U32 // 2, 1.0)
    assert reading.kind == "reset"
    assert reading.rate == pytest.approx(U32 // 2)


def test_zero_elapsed_time_is_ignored_and_keeps_the_earlier_reading() -> None:
    counter = CounterRate()
    counter.update(100, 5.0)
    assert counter.read(150, 5.0).kind == "ignored"
    # The next rate spans from the kept reading at t=5.
    assert counter.update(300, 7.0) == pytest.approx(100.0)


def test_time_going_backwards_reprimes() -> None:
    counter = CounterRate()
    counter.update(100, 5.0)
    reading = counter.read(200, 4.0)
    assert reading.kind == "reprimed"
    assert reading.rate is None
    assert counter.update(300, 5.0) == pytest.approx(100.0)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -1, "12", None, True])
def test_invalid_values_are_ignored(bad: object) -> None:
    counter = CounterRate()
    counter.update(10, 0.0)
    # Deliberately not a Number: the counter must ignore what breaks its declared type.
    assert counter.read(bad, 1.0).kind == "ignored"  # type: ignore[arg-type]
    assert counter.update(20, 2.0) == pytest.approx(5.0)


def test_reset_method_forgets_the_reading() -> None:
    counter = CounterRate()
    counter.update(10, 0.0)
    counter.reset()
    assert counter.update(20, 1.0) is None


def test_bits_must_be_32_or_64() -> None:
    with pytest.raises(ValueError, match="bits"):
        CounterRate(bits=16)


def test_rate_table_keeps_counters_apart_and_prunes() -> None:
    table = RateTable()
    table.update(("eth0", "rx"), 0, 0.0)
    table.update(("eth1", "rx"), 0, 0.0)
    assert table.update(("eth0", "rx"), 10, 1.0) == pytest.approx(10.0)
    assert table.update(("eth1", "rx"), 30, 1.0) == pytest.approx(30.0)
    table.prune(lambda key: isinstance(key, tuple) and key[0] == "eth0")
    assert len(table) == 1
    # eth1 came back: primes again instead of using a stale reading.
    assert table.update(("eth1", "rx"), 50, 2.0) is None
    table.discard(("eth0", "rx"))
    assert len(table) == 1


def test_counter_increase_kinds() -> None:
    assert counter_increase(5, 9) == (4, "rate")
    assert counter_increase(U32 - 1, 1) == (2, "wrap")
    assert counter_increase(U32 - 1, 1, bits=64) == (1, "reset")
    assert counter_increase(U32 + 5, 3) == (3, "reset")


steps = st.lists(
    st.tuples(st.integers(0, 2**30 - 1), st.floats(0.001, 100.0)), min_size=1, max_size=50
)


@given(start=st.integers(0, U32 - 1), steps=steps)
def test_wrapping_32_bit_counter_recovers_every_increase(
    start: int, steps: list[tuple[int, float]]
) -> None:
    counter = CounterRate(bits=32)
    t, raw = 0.0, start
    counter.update(raw, t)
    for increase, dt in steps:
        t += dt
        raw = (raw + increase) % U32
        rate = counter.update(raw, t)
        assert rate is not None
        assert rate * dt == pytest.approx(increase, rel=1e-9, abs=1e-6)


@given(start=st.integers(0, U64 - 1), steps=steps)
def test_wrapping_64_bit_counter_recovers_every_increase(
    start: int, steps: list[tuple[int, float]]
) -> None:
    counter = CounterRate(bits=64)
    t, raw = 0.0, start
    counter.update(raw, t)
    for increase, dt in steps:
        t += dt
        raw = (raw + increase) % U64
        rate = counter.update(raw, t)
        assert rate is not None
        assert rate * dt == pytest.approx(increase, rel=1e-9, abs=1e-6)


@given(
    readings=st.lists(
        st.tuples(st.integers(0, U64 - 1) | st.floats(0, 1e20), st.floats(-10, 10)),
        min_size=2,
        max_size=40,
    )
)
def test_any_sequence_gives_no_negative_or_infinite_rate(
    readings: list[tuple[int | float, float]],
) -> None:
    counter = CounterRate()
    t = 0.0
    for value, dt in readings:
        t += dt
        rate = counter.update(value, t)
        if rate is not None:
            assert rate >= 0
            assert math.isfinite(rate)


@given(
    values=st.lists(st.integers(0, 10**12), min_size=2, max_size=30).map(sorted),
    dt=st.floats(0.01, 10),
)
def test_monotonic_counter_rates_sum_to_the_total_increase(values: list[int], dt: float) -> None:
    counter = CounterRate()
    total = 0.0
    for index, value in enumerate(values):
        rate = counter.update(value, index * dt)
        if index == 0:
            assert rate is None
        else:
            assert rate is not None
            total += rate * dt
    assert total == pytest.approx(values[-1] - values[0], rel=1e-9, abs=1e-3)
