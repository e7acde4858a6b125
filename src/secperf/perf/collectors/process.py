"""Chosen processes through psutil: CPU %, RSS, threads, open descriptors, I/O rates.

Processes are chosen by pid, by name (exact), by a regular expression searched
in the command line, and optionally secperf's own process and its children (the
scan workers). The choice is re-evaluated on every collection: new matching
processes are picked up, and a process that exited is dropped quietly.

A process's first collection only primes its CPU % and I/O rates (psutil's
``cpu_percent(interval=None)`` semantics), so those appear from its second
collection on. ``process_cpu_percent`` is relative to one core, as in ``top``:
a process busy on two cores reads 200.

Sample names (labels ``host``, ``pid``, ``name``): ``process_cpu_percent``,
``memory_rss_bytes``, ``process_threads``, ``process_open_files``; per second,
where the platform allows reading them: ``process_read_bytes``,
``process_write_bytes`` (storage I/O) and ``process_read_chars``,
``process_write_chars`` (all reads and writes, page cache included).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import psutil

from secperf.model import MetricType, Sample
from secperf.perf.collectors.interface import Collector
from secperf.perf.collectors.rates import RateTable

log = logging.getLogger(__name__)

_GONE = (psutil.NoSuchProcess, psutil.ZombieProcess)

_Adder = Callable[[str, float], None]


@dataclass
class _Tracked:
    """A process being watched; ``create_time`` guards against a reused pid."""

    proc: psutil.Process
    create_time: float
    name: str
    cpu_primed: bool = False


class ProcessCollector(Collector):
    """Samples of chosen processes, labelled ``pid`` and ``name``.

    ``pids``, ``names`` and ``cmdline_patterns`` select other processes;
    ``include_self`` adds secperf's own process and ``include_children`` its
    descendants. ``open_files`` counts every open descriptor (``num_fds``,
    like Prometheus' ``process_open_fds``) where the platform has it.
    """

    def __init__(
        self,
        *,
        pids: Iterable[int] = (),
        names: Iterable[str] = (),
        cmdline_patterns: Iterable[str] = (),
        include_self: bool = True,
        include_children: bool = True,
        interval_s: float = 1.0,
        host: str | None = None,
        name: str = "process",
    ) -> None:
        super().__init__(name, interval_s, host)
        self.pids = frozenset(_check_pid(p) for p in pids)
        self.names = frozenset(names)
        self.patterns: tuple[re.Pattern[str], ...] = tuple(
            _compile(p, index) for index, p in enumerate(cmdline_patterns)
        )
        self.include_self = include_self
        self.include_children = include_children
        self._self_pid = os.getpid()
        self._tracked: dict[int, _Tracked] = {}
        self._rates = RateTable()

    # ------------------------------------------------------------------ selection

    def matching_pids(self) -> set[int]:
        """The pids chosen right now (before any is read)."""
        chosen: set[int] = {p for p in self.pids if psutil.pid_exists(p)}
        if self.include_self:
            chosen.add(self._self_pid)
        if self.include_children:
            with contextlib.suppress(*_GONE):
                chosen.update(
                    c.pid for c in psutil.Process(self._self_pid).children(recursive=True)
                )
        if self.names or self.patterns:
            attrs = ["name", "cmdline"] if self.patterns else ["name"]
            for proc in psutil.process_iter(attrs):
                if self._selected(proc.info):
                    chosen.add(proc.pid)
        return chosen

    def _selected(self, info: dict[str, object]) -> bool:
        if info.get("name") in self.names:
            return True
        if not self.patterns:
            return False
        cmdline = info.get("cmdline")
        if not isinstance(cmdline, list) or not cmdline:
            return False  # kernel threads, zombies, or denied
        line = " ".join(str(part) for part in cmdline)
        return any(pattern.search(line) for pattern in self.patterns)

    def _track(self, pid: int) -> _Tracked | None:
        known = self._tracked.get(pid)
        try:
            if known is not None:
                return known
            proc = psutil.Process(pid)
            tracked = _Tracked(proc, proc.create_time(), proc.name())
        except (*_GONE, psutil.AccessDenied):
            return None
        self._tracked[pid] = tracked
        return tracked

    # ------------------------------------------------------------------ reading

    def collect(self, now_ms: int) -> list[Sample]:
        """One reading of every chosen process; exited ones are dropped."""
        out: list[Sample] = []
        alive: set[int] = set()
        for pid in sorted(self.matching_pids()):
            tracked = self._track(pid)
            if tracked is None:
                continue
            if self._read(tracked, now_ms, out):
                alive.add(pid)
        for pid in [p for p in self._tracked if p not in alive]:
            del self._tracked[pid]
        self._rates.prune(lambda key: isinstance(key, tuple) and key[0] in alive)
        return out

    def _read(self, tracked: _Tracked, now_ms: int, out: list[Sample]) -> bool:
        """Append the process's samples; False when it is gone (or its pid reused)."""
        proc = tracked.proc
        labels = {"host": self.host, "pid": str(proc.pid), "name": tracked.name}
        batch: list[Sample] = []

        def add(name: str, value: float) -> None:
            batch.append(Sample(name, dict(labels), now_ms, float(value)))

        t = time.monotonic()
        try:
            with proc.oneshot():
                if proc.create_time() != tracked.create_time:
                    return False  # the pid now belongs to another process
                if proc.status() == psutil.STATUS_ZOMBIE:
                    return False
                cpu = proc.cpu_percent(interval=None)
                if tracked.cpu_primed:
                    add(MetricType.PROCESS_CPU_PERCENT.value, cpu)
                tracked.cpu_primed = True
                add(MetricType.MEMORY_RSS_BYTES.value, proc.memory_info().rss)
                add("process_threads", proc.num_threads())
                fds = _open_files(proc)
                if fds is not None:
                    add("process_open_files", fds)
                self._io(proc, t, add)
        except _GONE:
            return False
        except psutil.AccessDenied:
            # Another user's process: keep what was readable, try again next time.
            log.debug("access denied reading process %s (%s)", proc.pid, tracked.name)
        out.extend(batch)
        return True

    def _io(self, proc: psutil.Process, t: float, add: _Adder) -> None:
        io_counters = getattr(proc, "io_counters", None)
        if io_counters is None:
            return  # platform without per-process I/O (macOS)
        try:
            io = io_counters()
        except (psutil.AccessDenied, NotImplementedError, OSError):
            return
        for field, metric in (
            ("read_bytes", "process_read_bytes"),
            ("write_bytes", "process_write_bytes"),
            ("read_chars", "process_read_chars"),
            ("write_chars", "process_write_chars"),
        ):
            value = getattr(io, field, None)
            if value is None:
                continue
            rate = self._rates.update((proc.pid, field), value, t)
            if rate is not None:
                add(metric, rate)


def _open_files(proc: psutil.Process) -> int | None:
    try:
        if hasattr(proc, "num_fds"):
            return proc.num_fds()
        return len(proc.open_files())
    except (psutil.AccessDenied, NotImplementedError, OSError):
        return None


def _check_pid(pid: int) -> int:
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        raise ValueError(f"process pid must be a positive integer, got {pid!r}")
    return pid


def _compile(pattern: str, index: int) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValueError(
            f"cmdline_patterns[{index}] {pattern!r} is not a valid regular expression: {exc}"
        ) from None
