"""secperf: security validation and performance monitoring, united."""

__version__ = "0.1.0"
