"""The scan progress bar: files per second and ETA, from a driven clock and from a real scan."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from rich.console import Console

from secperf.cli.scan_progress import ScanProgressFeed, scan_progress_bar
from secperf.commands.scanning import run_scan
from secperf.config import load_config
from secperf.security.factory import ScanOptions


class Clock:
    """A clock the test moves by hand (Rich's progress takes ``get_time``)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def active(feed: ScanProgressFeed) -> bool:
    """Read through a call: the bar changes between reads (mypy would keep a narrowed value)."""
    return feed.active


def rendered(bar_console: Console, renderable: object) -> list[str]:
    bar_console.print(renderable)
    file = bar_console.file
    assert isinstance(file, io.StringIO)
    return file.getvalue().splitlines()


def test_rate_and_eta_follow_the_scanned_files_within_80_columns() -> None:
    out = Console(file=io.StringIO(), width=80, color_system=None)
    clock = Clock()
    bar = scan_progress_bar(out, get_time=clock)
    feed = ScanProgressFeed(bar)
    assert not active(feed)

    # Discovery found 600 files: that is not scanning, so it must not count as a rate.
    feed("discover", 600, 600)
    assert active(feed)
    clock.now += 2.0
    feed("scan", 0, 600)
    for done in (25, 50, 75, 100):
        clock.now += 1.0
        feed("scan", done, 600)
    lines = rendered(out, bar.get_renderable())
    text = "\n".join(lines)
    assert "scanning files" in text
    assert "100/600" in text
    assert "25 files/s" in text
    # 500 files left at 25 files/s: 20 s.
    assert "ETA 0:20" in text
    assert all(len(line) <= 80 for line in lines), lines
    assert active(feed)

    clock.now += 1.0
    feed("scan", 600, 600)
    assert not active(feed)
    # A rescan starts a new bar: the previous scan's rate and count are gone.
    feed("discover", 10, 10)
    feed("scan", 0, 10)
    task = bar.tasks[0]
    assert (task.completed, task.total, task.speed) == (0, 10, None)
    assert "ETA -:--" in "\n".join(rendered(out, bar.get_renderable()))


def test_a_real_scan_feeds_the_bar_to_the_end(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    (root / "pkg").mkdir(parents=True)
    for n in range(40):
        (root / "pkg" / f"m{n}.py").write_text(
            f"import subprocess\n\ndef run{n}(cmd):\n    return subprocess.call(cmd, shell=True)\n"
        )
    (root / "secperf.toml").write_text('[scan]\nscanners = ["bandit"]\ncache = false\n')
    loaded = load_config(None, root)
    bar = scan_progress_bar(Console(file=io.StringIO(), width=80))
    feed = ScanProgressFeed(bar)
    calls: list[tuple[str, int, int]] = []

    def progress(phase: str, done: int, total: int) -> None:
        calls.append((phase, done, total))
        feed(phase, done, total)

    report, _ = asyncio.run(run_scan(loaded, ScanOptions(root=root), progress=progress))
    assert report.metrics.files_scanned >= 40
    assert calls[0][0] == "discover"
    task = bar.tasks[0]
    assert task.description == "scanning files"
    assert task.total is not None and task.completed == task.total >= 40
    assert not active(feed)
