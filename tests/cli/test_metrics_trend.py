"""`secperf metrics query`'s trend column draws change, not rounding."""

from __future__ import annotations

import json
import time
from pathlib import Path

from secperf.model import Sample
from secperf.store import Store
from support.cli import run_cli

MINUTE_MS = 60_000


def test_a_constant_series_draws_flat_though_its_bucket_averages_differ_in_the_last_bits(
    tmp_path: Path,
) -> None:
    (tmp_path / "secperf.toml").write_text('[store]\nurl = "data/secperf.db"\n')
    now = time.time_ns() // 1_000_000
    start = now - now % MINUTE_MS - 5 * MINUTE_MS
    # 7 everywhere: one sample in some minutes, six in others (a bucket's mean
    # comes out as 7.000000000000001), and a changing series beside it for contrast.
    samples = [
        Sample("queue_depth", {"job": "flat"}, start + minute * MINUTE_MS + i * 1000, 7.0)
        for minute in range(4)
        for i in range(1 if minute % 2 else 6)
    ] + [
        Sample("queue_depth", {"job": "rising"}, start + minute * MINUTE_MS, 0.1 * (minute + 1))
        for minute in range(4)
    ]
    with Store.open(tmp_path / "data" / "secperf.db") as store:
        assert store.write_samples(samples).rejected == 0

    raw = run_cli(
        ["metrics", "query", "queue_depth", "--since", "10m", "--step", "1m", "--json"],
        cwd=tmp_path,
    )
    assert raw.returncode == 0, raw.stderr
    by_job = {s["labels"]["job"]: s for s in json.loads(raw.stdout)["series"]}
    flat_averages = by_job["flat"]["avg"]
    # The case this test is about: averages of equal values that are not all equal.
    assert len(flat_averages) == 4 and len(set(flat_averages)) > 1, flat_averages
    assert max(flat_averages) - min(flat_averages) < 1e-12

    table = run_cli(
        ["metrics", "query", "queue_depth", "--since", "10m", "--step", "1m"], cwd=tmp_path
    )
    assert table.returncode == 0, table.stderr
    rows = {line.split()[0]: line.split() for line in table.stdout.splitlines() if "job=" in line}
    assert rows["job=flat"][-1] == "▁▁▁▁"
    assert rows["job=rising"][-1] == "▁▃▆█"
