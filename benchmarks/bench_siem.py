"""SIEM out: how fast a scan's findings reach a syslog receiver.

A real ``AsyncEventBus`` carries one scan (``ScanStarted``, N
``ViolationDetected``, ``ScanCompleted``) to a ``SiemForwarder`` with one CEF
output and its SQLite queue in a temporary directory; a ``StoreWriter`` stores
the scan in SQLite as a server does. The receiver is a TCP server of this
benchmark reading RFC 6587 octet-counted frames; the time runs from
publishing ``ScanCompleted`` to the receiver holding all N messages: judging
new findings against the store, redaction, CEF formatting, one queue
transaction, and sending with the receiver's TCP acknowledgement awaited per
batch.

Anchor: the same N framed messages (already built) written with one
``sendall`` to the same receiver, timed the same way — the wire alone.
"""

from __future__ import annotations

import asyncio
import socket
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.common import Figure
from secperf.bus.memory import AsyncEventBus
from secperf.config.sections.siem import SiemConfig
from secperf.events import ScanCompleted, ScanStarted, ViolationDetected, now_ms
from secperf.model import Finding, SecurityMetrics, Severity
from secperf.siem.forwarder import SiemForwarder
from secperf.siem.syslog import frame
from secperf.store import Store, StoreWriter

AREA = "siem"


class _Receiver:
    """A TCP server counting octet-counted syslog frames; records when the count is reached."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.count = 0
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        buffer = b""
        with conn:
            while True:
                data = conn.recv(1 << 16)
                if not data:
                    return
                buffer += data
                frames = 0
                while True:
                    space = buffer.find(b" ")
                    if space < 0:
                        break
                    length = int(buffer[:space])
                    if len(buffer) < space + 1 + length:
                        break
                    buffer = buffer[space + 1 + length :]
                    frames += 1
                with self._cond:
                    self.count += frames
                    self._cond.notify_all()

    def wait_for(self, count: int, timeout: float = 120.0) -> float:
        with self._cond:
            if not self._cond.wait_for(lambda: self.count >= count, timeout):
                raise RuntimeError(f"only {self.count} of {count} messages arrived")
        return time.perf_counter()

    def close(self) -> None:
        self.listener.close()


def _finding(index: int) -> Finding:
    return Finding(
        fingerprint=f"bench-{index:06d}",
        rule_id="B105",
        scanner="bandit",
        severity=Severity.HIGH,
        message=f"Possible hardcoded password: 'hunter{index}'",
        path=f"src/module_{index % 50}.py",
        line=index % 400 + 1,
        category="sast",
        snippet=f"password = 'hunter{index}'",
    )


async def _forward(directory: Path, receiver: _Receiver, findings: int) -> float:
    store = Store.open(f"sqlite:///{directory / 'secperf.db'}")
    bus = AsyncEventBus()
    await bus.start()
    writer = StoreWriter(store)
    await writer.attach(bus)
    config = SiemConfig.model_validate(
        {
            "queue_dir": str(directory),
            "outputs": [{"name": "bench", "address": f"tcp://127.0.0.1:{receiver.port}"}],
        }
    )
    forwarder = SiemForwarder.from_config(config, store, bus)
    assert forwarder is not None
    await forwarder.start()
    try:
        scan_id = "bench-scan"
        await bus.publish(ScanStarted(scan_id=scan_id, target="bench"))
        for index in range(findings):
            await bus.publish(ViolationDetected(scan_id=scan_id, finding=_finding(index)))
        end = now_ms()
        metrics = SecurityMetrics(
            scan_id=scan_id,
            target="bench",
            started_ms=end - 1000,
            finished_ms=end,
            scan_duration_ms=1000.0,
            violations_found=findings,
            false_positive_rate=0.0,
            vulnerability_severity_counts={"high": findings},
            scan_coverage_percent=100.0,
        )
        start = time.perf_counter()
        await bus.publish(ScanCompleted(metrics=metrics))
        arrived = await asyncio.to_thread(receiver.wait_for, findings)
        return arrived - start
    finally:
        await forwarder.stop()
        await bus.close(drain=True)
        await writer.close()
        store.close()


def _wire(receiver: _Receiver, findings: int, already: int) -> float:
    message = b"<131>1 2025-01-01T00:00:00.000Z h secperf - finding.new - " + b"x" * 560
    payload = b"".join(frame(message) for _ in range(findings))
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", receiver.port)) as sock:
        sock.sendall(payload)
        arrived = receiver.wait_for(already + findings)
    return arrived - start


def run(quick: bool) -> list[Figure]:
    """Findings of one scan forwarded per second, against the wire alone."""
    findings = 500 if quick else 5000
    receiver = _Receiver()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            forwarded_s = asyncio.run(_forward(Path(tmp), receiver, findings))
        wire_s = _wire(receiver, findings, findings)
    finally:
        receiver.close()
    return [
        Figure(
            AREA,
            f"findings of one scan to a syslog receiver (CEF, {findings} findings)",
            findings / forwarded_s,
            "events/s",
            "no target",
            None,
            anchor_name="the same number of framed messages, one sendall",
            anchor_value=findings / wire_s,
            note=f"{forwarded_s * 1000:.0f} ms from ScanCompleted to the last message received",
        )
    ]
