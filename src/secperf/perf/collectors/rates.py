"""Monotonic counters (bytes read, packets sent) turned into per-second rates.

Rules, in the order they are applied to each new reading:

- The first reading only primes: there is no rate without a previous value.
- A reading that is not a finite number >= 0 is ignored (state unchanged).
- Zero elapsed time (or one so small the rate overflows) is ignored: the
  previous reading is kept, so the next rate covers the whole interval.
  Negative elapsed time (a clock that went back) re-primes on the new
  reading and gives no rate.
- A value lower than the previous one is a **wrap-around** when the previous
  value sat in the top quarter of a 32-bit or 64-bit range and the new one in
  its bottom quarter: the increase is ``limit - previous + value``.
- Any other decrease is a **counter reset** (a restarted process, a
  re-attached device). As Prometheus' ``rate()`` does, the counter is taken to
  have restarted from 0, so the increase over the interval is the new value
  itself. The rate is then an underestimate for one interval, never a spike.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass

Number = int | float

#: The counter widths a wrap-around is recognised for.
COUNTER_LIMITS: tuple[int, ...] = (2**32, 2**64)


@dataclass(frozen=True, slots=True)
class RateReading:
    """What one update concluded: the rate (None while priming) and why."""

    rate: float | None
    kind: str  # first | rate | wrap | reset | ignored | reprimed


def counter_increase(
    previous: Number, value: Number, *, bits: int | None = None
) -> tuple[Number, str]:
    """The increase from ``previous`` to ``value`` and its kind (rate, wrap or reset).

    ``bits`` fixes the counter width (32 or 64); None recognises both, taking
    the smallest limit above ``previous``.
    """
    if value >= previous:
        return value - previous, "rate"
    limits = (2**bits,) if bits is not None else COUNTER_LIMITS
    for limit in limits:
        if previous >= limit:
            continue
        quarter = limit // 4
        if previous >= limit - quarter and value < quarter:
            return (limit - previous) + value, "wrap"
        break  # only the smallest limit above the previous value is plausible
    return value, "reset"


class CounterRate:
    """The per-second rate of one monotonic counter; see the module doc for the rules."""

    __slots__ = ("_bits", "_last_t", "_last_value")

    def __init__(self, *, bits: int | None = None) -> None:
        if bits not in (None, 32, 64):
            raise ValueError(f"counter bits must be 32, 64 or None (either), got {bits!r}")
        self._bits = bits
        self._last_value: Number | None = None
        self._last_t: float | None = None

    @property
    def primed(self) -> bool:
        """True once a reading is held, so the next one can give a rate."""
        return self._last_value is not None

    def reset(self) -> None:
        """Forget the last reading; the next one primes again."""
        self._last_value = None
        self._last_t = None

    def update(self, value: Number, t_s: float) -> float | None:
        """Feed the counter's ``value`` read at ``t_s`` (seconds, monotonic); the rate or None."""
        return self.read(value, t_s).rate

    def read(self, value: Number, t_s: float) -> RateReading:
        """Like ``update``, also saying which rule applied."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            return RateReading(None, "ignored")
        if not math.isfinite(value) or value < 0 or not math.isfinite(t_s):
            return RateReading(None, "ignored")
        last_value, last_t = self._last_value, self._last_t
        if last_value is None or last_t is None:
            self._last_value, self._last_t = value, t_s
            return RateReading(None, "first")
        elapsed = t_s - last_t
        if elapsed == 0:
            return RateReading(None, "ignored")
        if elapsed < 0:
            self._last_value, self._last_t = value, t_s
            return RateReading(None, "reprimed")
        increase, kind = counter_increase(last_value, value, bits=self._bits)
        rate = float(increase) / elapsed
        if not math.isfinite(rate):
            # An elapsed time too small to divide by is as good as none.
            return RateReading(None, "ignored")
        self._last_value, self._last_t = value, t_s
        return RateReading(rate, kind)


class RateTable:
    """Many counters keyed by (series, field): per-disk, per-interface, per-process rates."""

    __slots__ = ("_bits", "_rates")

    def __init__(self, *, bits: int | None = None) -> None:
        self._bits = bits
        self._rates: dict[Hashable, CounterRate] = {}

    def __len__(self) -> int:
        return len(self._rates)

    def update(self, key: Hashable, value: Number, t_s: float) -> float | None:
        """The rate of the counter ``key``; creates its state on first sight."""
        counter = self._rates.get(key)
        if counter is None:
            counter = self._rates[key] = CounterRate(bits=self._bits)
        return counter.update(value, t_s)

    def prune(self, keep: Callable[[Hashable], bool]) -> None:
        """Forget every counter whose key ``keep`` refuses (a process or device that went away)."""
        for key in [k for k in self._rates if not keep(k)]:
            del self._rates[key]

    def discard(self, key: Hashable) -> None:
        """Forget one counter."""
        self._rates.pop(key, None)
