"""A process on a pseudo-terminal: what a user at a terminal would see, and Ctrl-C typed there.

Rich draws live views only on a terminal; a pipe gets plain output. Tests of
the live views run the real command on a pseudo-terminal (``pty``) and read
what it draws, without colours and cursor movements.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Callable
from pathlib import Path

#: Colours and cursor movements Rich writes to a terminal.
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


class Terminal:
    """A process on a pseudo-terminal of 80 columns, its output read as it comes."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str]) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 80, 0, 0))
        self.master = master
        self.proc = subprocess.Popen(
            args,
            cwd=cwd,
            env=env,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            # A session of its own with the terminal as its controlling one, so that
            # Ctrl-C typed on it is the kernel's SIGINT to the process, as in a shell.
            start_new_session=True,
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
        )
        os.close(slave)
        self._raw = bytearray()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # EIO: the process closed its side
                return
            if not data:
                return
            with self._lock:
                self._raw += data

    def text(self) -> str:
        """Everything shown so far, without colours and cursor movements."""
        with self._lock:
            raw = bytes(self._raw)
        return ANSI.sub("", raw.decode("utf-8", "replace"))

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = 60.0) -> str:
        """The output once ``predicate`` holds for it (polled until ``timeout``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            shown = self.text()
            if predicate(shown):
                return shown
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"not shown in time (exit {self.proc.poll()}):\n{self.text()}")

    def type(self, keys: bytes) -> None:
        """Type ``keys`` on the terminal (``b"\\x03"`` is Ctrl-C)."""
        os.write(self.master, keys)

    def close(self) -> str:
        """Wait for the process to end (kill it if it does not); the whole output."""
        try:
            self.proc.wait(timeout=60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self._reader.join(timeout=10)
            os.close(self.master)
        return self.text()
