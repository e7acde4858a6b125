"""A process killed with SIGKILL in the middle of ingest loses nothing it committed."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from secperf.model import Sample
from secperf.store import Store
from secperf.store.codec import decode_chunk

SERIES = 10
PER_SERIES = 200  # samples per series per batch

INGEST = textwrap.dedent(
    f"""
    import sys, time
    from secperf.model import Sample
    from secperf.store import Store

    store = Store.open(sys.argv[1], compact_after=4)
    base = time.time_ns() // 1_000_000 - 30 * 86_400_000
    committed = 0
    batch = 0
    while True:
        samples = [
            Sample("crash_test", {{"series": str(s)}}, base + (batch * {PER_SERIES} + i) * 1000,
                   float(batch * {PER_SERIES} + i))
            for s in range({SERIES})
            for i in range({PER_SERIES})
        ]
        result = store.write_samples(samples)
        assert result.rejected == 0, result.errors
        committed += result.accepted
        batch += 1
        if batch % 7 == 0:
            store.compact()
        print(committed, base, flush=True)
    """
)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_mid_ingest_keeps_every_committed_sample(tmp_path: Path) -> None:
    script = tmp_path / "ingest.py"
    script.write_text(INGEST)
    db = tmp_path / "crash.db"
    proc = subprocess.Popen(
        [sys.executable, str(script), str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    committed = 0
    base = 0
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            committed, base = map(int, line.split())
            if committed >= 60 * SERIES * PER_SERIES:
                break
        os.kill(proc.pid, signal.SIGKILL)  # while it keeps ingesting
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read() if proc.stderr else ""
    assert committed >= 60 * SERIES * PER_SERIES

    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with Store.open(db) as store:
        per_series = committed // SERIES
        for info in store.series("crash_test"):
            seen: Counter[int] = Counter()
            with store.engine.connect() as conn:
                rows = conn.exec_driver_sql(
                    "SELECT data FROM chunks WHERE series_id = ?", (info.id,)
                ).all()
            for (data,) in rows:
                ts, _ = decode_chunk(data)
                seen.update(ts.tolist())
            assert max(seen.values()) == 1, "a sample is stored twice"
            expected = {base + k * 1000 for k in range(per_series)}
            assert expected <= seen.keys(), f"series {info.labels} lost committed samples"
            points = store.query("crash_test", info.labels, base, base + per_series * 1000)[0]
            assert points.values[:per_series].tolist() == [float(k) for k in range(per_series)]
        assert len(store.series("crash_test")) == SERIES
        # The database still takes writes after the crash.
        later = Sample("crash_test", {"series": "0"}, base + 10**9, 1.0)
        assert store.write_samples([later], now_ms=base + 10**9).accepted == 1
