"""The whole machine through psutil: CPU, load, memory, swap, disk and network I/O.

CPU % follows ``psutil.cpu_percent(interval=None)``: the busy share of the CPU
time elapsed since the previous call, the first call only priming. The
collector keeps its own previous CPU times rather than psutil's module-wide
ones, so two collectors (or any other caller of ``cpu_percent``) in the same
process do not shorten each other's window.

Disk and network counters come from psutil with ``nowrap=True``, which
corrects a wrapping per-device counter before devices are summed (the only
place it can be seen); ``CounterRate`` then turns the totals into per-second
rates, handling resets when a device goes away.

Sample names: ``cpu_percent`` (total, and per core with label ``cpu``),
``load_1m``, ``load_5m``, ``load_15m``, ``memory_percent``,
``memory_used_bytes``, ``memory_available_bytes``, ``memory_total_bytes``,
``swap_percent``, ``swap_used_bytes``; per second: ``disk_read_bytes``,
``disk_write_bytes``, ``disk_read_ops``, ``disk_write_ops``,
``net_sent_bytes``, ``net_recv_bytes`` (non-loopback total, and per interface
with label ``interface`` when ``per_nic``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any

import psutil

from secperf.model import MetricType, Sample
from secperf.perf.collectors.interface import Collector
from secperf.perf.collectors.rates import RateTable

#: Interfaces left out of the network totals besides loopback: virtual devices
#: whose traffic also crosses a physical one (bridges, veth pairs, ifb mirrors).
DEFAULT_EXCLUDED_NICS = r"^(lo\d*|ifb\d+|veth.*|docker\d+|br-.*|virbr\d+.*|cni\d+|flannel\..*)$"

_DISK_FIELDS = (
    ("read_bytes", MetricType.DISK_READ_BYTES.value),
    ("write_bytes", MetricType.DISK_WRITE_BYTES.value),
    ("read_count", "disk_read_ops"),
    ("write_count", "disk_write_ops"),
)
_NET_FIELDS = (
    ("bytes_sent", MetricType.NET_SENT_BYTES.value),
    ("bytes_recv", MetricType.NET_RECV_BYTES.value),
)


def _cpu_busy_and_total(prev: Any, cur: Any) -> tuple[float, float]:
    """Busy and total CPU seconds between two ``cpu_times`` readings (psutil's formula)."""
    deltas = {f: max(0.0, getattr(cur, f) - getattr(prev, f)) for f in cur._fields}
    total = sum(deltas.values())
    # Guest time is already counted in user/nice on Linux; iowait is idle time.
    total -= deltas.get("guest", 0.0) + deltas.get("guest_nice", 0.0)
    busy = total - deltas["idle"] - deltas.get("iowait", 0.0)
    return busy, total


def _percent(busy: float, total: float) -> float:
    return min(100.0, max(0.0, busy / total * 100.0))


class SystemCollector(Collector):
    """CPU (total and optionally per core), load, memory, swap, disk and network rates."""

    def __init__(
        self,
        *,
        interval_s: float = 1.0,
        per_cpu: bool = True,
        per_nic: bool = False,
        exclude_nics: str = DEFAULT_EXCLUDED_NICS,
        host: str | None = None,
        name: str = "system",
    ) -> None:
        super().__init__(name, interval_s, host)
        self.per_cpu = per_cpu
        self.per_nic = per_nic
        try:
            self._exclude_nics = re.compile(exclude_nics)
        except re.error as exc:
            raise ValueError(f"exclude_nics is not a valid regular expression: {exc}") from None
        self._rates = RateTable()
        self._prev_cpu: Any = None
        self._prev_per_cpu: list[Any] | None = None
        self._loopback: set[str] = set()
        self._known_nics: set[str] = set()

    def collect(self, now_ms: int) -> list[Sample]:
        """One reading of the machine; rates and CPU % appear from the second call on."""
        t = time.monotonic()
        out: list[Sample] = []
        self._cpu(out, now_ms)
        self._load(out, now_ms)
        self._memory(out, now_ms)
        self._disk(out, now_ms, t)
        self._network(out, now_ms, t)
        return out

    def _sample(
        self, out: list[Sample], name: str, value: float, now_ms: int, **labels: str
    ) -> None:
        labels["host"] = self.host
        out.append(Sample(name, labels, now_ms, float(value)))

    def _cpu(self, out: list[Sample], now_ms: int) -> None:
        cur = psutil.cpu_times()
        if self._prev_cpu is not None:
            busy, total = _cpu_busy_and_total(self._prev_cpu, cur)
            if total > 0:
                self._sample(out, MetricType.CPU_PERCENT.value, _percent(busy, total), now_ms)
        self._prev_cpu = cur
        if not self.per_cpu:
            return
        per = psutil.cpu_times(percpu=True)
        prev = self._prev_per_cpu
        # A changed CPU count (hot-plug) re-primes rather than mixing cores up.
        if prev is not None and len(prev) == len(per):
            for index, (before, after) in enumerate(zip(prev, per, strict=True)):
                busy, total = _cpu_busy_and_total(before, after)
                if total > 0:
                    self._sample(
                        out,
                        MetricType.CPU_PERCENT.value,
                        _percent(busy, total),
                        now_ms,
                        cpu=str(index),
                    )
        self._prev_per_cpu = list(per)

    def _load(self, out: list[Sample], now_ms: int) -> None:
        try:
            load1, load5, load15 = psutil.getloadavg()
        except (OSError, AttributeError):  # not every platform has a load average
            return
        self._sample(out, MetricType.LOAD_1M.value, load1, now_ms)
        self._sample(out, "load_5m", load5, now_ms)
        self._sample(out, "load_15m", load15, now_ms)

    def _memory(self, out: list[Sample], now_ms: int) -> None:
        mem = psutil.virtual_memory()
        self._sample(out, MetricType.MEMORY_PERCENT.value, mem.percent, now_ms)
        self._sample(out, "memory_used_bytes", mem.used, now_ms)
        self._sample(out, "memory_available_bytes", mem.available, now_ms)
        self._sample(out, "memory_total_bytes", mem.total, now_ms)
        try:
            swap = psutil.swap_memory()
        except (OSError, RuntimeError):  # no swap accounting (some containers)
            return
        self._sample(out, MetricType.SWAP_PERCENT.value, swap.percent, now_ms)
        self._sample(out, "swap_used_bytes", swap.used, now_ms)

    def _disk(self, out: list[Sample], now_ms: int, t: float) -> None:
        try:
            disk = psutil.disk_io_counters(perdisk=False)
        except (OSError, RuntimeError, NotImplementedError):
            disk = None
        if disk is None:  # no block devices visible (containers, some VMs)
            return
        for field, metric in _DISK_FIELDS:
            rate = self._rates.update(("disk", field), getattr(disk, field), t)
            if rate is not None:
                self._sample(out, metric, rate, now_ms)

    def _network(self, out: list[Sample], now_ms: int, t: float) -> None:
        try:
            nics = psutil.net_io_counters(pernic=True)
        except (OSError, RuntimeError):
            return
        if set(nics) - self._known_nics:
            self._refresh_loopback(nics)
        totals = dict.fromkeys((metric for _, metric in _NET_FIELDS), 0.0)
        any_rate = False
        for nic, counters in nics.items():
            if nic in self._loopback or self._exclude_nics.match(nic):
                continue
            for field, metric in _NET_FIELDS:
                rate = self._rates.update(("nic", nic, field), getattr(counters, field), t)
                if rate is None:
                    continue
                any_rate = True
                totals[metric] += rate
                if self.per_nic:
                    self._sample(out, metric, rate, now_ms, interface=nic)
        # Interfaces that disappeared must not keep a stale previous reading.
        self._rates.prune(
            lambda key: not (isinstance(key, tuple) and key[0] == "nic") or key[1] in nics
        )
        if any_rate:
            for metric, value in totals.items():
                self._sample(out, metric, value, now_ms)

    def _refresh_loopback(self, nics: Sequence[str] | dict[str, Any]) -> None:
        self._known_nics = set(nics)
        try:
            stats = psutil.net_if_stats()
        except (OSError, RuntimeError):
            stats = {}
        self._loopback = {
            nic for nic, st in stats.items() if "loopback" in getattr(st, "flags", "")
        }
        self._loopback.add("lo")
