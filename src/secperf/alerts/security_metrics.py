"""Moved to ``secperf.security.series`` (the store derives the series now); kept for imports."""

from __future__ import annotations

from secperf.security.series import CATEGORIES, FindingTally, scan_series, security_samples

__all__ = ["CATEGORIES", "FindingTally", "scan_series", "security_samples"]
