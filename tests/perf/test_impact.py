"""The scan impact sampler against real child processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from secperf.model import sample_problem
from secperf.perf.impact import ScanImpactError, ScanImpactSampler

PY = sys.executable
MB = 1024 * 1024

# Burns CPU time rather than wall time, so a loaded host does not shorten the burn.
BURN = "import time\nwhile time.process_time() < {seconds}: pass\n"

POOL = textwrap.dedent(
    """
    import subprocess, sys
    burn = "import time\\nwhile time.process_time() < 0.3: pass\\n"
    workers = [subprocess.Popen([sys.executable, "-c", burn]) for _ in range(2)]
    for w in workers:
        w.wait()
    """
)

HAS_IO = hasattr(psutil.Process(), "io_counters")


def test_cpu_of_a_child_process_is_counted() -> None:
    interval = 0.05
    started = time.monotonic()
    with ScanImpactSampler("scan-cpu", interval_s=interval) as sampler:
        subprocess.run([PY, "-c", BURN.format(seconds=0.6)], check=True)
    elapsed = time.monotonic() - started
    cost = sampler.cost
    assert cost is not None
    assert cost.scan_id == "scan-cpu"
    assert cost.cpu_seconds > 0.3
    assert cost.started_ms <= cost.finished_ms
    expected = elapsed / interval
    assert 0.3 * expected <= cost.samples <= expected + 2
    assert sampler.processes_seen >= 2  # this process and the child
    assert cost.host_cpu_percent_avg is not None and cost.host_cpu_percent_max is not None
    assert 0 <= cost.host_cpu_percent_avg <= cost.host_cpu_percent_max <= 100

    samples = sampler.samples
    names = {s.name for s in samples}
    assert names == {"scan_process_cpu_percent", "scan_process_rss_bytes", "host_cpu_percent"}
    assert len(samples) == 3 * cost.samples
    assert all(s.labels == {"scan_id": "scan-cpu"} for s in samples)
    now_ms = int(time.time() * 1000)
    assert all(sample_problem(s, now_ms) is None for s in samples)
    assert max(s.value for s in samples if s.name == "scan_process_cpu_percent") > 50


def test_new_workers_are_discovered_each_tick() -> None:
    with ScanImpactSampler("scan-pool", interval_s=0.05) as sampler:
        subprocess.run([PY, "-c", POOL], check=True)
    cost = sampler.cost
    assert cost is not None
    # The two grandchildren started after the sampler and burned 0.3 s each.
    assert sampler.processes_seen >= 4
    assert cost.cpu_seconds > 0.4


def test_peak_rss_of_given_pids() -> None:
    child = subprocess.Popen(
        [PY, "-c", f"import time\nb = b'x' * {50 * MB}\ntime.sleep(0.6)\n"],
    )
    try:
        sampler = ScanImpactSampler("scan-mem", pids_provider=lambda: [child.pid], interval_s=0.05)
        sampler.start()
        child.wait(timeout=30)
        cost = sampler.stop()
    finally:
        child.kill()
        child.wait()
    assert cost.peak_rss_bytes > 50 * MB
    assert sampler.processes_seen == 1
    rss = [s.value for s in sampler.samples if s.name == "scan_process_rss_bytes"]
    assert max(rss) == cost.peak_rss_bytes
    assert min(rss) < 50 * MB  # the child is gone at the end: its RSS no longer counts


def test_written_and_read_bytes(tmp_path: Path) -> None:
    if not HAS_IO:
        pytest.skip("psutil offers no per-process I/O counters on this platform")
    target = tmp_path / "out.bin"
    script = (
        f"data = b'y' * {8 * MB}\n"
        f"open({str(target)!r}, 'wb').write(data)\n"
        f"assert len(open({str(target)!r}, 'rb').read()) == {8 * MB}\n"
    )
    with ScanImpactSampler("scan-io", interval_s=0.05) as sampler:
        subprocess.run([PY, "-c", script], check=True)
    cost = sampler.cost
    assert cost is not None
    assert target.stat().st_size == 8 * MB
    assert cost.write_bytes >= 8 * MB
    assert cost.read_bytes >= 8 * MB


def test_process_that_existed_before_start_counts_from_start() -> None:
    child = subprocess.Popen([PY, "-c", BURN.format(seconds=0.5) + "import time\ntime.sleep(2)\n"])
    try:
        # Let the child burn its CPU before sampling starts: none of it is the scan's.
        deadline = time.monotonic() + 30
        proc = psutil.Process(child.pid)
        while sum(proc.cpu_times()[:2]) < 0.45 and time.monotonic() < deadline:
            time.sleep(0.05)
        with ScanImpactSampler(
            "scan-idle", pids_provider=lambda: [child.pid], interval_s=0.05
        ) as sampler:
            time.sleep(0.3)
    finally:
        child.kill()
        child.wait()
    cost = sampler.cost
    assert cost is not None
    assert cost.cpu_seconds < 0.2


def test_misuse_is_reported() -> None:
    with pytest.raises(ValueError, match="not both"):
        ScanImpactSampler("x", root_pid=1, pids_provider=list)
    with pytest.raises(ValueError, match="interval_s must be positive"):
        ScanImpactSampler("x", interval_s=0)
    with pytest.raises(ScanImpactError, match="never started"):
        ScanImpactSampler("x").stop()
    sampler = ScanImpactSampler("x", interval_s=0.05)
    sampler.start()
    with pytest.raises(ScanImpactError, match="already started"):
        sampler.start()
    first = sampler.stop()
    assert sampler.stop() is first


def test_failing_pid_provider_is_reported_on_stop() -> None:
    calls = {"n": 0}

    def provider() -> list[int]:
        calls["n"] += 1
        if calls["n"] > 1:
            raise RuntimeError("worker registry unavailable")
        return []

    sampler = ScanImpactSampler("x", pids_provider=provider, interval_s=0.02)
    sampler.start()
    time.sleep(0.1)
    with pytest.raises(ScanImpactError, match="worker registry unavailable"):
        sampler.stop()


def test_a_process_started_right_after_the_start_counts_from_zero() -> None:
    # psutil dates a process from the boot time in whole seconds, up to a second
    # early: a worker forked just after the start must not look older than the scan.
    sampler = ScanImpactSampler("scan-fresh", interval_s=30.0).start()  # no tick before stop
    child = subprocess.Popen([PY, "-c", BURN.format(seconds=0.4) + "import time\ntime.sleep(30)\n"])
    try:
        proc = psutil.Process(child.pid)
        deadline = time.monotonic() + 30
        while sum(proc.cpu_times()[:2]) < 0.35 and time.monotonic() < deadline:
            time.sleep(0.05)
        cost = sampler.stop()  # its first reading of the child, which has burned its CPU
    finally:
        child.kill()
        child.wait()
    assert cost.cpu_seconds > 0.3
