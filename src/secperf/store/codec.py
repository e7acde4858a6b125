"""Chunk encoding: a block of (timestamp, value) samples as one compact blob.

Layout (little endian): a fixed header ``<BBIq`` = format version, value mode,
sample count, first timestamp; then one zlib stream holding two byte-shuffled
arrays of 64-bit words:

* timestamps as delta-of-delta (regular series give runs of zeros);
* values either as deltas of scaled integers (mode 0..6: every value is a
  decimal with that many fractional digits and decodes back bit for bit) or,
  for anything else, as the XOR of each float's bits with the previous one
  (mode 255, Gorilla's idea).

Deltas are zigzag-encoded so that small negative numbers have small words, and
the words are shuffled (all first bytes, then all second bytes, ...) so that
their zero high bytes form long runs for zlib. Timestamp arithmetic is modular
(uint64), so any int64 timestamps round-trip exactly. Everything is vectorised
with numpy; decoding is bit-exact, including -0.0 and subnormals.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from secperf.store.lazy_numpy import np

if TYPE_CHECKING:
    import numpy.typing as npt

FORMAT_VERSION = 1
MODE_XOR = 255
MAX_DECIMALS = 6
_HEADER = struct.Struct("<BBIq")
_SCALED_LIMIT = float(2**53)
_ZLIB_LEVEL = 6

if TYPE_CHECKING:
    # Annotations only: numpy loads when a chunk is encoded or decoded.
    I64Array = npt.NDArray[np.int64]
    F64Array = npt.NDArray[np.float64]
    U64Array = npt.NDArray[np.uint64]


class ChunkDecodeError(ValueError):
    """Raised when a blob is not a chunk this code can read."""


@dataclass(frozen=True, slots=True)
class EncodedChunk:
    """An encoded chunk with the facts the store indexes it by."""

    data: bytes
    start_ms: int
    end_ms: int
    count: int
    mode: int


def sort_dedupe(timestamps: npt.ArrayLike, values: npt.ArrayLike) -> tuple[I64Array, F64Array]:
    """Sort by timestamp; of equal timestamps keep the one given last (last write wins)."""
    ts = np.asarray(timestamps, dtype=np.int64)
    vals = np.asarray(values, dtype=np.float64)
    if ts.shape != vals.shape or ts.ndim != 1:
        raise ValueError(f"timestamps {ts.shape} and values {vals.shape} must be 1-d and equal")
    if ts.size < 2:
        return ts.copy(), vals.copy()
    if bool(np.all(ts[1:] > ts[:-1])):
        return ts.copy(), vals.copy()
    order = np.argsort(ts, kind="stable")
    ts = ts[order]
    vals = vals[order]
    keep = np.empty(ts.size, dtype=bool)
    keep[:-1] = ts[1:] != ts[:-1]
    keep[-1] = True
    return ts[keep], vals[keep]


def _zigzag(words: U64Array) -> U64Array:
    signed = words.view(np.int64)
    return ((signed << np.int64(1)) ^ (signed >> np.int64(63))).view(np.uint64)


def _unzigzag(words: U64Array) -> U64Array:
    return (words >> np.uint64(1)) ^ (np.uint64(0) - (words & np.uint64(1)))


def _shuffle(words: U64Array) -> bytes:
    little = words.astype("<u8", copy=False)
    return little.view(np.uint8).reshape(-1, 8).T.tobytes()


def _unshuffle(raw: bytes | memoryview, count: int) -> U64Array:
    planes = np.frombuffer(raw, dtype=np.uint8, count=count * 8).reshape(8, count)
    return planes.T.copy().view("<u8").reshape(count).astype(np.uint64, copy=False)


def _decimal_mode(values: F64Array) -> tuple[int, I64Array] | None:
    """The fewest decimals that represent every value exactly, with the scaled ints."""
    bits = values.view(np.uint64)
    for k in range(MAX_DECIMALS + 1):
        scale = 10.0**k
        scaled = values * scale
        if not bool(np.all(np.abs(scaled) < _SCALED_LIMIT)):
            return None  # larger k only grows the magnitude
        ints = np.round(scaled).astype(np.int64)
        if np.array_equal((ints.astype(np.float64) / scale).view(np.uint64), bits):
            return k, ints
    return None


def decimal_sums(values: F64Array, starts: I64Array) -> F64Array | None:
    """Sums of ``values`` from each of ``starts`` on, exact when all are short decimals.

    Values with at most ``MAX_DECIMALS`` fractional digits are summed as scaled
    integers, so a sum is the float nearest the true decimal (and encodes as a
    decimal again); None when that cannot be done exactly (floats summed then).
    """
    found = _decimal_mode(values) if values.size else None
    if found is None:
        return None
    k, ints = found
    if float(np.abs(ints).max(initial=0)) * values.size >= _SCALED_LIMIT:
        return None
    sums: F64Array = np.add.reduceat(ints, starts).astype(np.float64) / (10.0**k)
    return sums


def _timestamp_words(ts: I64Array) -> U64Array:
    """Zigzagged delta-of-delta words of sorted timestamps (one fewer than timestamps)."""
    deltas = np.diff(ts.view(np.uint64)).astype(
        np.uint64, copy=False
    )  # modular: exact for any int64 span
    dod = np.diff(deltas, prepend=np.zeros(1, np.uint64))
    return _zigzag(dod.astype(np.uint64, copy=False))


def _timestamps_from_words(first: int, words: U64Array, count: int) -> I64Array:
    ts = np.empty(count, dtype=np.uint64)
    ts[0] = np.uint64(first & 0xFFFFFFFFFFFFFFFF)
    if count > 1:
        deltas = np.cumsum(_unzigzag(words), dtype=np.uint64)
        ts[1:] = ts[0] + np.cumsum(deltas, dtype=np.uint64)
    return ts.view(np.int64)


def _value_words(vals: F64Array) -> tuple[int, U64Array]:
    """The value mode and words: scaled-decimal deltas when exact, else XOR of the bits."""
    decimal = _decimal_mode(vals)
    if decimal is not None:
        mode, ints = decimal
        return mode, _zigzag(np.diff(ints, prepend=np.int64(0)).view(np.uint64))
    bits = vals.view(np.uint64)
    return MODE_XOR, bits ^ np.concatenate((np.zeros(1, np.uint64), bits[:-1]))


def _values_from_words(mode: int, words: U64Array) -> F64Array:
    if mode == MODE_XOR:
        values: F64Array = np.bitwise_xor.accumulate(words).view(np.float64)
        return values
    ints = np.cumsum(_unzigzag(words).view(np.int64), dtype=np.int64)
    scaled: F64Array = ints.astype(np.float64) / (10.0**mode)
    return scaled


def encode_chunk(timestamps: npt.ArrayLike, values: npt.ArrayLike) -> EncodedChunk:
    """Encode samples (any order; duplicates resolved last-wins) into one chunk.

    Values must be finite: the store rejects NaN and infinities before this.
    """
    ts, vals = sort_dedupe(timestamps, values)
    if not bool(np.all(np.isfinite(vals))):
        raise ValueError("chunk values must be finite")
    count = int(ts.size)
    if count == 0:
        return EncodedChunk(_HEADER.pack(FORMAT_VERSION, MODE_XOR, 0, 0), 0, 0, 0, MODE_XOR)
    mode, value_words = _value_words(vals)
    payload = zlib.compress(_shuffle(_timestamp_words(ts)) + _shuffle(value_words), _ZLIB_LEVEL)
    header = _HEADER.pack(FORMAT_VERSION, mode, count, int(ts[0]))
    return EncodedChunk(header + payload, int(ts[0]), int(ts[-1]), count, mode)


def decode_chunk(data: bytes | memoryview) -> tuple[I64Array, F64Array]:
    """Decode a chunk back to sorted, unique timestamps and their exact values."""
    raw = bytes(data)
    if len(raw) < _HEADER.size:
        raise ChunkDecodeError(f"chunk of {len(raw)} bytes is shorter than its header")
    version, mode, count, first = _HEADER.unpack_from(raw)
    if version != FORMAT_VERSION:
        raise ChunkDecodeError(f"chunk format version {version} is not supported")
    if mode != MODE_XOR and mode > MAX_DECIMALS:
        raise ChunkDecodeError(f"chunk value mode {mode} is not supported")
    if count == 0:
        return np.empty(0, np.int64), np.empty(0, np.float64)
    try:
        body = zlib.decompress(raw[_HEADER.size :])
    except zlib.error as exc:
        raise ChunkDecodeError(f"chunk payload is corrupt: {exc}") from None
    ts_len = (count - 1) * 8
    if len(body) != ts_len + count * 8:
        raise ChunkDecodeError(
            f"chunk payload has {len(body)} bytes, expected {ts_len + count * 8}"
        )
    words = _unshuffle(body[:ts_len], count - 1) if count > 1 else np.empty(0, np.uint64)
    ts = _timestamps_from_words(first, words, count)
    values = _values_from_words(mode, _unshuffle(memoryview(body)[ts_len:], count))
    return ts, values


# ---------------------------------------------------------------- column chunks
#
# A rollup block holds one row per bucket with several value columns (min, max,
# sum, count). It reuses the chunk's pieces: header ``<BIqB`` = format version,
# row count, first timestamp, column count; one mode byte per column; one plane
# mask byte per array (timestamps, then each column); then one zlib stream of
# the delta-of-delta timestamps and each column's words, every array
# byte-shuffled with only its non-zero byte planes kept (bit i of the mask: plane
# i is stored). Small deltas leave most planes zero, so there is far less to
# inflate when a long range is read. Values may be any float64 (a sum may
# overflow to infinity); the XOR mode keeps every bit.

COLUMNS_VERSION = 1
_COLUMNS_HEADER = struct.Struct("<BIqB")


def _planes(words: U64Array) -> tuple[int, bytes]:
    """The plane mask and the non-zero byte planes of ``words`` (byte-shuffled)."""
    planes = words.astype("<u8", copy=False).view(np.uint8).reshape(-1, 8).T
    present = np.asarray(planes.any(axis=1), dtype=np.bool_)
    mask = int(np.packbits(present[::-1])[0])
    return mask, planes[present].tobytes()


def _from_planes(raw: memoryview, mask: int, count: int) -> U64Array:
    out = np.zeros((count, 8), dtype=np.uint8)
    at = 0
    for plane in range(8):
        if mask >> plane & 1:
            out[:, plane] = np.frombuffer(raw, dtype=np.uint8, count=count, offset=at)
            at += count
    return out.view("<u8").reshape(count).astype(np.uint64, copy=False)


def encode_columns(timestamps: I64Array, columns: list[F64Array]) -> bytes:
    """Encode sorted, unique timestamps and equally long float64 columns as one blob."""
    ts = np.asarray(timestamps, dtype=np.int64)
    count = int(ts.size)
    if any(np.asarray(c).shape != ts.shape for c in columns):
        raise ValueError("every column must have one value per timestamp")
    if count > 1 and not bool(np.all(ts[1:] > ts[:-1])):
        raise ValueError("column chunk timestamps must be sorted and unique")
    modes = [MODE_XOR] * len(columns)
    masks = [0] * (1 + len(columns))
    parts: list[bytes] = []
    if count:
        masks[0], planes = _planes(_timestamp_words(ts))
        parts.append(planes)
        for i, column in enumerate(columns):
            modes[i], words = _value_words(np.ascontiguousarray(column, dtype=np.float64))
            masks[i + 1], planes = _planes(words)
            parts.append(planes)
    header = _COLUMNS_HEADER.pack(COLUMNS_VERSION, count, int(ts[0]) if count else 0, len(columns))
    return header + bytes(modes) + bytes(masks) + zlib.compress(b"".join(parts), _ZLIB_LEVEL)


def decode_columns(data: bytes | memoryview) -> tuple[I64Array, list[F64Array]]:
    """The timestamps and columns ``encode_columns`` wrote, bit for bit."""
    raw = bytes(data)
    if len(raw) < _COLUMNS_HEADER.size:
        raise ChunkDecodeError(f"column chunk of {len(raw)} bytes is shorter than its header")
    version, count, first, ncols = _COLUMNS_HEADER.unpack_from(raw)
    if version != COLUMNS_VERSION:
        raise ChunkDecodeError(f"column chunk format version {version} is not supported")
    at = _COLUMNS_HEADER.size
    modes = list(raw[at : at + ncols])
    masks = list(raw[at + ncols : at + 2 * ncols + 1])
    if len(masks) != ncols + 1 or any(m != MODE_XOR and m > MAX_DECIMALS for m in modes):
        raise ChunkDecodeError("column chunk has an unsupported value mode or is cut short")
    if count == 0:
        return np.empty(0, np.int64), [np.empty(0, np.float64) for _ in modes]
    try:
        body = zlib.decompress(raw[at + 2 * ncols + 1 :])
    except zlib.error as exc:
        raise ChunkDecodeError(f"column chunk payload is corrupt: {exc}") from None
    lengths = [(count - 1) * masks[0].bit_count()]
    lengths += [count * m.bit_count() for m in masks[1:]]
    if len(body) != sum(lengths):
        raise ChunkDecodeError(
            f"column chunk payload has {len(body)} bytes, expected {sum(lengths)}"
        )
    view = memoryview(body)
    words = _from_planes(view, masks[0], count - 1)
    ts = _timestamps_from_words(first, words, count)
    columns: list[F64Array] = []
    offset = lengths[0]
    for i, mode in enumerate(modes):
        columns.append(_values_from_words(mode, _from_planes(view[offset:], masks[i + 1], count)))
        offset += lengths[i + 1]
    return ts, columns
