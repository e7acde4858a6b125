"""The scan progress bar: files done of all, files per second and the time left.

One bar for ``secperf scan`` (on stderr, while it scans) and for the scans of
``secperf up`` (inside its live summary). ``ScanProgressFeed`` is the
validator's progress callback: it may be called from the scan's thread (Rich's
progress is thread-safe) and starts the rate afresh when the scan phase begins,
so that discovering files does not count as scanning them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

__all__ = [
    "EtaColumn",
    "FileRateColumn",
    "ScanProgressFeed",
    "scan_progress",
    "scan_progress_bar",
]

#: Bar cells: the whole line (label, bar, counts, rate, times) stays within 80 columns.
BAR_WIDTH = 20


class FileRateColumn(ProgressColumn):
    """Files per second, averaged over the last seconds of the scan."""

    def render(self, task: Task) -> Text:
        """``123 files/s``, or ``- files/s`` until there is a rate."""
        speed = task.finished_speed or task.speed
        if speed is None:
            return Text("- files/s", style="progress.data.speed")
        shown = f"{speed:.0f}" if speed >= 10 else f"{speed:.1f}"
        return Text(f"{shown} files/s", style="progress.data.speed")


class EtaColumn(ProgressColumn):
    """The time left at the current rate: ``ETA 0:42``, ``ETA -:--`` while unknown."""

    # Rich re-renders this column at most twice a second: an ETA that jumps is unreadable.
    max_refresh = 0.5

    def render(self, task: Task) -> Text:
        """``ETA m:ss`` (or ``h:mm:ss``); nothing once the task is finished."""
        if task.finished:
            return Text("")
        left = task.time_remaining
        if left is None or task.total is None:
            return Text("ETA -:--", style="progress.remaining")
        minutes, seconds = divmod(round(left), 60)
        hours, minutes = divmod(minutes, 60)
        clock = f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"
        return Text(f"ETA {clock}", style="progress.remaining")


def scan_progress_bar(
    console: Console | None = None,
    *,
    transient: bool = True,
    get_time: Callable[[], float] | None = None,
) -> Progress:
    """A Rich progress bar with the scan's columns (not started: ``with`` it, or draw it)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(bar_width=BAR_WIDTH),
        MofNCompleteColumn(),
        FileRateColumn(),
        TimeElapsedColumn(),
        EtaColumn(),
        console=console,
        transient=transient,
        get_time=get_time,
        # The rate follows the last 10 s, so a slow file early on is soon forgotten.
        speed_estimate_period=10.0,
    )


class ScanProgressFeed:
    """The validator's ``progress(phase, done, total)`` callback, feeding one task of a bar."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: TaskID = progress.add_task("discovering files", total=None)
        self.phase: str | None = None

    def __call__(self, phase: str, done: int, total: int) -> None:
        """Move the bar; a new phase (a new scan, or scanning after discovery) starts afresh."""
        if phase != self.phase:
            self.phase = phase
            label = "scanning files" if phase == "scan" else "discovering files"
            # A new task, not a reset one: columns cache what they drew per task, and
            # the finished discovery's blank ETA would stand for the scan's first half second.
            self.progress.remove_task(self.task)
            self.task = self.progress.add_task(label, total=total or None)
        self.progress.update(self.task, completed=done, total=total or None)

    @property
    def active(self) -> bool:
        """True while a scan is under way (discovering, or files left to scan)."""
        phase, task_id = self.phase, self.task
        if phase is None:
            return False
        # Read from the display's thread while the scan's thread may be swapping tasks.
        task = next((t for t in self.progress.tasks if t.id == task_id), None)
        return phase == "discover" or task is None or not task.finished


@contextmanager
def scan_progress(console: Console, enabled: bool) -> Iterator[ScanProgressFeed | None]:
    """A drawn progress bar and the callback that feeds it (None when not ``enabled``)."""
    if not enabled:
        yield None
        return
    bar = scan_progress_bar(console)
    feed = ScanProgressFeed(bar)
    with bar:
        yield feed
