"""Chunk encoding: exact round trips, last-write-wins duplicates, compact output."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secperf.store.codec import (
    MODE_XOR,
    ChunkDecodeError,
    decode_chunk,
    encode_chunk,
    sort_dedupe,
)

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
FINITE = st.floats(allow_nan=False, allow_infinity=False)


def _reference(ts: list[int], vals: list[float]) -> tuple[list[int], list[int]]:
    """Sorted unique timestamps and the bits of the last value given for each."""
    last: dict[int, float] = {}
    for t, v in zip(ts, vals, strict=True):
        last[t] = v
    keys = sorted(last)
    return keys, [struct.unpack("<Q", struct.pack("<d", last[k]))[0] for k in keys]


def _roundtrip(ts: list[int], vals: list[float]) -> None:
    enc = encode_chunk(np.array(ts, dtype=np.int64), np.array(vals, dtype=np.float64))
    got_ts, got_vals = decode_chunk(enc.data)
    want_ts, want_bits = _reference(ts, vals)
    assert got_ts.tolist() == want_ts
    assert got_vals.view(np.uint64).tolist() == want_bits  # bit-exact, -0.0 included
    assert enc.count == len(want_ts)
    if want_ts:
        assert (enc.start_ms, enc.end_ms) == (want_ts[0], want_ts[-1])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(INT64, FINITE), max_size=60))
def test_arbitrary_samples_round_trip_bit_exact(pairs: list[tuple[int, float]]) -> None:
    _roundtrip([p[0] for p in pairs], [p[1] for p in pairs])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=10_000),
            st.integers(min_value=-(10**9), max_value=10**9),
            st.integers(min_value=0, max_value=6),
        ),
        min_size=1,
        max_size=80,
    )
)
def test_decimal_values_with_duplicates_round_trip(pairs: list[tuple[int, int, int]]) -> None:
    ts = [1_700_000_000_000 + t * 1000 for t, _, _ in pairs]
    vals = [m / 10**k for _, m, k in pairs]
    _roundtrip(ts, vals)


def test_special_values_use_the_exact_float_path() -> None:
    vals = [-0.0, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, -1e-300, 0.1]
    ts = list(range(len(vals)))
    enc = encode_chunk(np.array(ts), np.array(vals))
    assert enc.mode == MODE_XOR  # -0.0 cannot be a scaled integer
    _roundtrip(ts, vals)


def test_one_decimal_values_are_scaled_integers() -> None:
    enc = encode_chunk(np.arange(5, dtype=np.int64), np.array([12.5, 13.1, 0.0, 99.9, 100.0]))
    assert enc.mode == 1
    enc_int = encode_chunk(np.arange(3, dtype=np.int64), np.array([1.0, 2e15, 7.0]))
    assert enc_int.mode == 0


def test_extreme_timestamp_span_round_trips() -> None:
    _roundtrip([2**63 - 1, -(2**63), 0, 1], [1.0, 2.0, 3.0, 4.0])


def test_empty_and_single_sample_chunks() -> None:
    _roundtrip([], [])
    _roundtrip([1_700_000_000_000], [42.0])


def test_duplicates_keep_the_last_value_given() -> None:
    ts, vals = sort_dedupe(np.array([5, 3, 5, 3, 9]), np.array([1.0, 2.0, 3.0, 4.0, 5.0]))
    assert ts.tolist() == [3, 5, 9]
    assert vals.tolist() == [4.0, 3.0, 5.0]


def test_regular_series_compress_well() -> None:
    rng = np.random.default_rng(7)
    n = 7200
    ts = 1_700_000_000_000 + np.arange(n, dtype=np.int64) * 1000
    cpu = np.round(np.clip(35 + rng.normal(0, 8, n), 0, 100), 1)
    counter = np.cumsum(rng.integers(0, 50_000, n)).astype(np.float64)
    assert len(encode_chunk(ts, cpu).data) / n < 2.0
    assert len(encode_chunk(ts, counter).data) / n < 4.0


def test_non_finite_values_are_refused() -> None:
    with pytest.raises(ValueError, match="finite"):
        encode_chunk(np.array([1, 2]), np.array([1.0, np.nan]))


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="equal"):
        encode_chunk(np.array([1, 2]), np.array([1.0]))


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"\x01", "shorter than its header"),
        (struct.pack("<BBIq", 9, 255, 1, 0) + b"x", "version 9"),
        (struct.pack("<BBIq", 1, 42, 1, 0) + b"x", "mode 42"),
        (struct.pack("<BBIq", 1, 255, 3, 0) + b"not zlib", "corrupt"),
    ],
)
def test_corrupt_chunks_give_clear_errors(blob: bytes, message: str) -> None:
    with pytest.raises(ChunkDecodeError, match=message):
        decode_chunk(blob)


def test_truncated_payload_is_detected() -> None:
    import zlib

    blob = struct.pack("<BBIq", 1, 255, 4, 0) + zlib.compress(b"\x00" * 10)
    with pytest.raises(ChunkDecodeError, match="expected"):
        decode_chunk(blob)
