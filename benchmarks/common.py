"""What every benchmark module returns, and small timing helpers.

A benchmark module is ``benchmarks/bench_<area>.py`` with a function
``run(quick: bool) -> list[Figure]``. ``python -m benchmarks`` runs them all and
writes ``docs/performance.md``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    """One measured figure, its target, and the anchor measured in the same run."""

    area: str
    name: str
    value: float
    unit: str
    target: str  # human-readable target, e.g. ">= 200,000 events/s"
    met: bool | None  # None when the figure has no target
    anchor_name: str | None = None
    anchor_value: float | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """value / anchor, when an anchor was measured."""
        if self.anchor_value in (None, 0):
            return None
        assert self.anchor_value is not None
        return self.value / self.anchor_value


def median_of(runs: int, measure: Callable[[], float]) -> float:
    """The median of ``runs`` calls of ``measure`` (each returns one reading)."""
    return statistics.median(measure() for _ in range(runs))


def seconds(fn: Callable[[], object]) -> float:
    """Wall-clock seconds one call of ``fn`` takes."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start
