"""Holding some workers of a real process pool never stalls the ones left running.

A pool worker waiting for its next task holds the pool's call queue lock: were
it stopped there, the running worker could take no further batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

import pytest

from secperf.security.pacing.throttle import WorkerThrottle, waits_for_task
from support.pacing import stopped
from support.waiting import wait_for

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc")


def _busy(seconds: float) -> int:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass
    return os.getpid()


@contextlib.contextmanager
def idle_pool() -> Iterator[tuple[ProcessPoolExecutor, list[int], int]]:
    """A pool of two idle workers, and the one waiting for a task (holding the lock)."""
    with ProcessPoolExecutor(max_workers=2) as pool:
        pool.submit(os.getpid).result(timeout=30)
        pids = sorted(p.pid for p in pool._processes.values() if p.pid is not None)
        assert len(pids) == 2

        def holder() -> int | None:
            waiting = [pid for pid in pids if waits_for_task(pid)]
            return waiting[0] if len(waiting) == 1 else None

        yield pool, pids, asyncio.run(wait_for(holder))


def test_a_worker_waiting_for_a_task_is_not_stopped_while_another_runs() -> None:
    with idle_pool() as (pool, pids, holder):
        throttle = WorkerThrottle()
        # Keep the other worker running, hold the one waiting for a task.
        other = next(pid for pid in pids if pid != holder)
        throttle.apply(pids, keep_running=1, offset=pids.index(other))
        try:
            assert throttle.stopped_pids == [] and stopped(pids) == []
            results = [pool.submit(_busy, 0.01) for _ in range(6)]
            assert all(future.result(timeout=30) in pids for future in results)
        finally:
            throttle.release()


def test_a_pause_stops_every_worker_and_easing_it_resumes_the_one_waiting_for_a_task() -> None:
    with idle_pool() as (pool, pids, holder):
        throttle = WorkerThrottle()
        try:
            throttle.apply(pids, keep_running=0)
            assert throttle.stopped_pids == pids
            asyncio.run(wait_for(lambda: sorted(stopped(pids)) == pids))
            other = next(pid for pid in pids if pid != holder)
            throttle.apply(pids, keep_running=1, offset=pids.index(other))
            assert throttle.stopped_pids == []
            results = [pool.submit(_busy, 0.01) for _ in range(6)]
            assert all(future.result(timeout=30) in pids for future in results)
        finally:
            throttle.release()
