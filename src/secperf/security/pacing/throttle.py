"""Pausing and resuming a scan's worker processes (SIGSTOP / SIGCONT through psutil).

``WorkerThrottle.apply`` keeps ``keep_running`` of the given workers running
and stops the others; ``release`` resumes every worker it stopped.

A pool worker waiting for its next task holds the pool's call queue lock
(``multiprocessing.Queue.get`` reads under it): stopped there, it keeps every
other worker from taking a batch. Measured with a pool of two: stopping the
idle worker stalled the other in 7 of 10 tries. So while some workers are to
run, a worker seen waiting for a task (Linux: blocked in a pipe read,
``/proc/PID/wchan``) is not stopped, and one a pause stopped so is resumed:
it uses no CPU, and a later ``apply`` stops it once it runs a batch. Which
workers run also turns (``offset``, moved by the controller every half
second): where the kernel does not say what a worker waits for, or it takes a
task just as it is stopped, and when the batch a stopped worker holds is the
last one the scan waits for, the stall lasts until its turn comes.

A stopped worker is never left behind:

- the controller calls ``release`` whenever throttling ends, at the deadline,
  and when the scan ends in any way (``ScanPacer.scan_finished`` runs in a
  ``finally``: the end, an error, an interrupt, Ctrl-C);
- every throttle of the process is released at interpreter exit (atexit);
- a worker whose parent dies, even by SIGKILL, gets SIGKILL from the kernel
  (``workers._follow_parent`` sets PR_SET_PDEATHSIG), and SIGKILL ends a
  stopped process too;
- a worker pid no longer among the scan's (a pool replaced after a crash) is
  resumed at the next ``apply``, so its SIGTERM can take effect.

psutil's ``Process`` remembers its creation time, so a pid reused by another
process after a worker ended is never signalled.
"""

from __future__ import annotations

import atexit
import logging
import threading
import weakref
from collections.abc import Sequence
from pathlib import Path

import psutil

log = logging.getLogger(__name__)

_LIVE: weakref.WeakSet[WorkerThrottle] = weakref.WeakSet()


class WorkerThrottle:
    """Stops and resumes worker processes; remembers which it stopped."""

    def __init__(self) -> None:
        self._stopped: dict[int, psutil.Process] = {}
        #: Stopped while waiting for a task (by a pause, when no worker was to run).
        self._idle: set[int] = set()
        self._lock = threading.Lock()
        _LIVE.add(self)

    @property
    def stopped_pids(self) -> list[int]:
        """The workers this throttle holds stopped now."""
        with self._lock:
            return sorted(self._stopped)

    def apply(self, pids: Sequence[int], keep_running: int, offset: int = 0) -> None:
        """Run ``keep_running`` of ``pids`` (sorted, from index ``offset`` round), stop the rest.

        Workers stopped before and no longer to stop (or no longer in ``pids``) resume.
        While some are to run, a worker waiting for a task is left running (or
        resumed, if a pause stopped it so), as the module doc says.
        """
        ordered = sorted(set(pids))
        keep = max(0, min(keep_running, len(ordered)))
        running = {ordered[(offset + i) % len(ordered)] for i in range(keep)}
        to_stop = set(ordered) - running
        spare_idle = keep > 0
        with self._lock:
            woken: set[int] = set()
            for pid in list(self._stopped):
                if pid not in to_stop or (spare_idle and pid in self._idle):
                    woken.add(pid)
                    self._resume(pid)
            # One just woken for waiting for a task may not show it again yet.
            for pid in to_stop - set(self._stopped) - woken:
                idle = waits_for_task(pid)
                if idle and spare_idle:
                    continue
                try:
                    proc = psutil.Process(pid)
                    proc.suspend()
                except psutil.Error as exc:  # gone meanwhile: nothing to stop
                    log.debug("cannot pause scan worker %d: %s", pid, exc)
                    continue
                self._stopped[pid] = proc
                if idle:
                    self._idle.add(pid)

    def release(self) -> None:
        """Resume every worker this throttle stopped."""
        with self._lock:
            for pid in list(self._stopped):
                self._resume(pid)

    def _resume(self, pid: int) -> None:
        proc = self._stopped.pop(pid)
        self._idle.discard(pid)
        try:
            proc.resume()
        except psutil.Error as exc:  # ended meanwhile (killed with its pool): fine
            log.debug("scan worker %d was not resumed: %s", pid, exc)


def waits_for_task(pid: int) -> bool:
    """Whether ``pid`` is blocked reading a pipe (a pool worker waiting for its next task).

    False where the kernel does not say (no ``/proc``, or ``wchan`` hidden).
    """
    try:
        channel = Path(f"/proc/{pid}/wchan").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    return "pipe_read" in channel or "pipe_wait" in channel


@atexit.register
def _release_all() -> None:
    for throttle in list(_LIVE):
        throttle.release()
