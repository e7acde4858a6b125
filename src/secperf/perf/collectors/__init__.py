"""Collectors: the system, chosen processes and Prometheus targets, sampled on intervals."""

from secperf.perf.collectors.interface import Collector
from secperf.perf.collectors.rates import CounterRate, RateTable

__all__ = ["Collector", "CounterRate", "RateTable"]
