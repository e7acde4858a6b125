"""Six real processes on one SQLite store, killed with SIGKILL at random and restarted.

The short form of the chaos benchmark (``benchmarks/bench_processes.py``, which
holds the run and its checks so that the two never drift apart): ``serve``,
``monitor`` at 1 s, two overlapping scan loops, an import loop and a
triage/ack/silence loop for a few seconds, random processes killed and started
again. Whatever a process reported committed must be in the store exactly
once, no output may say "database is locked", the file must pass
``PRAGMA integrity_check``, and no process that was not killed may end with an
exit code of failure.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from support.paths import REPO

# The benchmarks package sits at the repository root, beside tests/.
if str(REPO) not in sys.path:
    sys.path.append(str(REPO))  # last: it must shadow nothing

from benchmarks.bench_processes import run_chaos


@pytest.mark.slow
def test_processes_killed_at_random_lose_nothing_they_reported(tmp_path: Path) -> None:
    report = run_chaos(tmp_path, None, duration_s=12.0, seed=7)

    assert report.problems == [], report.summary()
    assert report.locked_errors == 0
    assert report.integrity == "ok"
    # The run did what it is for: processes were killed, and work was checked.
    assert sum(report.kills.values()) >= 3, report.summary()
    assert sum(report.checked.values()) > 0, report.summary()
    assert report.launches > len(report.kills), report.summary()
