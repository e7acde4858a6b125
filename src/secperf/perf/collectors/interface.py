"""The collector contract every source of samples (system, process, scrape) keeps."""

from __future__ import annotations

import abc
import math

from secperf.events import local_host
from secperf.model import Sample


class Collector(abc.ABC):
    """Produces a batch of samples each time it is asked, every ``interval_s`` seconds.

    ``collect`` is synchronous and quick; the runner calls it in a worker thread,
    so it may block on I/O (a scrape) but must never raise for an expected
    failure such as a process that exited or a target that is down. Every sample
    carries a ``host`` label.
    """

    name: str
    interval_s: float
    host: str

    def __init__(self, name: str, interval_s: float, host: str | None = None) -> None:
        if not name:
            raise ValueError("collector name must not be empty")
        self.name = name
        self.interval_s = check_interval(interval_s, f"collector {name!r} interval_s")
        self.host = host if host is not None else local_host()

    @abc.abstractmethod
    def collect(self, now_ms: int) -> list[Sample]:
        """One collection; ``now_ms`` (UTC ms) stamps the samples."""

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release what the collector holds (threads, connections)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, interval_s={self.interval_s})"


def check_interval(value: float, what: str) -> float:
    """``value`` as a float when it is a finite number of seconds > 0, else ValueError."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{what} must be a number of seconds, got {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{what} must be a finite number of seconds > 0, got {value!r}")
    return float(value)
