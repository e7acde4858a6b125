"""What recording a scan's outcome costs now that the store derives its security series.

``Store.record_scan_completed`` recounts the scan's stored findings with the
store's triage and writes the scan's security series (about 25 samples) with
its row. Figure: the median time to record the outcome of a scan with N
findings (a tenth of them triaged), on a real SQLite file. Anchor, same run,
same store: storing those N findings (``add_findings``), the write the
outcome always follows. Target: recording the outcome costs no more than
storing the findings did.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.common import Figure
from secperf.model import Finding, SecurityMetrics, Severity
from secperf.store import Store

AREA = "scan record"
SEVERITIES = (Severity.HIGH, Severity.MEDIUM, Severity.LOW)


def _findings(n: int, scan: int) -> list[Finding]:
    return [
        Finding(
            f"fp-{i:06d}",
            f"R{i % 40}",
            "bandit",
            SEVERITIES[i % 3],
            "finding",
            f"pkg/m{i % 200}.py",
            line=i % 500 + 1,
            category="secret" if i % 10 == 0 else "sast",
            properties={"scan": scan},
        )
        for i in range(n)
    ]


def _metrics(scan_id: str, finished_ms: int, found: list[Finding]) -> SecurityMetrics:
    counts: dict[str, int] = {}
    for f in found:
        counts[f.severity.value] = counts.get(f.severity.value, 0) + 1
    return SecurityMetrics(
        scan_id, "/repo", finished_ms - 2_000, finished_ms, 2_000.0, len(found), 0.0, counts, 99.0
    )


def run(quick: bool) -> list[Figure]:
    """Median milliseconds per recorded outcome, beside the findings write."""
    n = 2_000
    rounds = 5 if quick else 15
    record_ms: list[float] = []
    findings_ms: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "s.db") as store:
        now = int(time.time() * 1000)
        for fp in [f"fp-{i:06d}" for i in range(0, n, 10)]:
            store.set_triage(fp, "false_positive", "bench", "test data")
        for r in range(rounds):
            scan_id = f"scan-{r}"
            found = _findings(n, r)
            store.record_scan_started(scan_id, "/repo", now - 2_000, ["bandit"])
            start = time.perf_counter()
            store.add_findings(scan_id, found, [f.fingerprint for f in found[: n // 5]])
            findings_ms.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            stored = store.record_scan_completed(_metrics(scan_id, now + r, found), "ok")
            record_ms.append((time.perf_counter() - start) * 1000)
            assert stored.violations_found == n - n // 10, stored.violations_found
    value = statistics.median(record_ms)
    anchor = statistics.median(findings_ms)
    return [
        Figure(
            AREA,
            f"record a scan's outcome with its series ({n:,} findings)",
            value,
            "ms",
            "<= storing its findings",
            value <= anchor,
            anchor_name=f"add_findings ({n:,} findings)",
            anchor_value=anchor,
            note=f"median of {rounds}; recount with triage + ~25 samples written",
        )
    ]
