"""What a scan costs the machine, sampled while it runs.

``ScanImpactSampler`` watches the scan's processes (a root process and its
descendants, found anew on every tick so that new pool workers count, or any
set of pids a callable returns) and the whole machine, on a background thread
at a fine interval (100 ms by default). On stop it returns a ``model.ScanCost``
and keeps the series as ``model.Sample`` objects (``scan_process_cpu_percent``,
``scan_process_rss_bytes``, ``host_cpu_percent``, each labelled ``scan_id``) for
charts and the correlation engine.

Accounting rules:

- CPU seconds are user + system time deltas per process. A process that was
  already running at start counts from its reading at start; one created
  during the scan counts from zero. A process that exits counts with its last
  reading (what it used between that reading and its exit is not seen).
- Peak RSS is the largest, over ticks, of the summed RSS of the scan's processes.
- Read/write bytes are the bytes the processes read and wrote through system
  calls (``read_chars``/``write_chars`` on Linux, which include data served
  from the page cache, the cost a scan of a warm tree really has); elsewhere
  the storage-level counters psutil offers. Unavailable counters count as 0.
- Host CPU % is computed from ``psutil.cpu_times()`` deltas, so the sampler
  does not share psutil's module-level ``cpu_percent`` state with collectors.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import psutil

from secperf.events import now_ms
from secperf.model import Sample, ScanCost

__all__ = ["ScanImpactError", "ScanImpactSampler"]

CPU_PERCENT_METRIC = "scan_process_cpu_percent"
RSS_METRIC = "scan_process_rss_bytes"
HOST_CPU_METRIC = "host_cpu_percent"
#: How early psutil's ``create_time`` can read (the boot time it adds is whole seconds).
_CREATE_TIME_SLACK_S = 1.0


class ScanImpactError(RuntimeError):
    """The sampler could not run (for example, its pid provider failed)."""


@dataclass(slots=True)
class _Reading:
    cpu_s: float
    rss: int
    read: int
    write: int


@dataclass(slots=True)
class _Tracked:
    proc: psutil.Process
    baseline: _Reading
    last: _Reading
    alive: bool = True


def _host_busy_total() -> tuple[float, float]:
    times = psutil.cpu_times()
    total = sum(times)
    # Guest time is already counted in user time on Linux; iowait is idle time.
    idle = times.idle + getattr(times, "iowait", 0.0)
    guest = getattr(times, "guest", 0.0) + getattr(times, "guest_nice", 0.0)
    total -= guest
    return total - idle, total


def _descendants_from_proc(root_pid: int) -> set[int] | None:
    """``root_pid`` and its descendants from Linux's /proc/PID/task/TID/children.

    About ten times cheaper than psutil's ``children(recursive=True)``, which
    reads every process on the host. The kernel's lists can miss a process born
    or gone while they are read; the next tick sees it. None when the kernel
    does not offer these files.
    """
    if not Path(f"/proc/{root_pid}/task").is_dir():
        return None
    pids = {root_pid}
    pending = [root_pid]
    offered = False
    while pending:
        pid = pending.pop()
        try:
            tasks = list(Path(f"/proc/{pid}/task").iterdir())
        except OSError:
            continue  # exited meanwhile
        for task in tasks:
            try:
                text = (task / "children").read_text()
            except OSError:
                continue  # thread gone, or a kernel without these files
            offered = True
            for child in text.split():
                child_pid = int(child)
                if child_pid not in pids:
                    pids.add(child_pid)
                    pending.append(child_pid)
    return pids if offered else None


def _read(proc: psutil.Process) -> _Reading:
    """One reading of a process; raises psutil.Error when it is gone."""
    with proc.oneshot():
        cpu = proc.cpu_times()
        rss = proc.memory_info().rss
        read = write = 0
        try:
            io = proc.io_counters()
        except (psutil.AccessDenied, AttributeError, NotImplementedError):
            pass  # I/O counters are not offered for this process or platform
        else:
            read = int(getattr(io, "read_chars", io.read_bytes))
            write = int(getattr(io, "write_chars", io.write_bytes))
    return _Reading(cpu_s=cpu.user + cpu.system, rss=int(rss), read=read, write=write)


class ScanImpactSampler:
    """Samples the resource use of one scan's processes and of the host.

    Give either ``root_pid`` (default: this process) with ``include_children``,
    or ``pids_provider``, a callable returning the pids to watch on each tick.
    Use as a context manager or call ``start()`` / ``stop()``; ``stop()``
    returns the ``ScanCost`` and ``samples`` holds the series.
    """

    def __init__(
        self,
        scan_id: str,
        *,
        root_pid: int | None = None,
        include_children: bool = True,
        pids_provider: Callable[[], Iterable[int]] | None = None,
        interval_s: float = 0.1,
    ) -> None:
        if root_pid is not None and pids_provider is not None:
            raise ValueError("give root_pid or pids_provider, not both")
        if not interval_s > 0:
            raise ValueError(f"interval_s must be positive, got {interval_s}")
        self.scan_id = scan_id
        self.interval_s = float(interval_s)
        self._root_pid = os.getpid() if root_pid is None and pids_provider is None else root_pid
        self._include_children = include_children
        self._pids_provider = pids_provider
        self._labels = {"scan_id": scan_id}
        self._tracked: dict[tuple[int, float], _Tracked] = {}
        self._samples: list[Sample] = []
        self._host_cpu: list[float] = []
        self._peak_rss = 0
        self._ticks = 0
        self._start_wall = 0.0
        self._started_ms = 0
        self._prev_cpu_s = 0.0
        self._prev_mono = 0.0
        self._prev_host: tuple[float, float] = (0.0, 0.0)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._cost: ScanCost | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> ScanImpactSampler:
        """Take the baseline reading and begin sampling in the background."""
        if self._thread is not None or self._cost is not None:
            raise ScanImpactError(f"sampler for scan {self.scan_id!r} was already started")
        self._start_wall = time.time()
        self._started_ms = int(self._start_wall * 1000)
        self._prev_host = _host_busy_total()
        self._prev_mono = time.monotonic()
        self._peak_rss = self._discover(first=True)
        self._prev_cpu_s = self._cpu_seconds()
        self._thread = threading.Thread(
            target=self._loop, name=f"scan-impact-{self.scan_id}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> ScanCost:
        """Stop sampling, take a last reading and return the scan's cost."""
        if self._cost is not None:
            return self._cost
        if self._thread is None:
            raise ScanImpactError(f"sampler for scan {self.scan_id!r} was never started")
        self._stop.set()
        self._thread.join()
        if self._error is None:
            try:
                self._tick()
            except Exception as exc:  # the final reading fails the same way a tick would
                self._error = exc
        if self._error is not None:
            raise ScanImpactError(
                f"sampling scan {self.scan_id!r} failed: {self._error}"
            ) from self._error
        with self._lock:
            tracked = list(self._tracked.values())
            host = list(self._host_cpu)
        self._cost = ScanCost(
            scan_id=self.scan_id,
            started_ms=self._started_ms,
            finished_ms=now_ms(),
            cpu_seconds=sum(max(0.0, t.last.cpu_s - t.baseline.cpu_s) for t in tracked),
            peak_rss_bytes=self._peak_rss,
            read_bytes=sum(max(0, t.last.read - t.baseline.read) for t in tracked),
            write_bytes=sum(max(0, t.last.write - t.baseline.write) for t in tracked),
            host_cpu_percent_avg=sum(host) / len(host) if host else None,
            host_cpu_percent_max=max(host) if host else None,
            samples=self._ticks,
        )
        return self._cost

    def __enter__(self) -> ScanImpactSampler:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def cost(self) -> ScanCost | None:
        """The scan's cost once stopped, else None."""
        return self._cost

    @property
    def samples(self) -> list[Sample]:
        """The sampled series so far (a copy)."""
        with self._lock:
            return list(self._samples)

    @property
    def processes_seen(self) -> int:
        """How many distinct processes were counted as the scan's."""
        with self._lock:
            return len(self._tracked)

    # ------------------------------------------------------------------ sampling

    def _loop(self) -> None:
        deadline = time.monotonic() + self.interval_s
        while not self._stop.wait(max(0.0, deadline - time.monotonic())):
            try:
                self._tick()
            except Exception as exc:  # reported by stop(); a sampler must not kill the scan
                self._error = exc
                return
            deadline += self.interval_s
            now = time.monotonic()
            if deadline < now:  # fell behind (a loaded host): skip, do not burst
                deadline = now + self.interval_s

    def _pids(self) -> set[int]:
        if self._pids_provider is not None:
            return {int(pid) for pid in self._pids_provider()}
        assert self._root_pid is not None
        if not psutil.pid_exists(self._root_pid):
            return set()
        if not self._include_children:
            return {self._root_pid}
        found = _descendants_from_proc(self._root_pid)
        if found is not None:
            return found
        try:
            root = psutil.Process(self._root_pid)
            return {root.pid, *(child.pid for child in root.children(recursive=True))}
        except psutil.NoSuchProcess:
            return set()

    def _discover(self, *, first: bool = False) -> int:
        """Read every scan process; returns the summed RSS of the live ones."""
        pids = self._pids()
        rss_total = 0
        seen: set[tuple[int, float]] = set()
        with self._lock:
            by_pid = {key[0]: key for key, t in self._tracked.items() if t.alive}
            for pid in pids:
                key = by_pid.get(pid)
                tracked = self._tracked.get(key) if key is not None else None
                try:
                    if tracked is None or not tracked.proc.is_running():
                        proc = psutil.Process(pid)
                        key = (pid, proc.create_time())
                        reading = _read(proc)
                        # Already running at start: count from now; created since: from zero.
                        # A process the first reading did not list is new unless its start
                        # time is clearly before ours: psutil's create_time counts from the
                        # boot time in whole seconds, so it reads up to a second early, and a
                        # worker forked just after the start would lose its CPU till now.
                        born_before = first or key[1] < self._start_wall - _CREATE_TIME_SLACK_S
                        baseline = reading if born_before else _Reading(0.0, 0, 0, 0)
                        tracked = _Tracked(proc=proc, baseline=baseline, last=reading)
                        self._tracked[key] = tracked
                    else:
                        reading = _read(tracked.proc)
                        # Counters only grow; an exiting process can read as zero.
                        previous = tracked.last
                        tracked.last = _Reading(
                            cpu_s=max(previous.cpu_s, reading.cpu_s),
                            rss=reading.rss,
                            read=max(previous.read, reading.read),
                            write=max(previous.write, reading.write),
                        )
                except psutil.Error:
                    continue  # gone between listing and reading: its last reading stands
                assert key is not None
                tracked.alive = True
                seen.add(key)
                rss_total += tracked.last.rss
            for key, tracked in self._tracked.items():
                if key not in seen:
                    tracked.alive = False
        return rss_total

    def _cpu_seconds(self) -> float:
        with self._lock:
            return sum(t.last.cpu_s - t.baseline.cpu_s for t in self._tracked.values())

    def _tick(self) -> None:
        rss_total = self._discover()
        now_mono = time.monotonic()
        now = now_ms()
        cpu_s = self._cpu_seconds()
        busy, total = _host_busy_total()
        prev_busy, prev_total = self._prev_host
        # Busy time is a part of total time; float sums of the counters can put it
        # a hair above, which must not read as more than 100 %.
        host_percent = (
            min(100.0, 100.0 * max(0.0, busy - prev_busy) / (total - prev_total))
            if total > prev_total
            else 0.0
        )
        elapsed = now_mono - self._prev_mono
        proc_percent = 100.0 * max(0.0, cpu_s - self._prev_cpu_s) / elapsed if elapsed > 0 else 0.0
        self._prev_host, self._prev_mono, self._prev_cpu_s = (busy, total), now_mono, cpu_s
        labels = self._labels
        with self._lock:
            self._peak_rss = max(self._peak_rss, rss_total)
            self._host_cpu.append(host_percent)
            self._ticks += 1
            self._samples.extend(
                (
                    Sample(CPU_PERCENT_METRIC, dict(labels), now, proc_percent),
                    Sample(RSS_METRIC, dict(labels), now, float(rss_total)),
                    Sample(HOST_CPU_METRIC, dict(labels), now, host_percent),
                )
            )
