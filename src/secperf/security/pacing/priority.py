"""Low priority for scan worker processes: nice 19 and the idle I/O class.

``apply_low_priority`` runs in each worker as it starts (``workers.init_worker``);
``read_priority`` reads back what a process really runs with, for the pacing
record. Anything the OS does not offer is noted and skipped: a scan never
fails because its priority could not be lowered.

SCHED_IDLE (Linux) was tried on top of nice 19 and is off by default
(``idle_scheduler``): an idle-class task runs only on a core nothing else
wants, so on a host kept busy by other work a scan may wait without end, and
an unprivileged process cannot leave the class again when its deadline comes
(RLIMIT_NICE). Measured on a shared 2-core host under load (the scan budget
benchmark): a SCHED_IDLE scan took 5.3 times the unthrottled one, of which
only 56 of 181 s were throttling. Nice 19 keeps a small weight (15 against
1024 for nice 0), so the scan still progresses. The I/O class "idle" is
honoured by the CFQ and BFQ I/O schedulers (others ignore it).
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field
from typing import Any

import psutil

log = logging.getLogger(__name__)

#: The nice value of a low-priority worker (the lowest priority there is).
LOW_NICE = 19


@dataclass(frozen=True, slots=True)
class PriorityState:
    """What one process runs with: nice, I/O class, scheduler; and what could not be set."""

    nice: int | None = None
    io_class: str | None = None
    scheduler: str | None = None
    unsupported: tuple[str, ...] = field(default=())

    def to_document(self) -> dict[str, Any]:
        """The JSON form kept in the pacing record (``priority_applied``)."""
        return {
            "nice": self.nice,
            "io_class": self.io_class,
            "scheduler": self.scheduler,
            "unsupported": list(self.unsupported),
        }

    @classmethod
    def from_document(cls, data: dict[str, Any]) -> PriorityState:
        """The inverse of ``to_document`` (missing keys read as unknown)."""
        return cls(
            nice=data.get("nice"),
            io_class=data.get("io_class"),
            scheduler=data.get("scheduler"),
            unsupported=tuple(data.get("unsupported") or ()),
        )

    def describe(self) -> str:
        """``nice 19, I/O idle, SCHED_IDLE``: for the scan's output."""
        parts = []
        if self.nice is not None:
            parts.append(f"nice {self.nice}")
        if self.io_class is not None:
            parts.append(f"I/O {self.io_class}")
        if self.scheduler is not None:
            parts.append(self.scheduler)
        return ", ".join(parts) or "unknown"


def apply_low_priority(*, idle_scheduler: bool = False) -> list[str]:
    """Lower this process's CPU and I/O priority as far as it goes; returns what failed.

    Each step is tried on its own; a refusal (no such call on this OS, a
    container that forbids it) is logged at debug level and returned, so the
    caller can say so, and the worker runs on.
    """
    failed: list[str] = []
    try:
        os.nice(LOW_NICE - os.nice(0))
    except (OSError, AttributeError) as exc:
        failed.append(f"nice: {exc}")
    ionice = getattr(psutil.Process, "ionice", None)
    idle_class = getattr(psutil, "IOPRIO_CLASS_IDLE", None)
    if ionice is None or idle_class is None:
        failed.append("I/O priority: not offered on this system")
    else:
        try:
            psutil.Process().ionice(idle_class)
        except (psutil.Error, OSError, ValueError) as exc:
            failed.append(f"I/O priority: {exc}")
    if idle_scheduler:
        sched_idle = getattr(os, "SCHED_IDLE", None)
        if sched_idle is None or not sys.platform.startswith("linux"):
            failed.append("SCHED_IDLE: not offered on this system")
        else:
            try:
                os.sched_setscheduler(0, sched_idle, os.sched_param(0))
            except OSError as exc:
                failed.append(f"SCHED_IDLE: {exc}")
    for problem in failed:
        log.debug("scan worker: cannot lower its priority: %s", problem)
    return failed


def restore_normal_priority(pid: int) -> list[str]:
    """Raise worker ``pid`` back to nice 0 and the best-effort I/O class; returns what failed.

    Used at a scan's deadline. Lowering a nice value needs CAP_SYS_NICE (or a
    raised RLIMIT_NICE), so an unprivileged scan usually keeps nice 19: the
    refusal is returned for the pacing record. Leaving the idle I/O class for
    best-effort needs no privilege (only the real-time class does).
    """
    failed: list[str] = []
    try:
        proc = psutil.Process(pid)
    except psutil.Error:
        return ["process gone"]
    try:
        if proc.nice() > 0:
            proc.nice(0)
    except psutil.AccessDenied:
        failed.append("nice stays 19: raising a priority needs CAP_SYS_NICE")
    except (psutil.Error, OSError) as exc:
        failed.append(f"nice: {exc}")
    best_effort = getattr(psutil, "IOPRIO_CLASS_BE", None)
    if best_effort is not None and hasattr(proc, "ionice"):
        try:
            proc.ionice(best_effort)
        except (psutil.Error, OSError, ValueError) as exc:
            failed.append(f"I/O priority: {exc}")
    return failed


_SCHEDULERS = {
    getattr(os, name): name
    for name in ("SCHED_OTHER", "SCHED_BATCH", "SCHED_IDLE", "SCHED_FIFO", "SCHED_RR")
    if hasattr(os, name)
}
_IO_CLASSES = {
    getattr(psutil, f"IOPRIO_CLASS_{name}"): name.lower()
    for name in ("NONE", "RT", "BE", "IDLE")
    if hasattr(psutil, f"IOPRIO_CLASS_{name}")
}


def read_priority(pid: int) -> PriorityState:
    """What process ``pid`` runs with now (None for what this OS does not tell)."""
    unsupported: list[str] = []
    nice: int | None = None
    io_class: str | None = None
    scheduler: str | None = None
    try:
        proc = psutil.Process(pid)
        nice = int(proc.nice())
        try:
            io: object = proc.ionice()
            ioclass = getattr(io, "ioclass", io)
            io_class = _IO_CLASSES.get(int(ioclass), str(io)) if isinstance(ioclass, int) else None
        except (AttributeError, NotImplementedError, psutil.AccessDenied):
            unsupported.append("I/O priority")
    except psutil.Error:
        return PriorityState(unsupported=("process gone",))
    getscheduler = getattr(os, "sched_getscheduler", None)
    if getscheduler is None:
        unsupported.append("scheduler")
    else:
        try:
            scheduler = _SCHEDULERS.get(getscheduler(pid), str(getscheduler(pid)))
        except OSError:
            unsupported.append("scheduler")
    return PriorityState(nice, io_class, scheduler, tuple(unsupported))
