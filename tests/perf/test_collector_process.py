"""The process collector on real child processes: found, measured, dropped on exit."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from secperf.events import now_ms
from secperf.model import Sample, sample_problem
from secperf.perf.collectors.process import ProcessCollector

# Busy half the time, writes a little, holds a few files open.
CHILD = """
import sys, time
handles = [open(sys.argv[1], "w") for _ in range(3)]
while True:
    end = time.monotonic() + 0.02
    while time.monotonic() < end:
        pass
    handles[0].write("x" * 4096)
    handles[0].flush()
    time.sleep(0.02)
"""

#: The running child and the marker on its command line.
Child = tuple[subprocess.Popen[bytes], str]


@pytest.fixture()
def child(tmp_path: Path) -> Iterator[Child]:
    marker = f"secperf-probe-{uuid.uuid4().hex[:12]}"
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path / "out.txt"), marker],
        stdout=subprocess.DEVNULL,
    )
    # Wait until the child has opened its files (its output file exists).
    deadline = time.monotonic() + 10
    while not (tmp_path / "out.txt").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield proc, marker
    finally:
        proc.kill()
        proc.wait()


def _of_pid(samples: Iterable[Sample], pid: int) -> defaultdict[str, list[float]]:
    grouped: defaultdict[str, list[float]] = defaultdict(list)
    for sample in samples:
        if sample.labels["pid"] == str(pid):
            grouped[sample.name].append(sample.value)
    return grouped


def _two_collections(
    collector: ProcessCollector, pause: float = 0.3
) -> tuple[list[Sample], list[Sample]]:
    first = collector.collect(now_ms())
    time.sleep(pause)
    return first, collector.collect(now_ms())


def test_found_by_pid_with_every_metric(child: Child) -> None:
    proc, _marker = child
    collector = ProcessCollector(pids=[proc.pid], include_self=False, include_children=False)
    first, second = _two_collections(collector)
    primed = _of_pid(first, proc.pid)
    assert "process_cpu_percent" not in primed  # the first reading only primes
    assert primed["memory_rss_bytes"][0] > 0
    got = _of_pid(second, proc.pid)
    assert got["process_cpu_percent"][0] > 0
    assert got["memory_rss_bytes"][0] > 1_000_000
    assert got["process_threads"][0] >= 1
    assert got["process_open_files"][0] >= 3 + 3  # stdio plus the three handles
    assert got["process_write_chars"][0] > 0
    assert got["process_read_bytes"][0] >= 0
    checked = now_ms()
    for sample in second:
        assert sample_problem(sample, checked) is None
        assert set(sample.labels) == {"host", "pid", "name"}
    assert {s.labels["pid"] for s in second} == {str(proc.pid)}


def test_found_by_name(child: Child) -> None:
    proc, _marker = child
    import psutil

    name = psutil.Process(proc.pid).name()
    collector = ProcessCollector(names=[name], include_self=False, include_children=False)
    got = collector.collect(now_ms())
    labelled = [s for s in got if s.labels["pid"] == str(proc.pid)]
    assert labelled
    assert {s.labels["name"] for s in labelled} == {name}


def test_found_by_cmdline_pattern_only_that_process(child: Child) -> None:
    proc, marker = child
    collector = ProcessCollector(
        cmdline_patterns=[rf"\b{marker}\b"], include_self=False, include_children=False
    )
    got = collector.collect(now_ms())
    assert {s.labels["pid"] for s in got} == {str(proc.pid)}


def test_own_process_and_children(child: Child) -> None:
    proc, _marker = child
    collector = ProcessCollector(include_self=True, include_children=True)
    got = collector.collect(now_ms())
    pids = {s.labels["pid"] for s in got}
    assert str(os.getpid()) in pids
    assert str(proc.pid) in pids
    only_self = ProcessCollector(include_self=True, include_children=False)
    assert {s.labels["pid"] for s in only_self.collect(now_ms())} == {str(os.getpid())}


def test_exited_process_is_dropped_and_a_new_one_picked_up(child: Child, tmp_path: Path) -> None:
    proc, marker = child
    collector = ProcessCollector(
        cmdline_patterns=[marker], include_self=False, include_children=False
    )
    assert {s.labels["pid"] for s in collector.collect(now_ms())} == {str(proc.pid)}
    proc.kill()
    proc.wait()
    assert collector.collect(now_ms()) == []
    assert collector._tracked == {}
    assert len(collector._rates) == 0
    newcomer = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path / "again.txt"), marker],
        stdout=subprocess.DEVNULL,
    )
    try:
        got = collector.collect(now_ms())
        assert {s.labels["pid"] for s in got} == {str(newcomer.pid)}
    finally:
        newcomer.kill()
        newcomer.wait()


def test_zombie_child_is_not_reported(tmp_path: Path) -> None:
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    # Not reaped yet: it stays a zombie until wait(); give it time to exit.
    import psutil

    deadline = time.monotonic() + 10
    while psutil.Process(zombie.pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "child did not exit"
        time.sleep(0.01)
    try:
        collector = ProcessCollector(pids=[zombie.pid], include_self=False, include_children=True)
        assert all(s.labels["pid"] != str(zombie.pid) for s in collector.collect(now_ms()))
    finally:
        zombie.wait()


def test_unknown_pid_gives_nothing() -> None:
    collector = ProcessCollector(pids=[2**22 + 12345], include_self=False, include_children=False)
    assert collector.collect(now_ms()) == []


def test_processes_of_other_users_are_read_where_allowed() -> None:
    # pid 1 belongs to root or to the container's init; whatever is denied is skipped.
    collector = ProcessCollector(pids=[1], include_self=False, include_children=False)
    got = collector.collect(now_ms())
    assert all(s.labels["pid"] == "1" for s in got)


def test_bad_configuration_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match=r"cmdline_patterns\[1\]"):
        ProcessCollector(cmdline_patterns=["ok", "("])
    with pytest.raises(ValueError, match="pid"):
        ProcessCollector(pids=[0])
