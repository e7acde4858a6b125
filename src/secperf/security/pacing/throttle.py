"""Pausing and resuming a scan's worker processes (SIGSTOP / SIGCONT through psutil).

``WorkerThrottle.apply`` keeps the first ``keep_running`` of the given workers
running and stops the others; ``release`` resumes every worker it stopped.
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

import psutil

log = logging.getLogger(__name__)

_LIVE: weakref.WeakSet[WorkerThrottle] = weakref.WeakSet()


class WorkerThrottle:
    """Stops and resumes worker processes; remembers which it stopped."""

    def __init__(self) -> None:
        self._stopped: dict[int, psutil.Process] = {}
        self._lock = threading.Lock()
        _LIVE.add(self)

    @property
    def stopped_pids(self) -> list[int]:
        """The workers this throttle holds stopped now."""
        with self._lock:
            return sorted(self._stopped)

    def apply(self, pids: Sequence[int], keep_running: int) -> None:
        """Run the first ``keep_running`` of ``pids`` (sorted), stop the rest; resume others."""
        ordered = sorted(set(pids))
        to_stop = set(ordered[max(0, keep_running) :])
        with self._lock:
            for pid in [p for p in self._stopped if p not in to_stop]:
                self._resume(pid)
            for pid in to_stop - set(self._stopped):
                try:
                    proc = psutil.Process(pid)
                    proc.suspend()
                except psutil.Error as exc:  # gone meanwhile: nothing to stop
                    log.debug("cannot pause scan worker %d: %s", pid, exc)
                    continue
                self._stopped[pid] = proc

    def release(self) -> None:
        """Resume every worker this throttle stopped."""
        with self._lock:
            for pid in list(self._stopped):
                self._resume(pid)

    def _resume(self, pid: int) -> None:
        proc = self._stopped.pop(pid)
        try:
            proc.resume()
        except psutil.Error as exc:  # ended meanwhile (killed with its pool): fine
            log.debug("scan worker %d was not resumed: %s", pid, exc)


@atexit.register
def _release_all() -> None:
    for throttle in list(_LIVE):
        throttle.release()
