"""The SIEM forwarder on a real bus and a real SQLite store, sending to a real rsyslog.

Every event arrives once and in order, in CEF and in ECS; an rsyslog stopped
for about ten seconds while events keep coming loses none and repeats none;
TLS through rsyslog's OpenSSL driver with a self-signed certificate.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from secperf import events as event_types
from secperf.bus.memory import AsyncEventBus
from secperf.config.sections.siem import SiemConfig
from secperf.events import (
    AlertChanged,
    Event,
    FindingTriaged,
    GateEvaluated,
    ScanCompleted,
    ScanStarted,
    ViolationDetected,
)
from secperf.model import (
    Alert,
    AlertState,
    Finding,
    GateResult,
    GateVerdict,
    MetricKind,
    Severity,
)
from secperf.siem.forwarder import SiemForwarder
from secperf.store import Store, StoreWriter
from support.factories import make_finding, make_scan_metrics
from support.rsyslog import (  # noqa: F401
    RsyslogFactory,
    RsyslogServer,
    rsyslog,
    self_signed_certificate,
)
from support.waiting import wait_for

pytestmark = pytest.mark.slow

SEQ_RE = re.compile(r'seq="(\d+)" key="((?:[^"\\]|\\.)*)"')


def _throttled(scan_id: str) -> Event:
    """A throttled-scan event: the real class when this secperf has it, else one by topic."""
    real: Any = getattr(event_types, "ScanThrottled", None)
    if real is not None:
        made: Event = real(
            scan_id=scan_id, target="shop", action="pause", reason="p95 +23 %", throttled_ms=1200.0
        )
        return made
    from dataclasses import dataclass
    from typing import ClassVar

    @dataclass(frozen=True, slots=True, kw_only=True)
    class ScanThrottled(Event):
        topic: ClassVar[str] = "security.scan.throttled"
        scan_id: str
        target: str
        action: str
        reason: str
        throttled_ms: float = 0.0
        guard: str | None = None

    return ScanThrottled(
        scan_id=scan_id, target="shop", action="pause", reason="p95 +23 %", throttled_ms=1200.0
    )


def _alert(state: AlertState) -> Alert:
    return Alert(
        fingerprint="a1",
        rule="HighLatency",
        state=state,
        severity=Severity.HIGH,
        kind=MetricKind.PERFORMANCE,
        labels={"job": "api"},
        annotations={"summary": "p95 latency over 250 ms"},
        value=312.0,
        fired_at_ms=1_700_000_000_000,
    )


def _config(tmp_path: Path, outputs: list[dict[str, Any]]) -> SiemConfig:
    fast = {"retry_initial": "50ms", "retry_max": "500ms", "connect_timeout": "2s"}
    return SiemConfig.model_validate(
        {"queue_dir": str(tmp_path / "queues"), "outputs": [{**fast, **o} for o in outputs]},
        context={"root": tmp_path},
    )


async def _with_forwarder(
    tmp_path: Path,
    config: SiemConfig,
    body: Callable[[AsyncEventBus, Store, SiemForwarder], Awaitable[None]],
) -> None:
    store_url = f"sqlite:///{tmp_path / 'secperf.db'}"
    store = Store.open(store_url)
    bus = AsyncEventBus()
    await bus.start()
    writer = StoreWriter(store)
    await writer.attach(bus)
    forwarder = SiemForwarder.from_config(config, store, bus)
    assert forwarder is not None
    await forwarder.start()
    try:
        await body(bus, store, forwarder)
    finally:
        await forwarder.stop()
        await bus.close(drain=True)
        await writer.close()
        store.close()


async def _scan(bus: AsyncEventBus, store: Store, scan_id: str, found: list[Finding]) -> None:
    """Publish a whole scan of target ``shop`` and wait until the store has it."""
    metrics = make_scan_metrics(scan_id, int(time.time() * 1000), found, target="shop")
    await bus.publish(ScanStarted(scan_id=scan_id, target="shop", scanners=("bandit", "secrets")))
    for finding in found:
        await bus.publish(ViolationDetected(scan_id=scan_id, finding=finding, is_new=True))
    await bus.publish(ScanCompleted(metrics=metrics))

    def stored() -> bool:
        record = store.scan(scan_id)
        return record is not None and record.complete

    await wait_for(stored)


def _messages(server: RsyslogServer, app: str | None = None) -> list[tuple[int, str, str]]:
    """(seq, key, whole line) of every message received, of ``app`` when given."""
    out: list[tuple[int, str, str]] = []
    for line in server.lines():
        if app is not None and f" {app} " not in line:
            continue
        match = SEQ_RE.search(line)
        assert match is not None, line
        out.append((int(match.group(1)), match.group(2), line))
    return out


def test_every_kind_arrives_once_in_order_in_cef_and_ecs(
    tmp_path: Path,
    rsyslog: RsyslogFactory,  # noqa: F811
) -> None:
    server = rsyslog()
    assert "End of config validation run" in server.validate()
    server.start()
    a = make_finding("B105", "src/a.py", Severity.HIGH, line=3)
    b = make_finding("B602", "src/b.py", Severity.MEDIUM, line=9)
    secret = make_finding(
        "aws-access-key",
        "conf/prod.env",
        Severity.CRITICAL,
        scanner="secrets",
        category="secret",
        snippet="AKI****B6N",
    )
    config = _config(
        tmp_path,
        [
            {"name": "cef", "address": f"tcp://127.0.0.1:{server.port}", "app_name": "sp-cef"},
            {
                "name": "ecs",
                "address": f"tcp://127.0.0.1:{server.port}",
                "format": "ecs",
                "app_name": "sp-ecs",
                "events": ["finding.fixed", "gate", "scan.throttled"],
            },
        ],
    )

    async def body(bus: AsyncEventBus, store: Store, forwarder: SiemForwarder) -> None:
        await _scan(bus, store, "scan-1", [a, b, secret])
        await _scan(bus, store, "scan-2", [a, secret])  # b fixed; a and the secret known
        await bus.publish(
            FindingTriaged(
                fingerprint=a.fingerprint, state="accepted_risk", author="ana", reason="ok"
            )
        )
        await bus.publish(
            AlertChanged(alert=_alert(AlertState.FIRING), previous_state=AlertState.PENDING)
        )
        await bus.publish(
            AlertChanged(alert=_alert(AlertState.RESOLVED), previous_state=AlertState.FIRING)
        )
        gate = GateResult(
            run_id="gate-1",
            target="shop",
            started_ms=1,
            finished_ms=2,
            verdict=GateVerdict.BLOCK,
            summary="1 new high finding",
        )
        await bus.publish(GateEvaluated(result=gate))
        await bus.publish(_throttled("scan-2"))
        await wait_for(lambda: len(server.lines()) >= 12, 30)
        # Nothing more comes: both queues are empty, nothing was refused.
        await wait_for(lambda: all(s.queued == 0 for s in forwarder.stats()))
        stats = {s.name: s for s in forwarder.stats()}
        assert stats["cef"].sent == 9 and stats["ecs"].sent == 3
        assert stats["cef"].dropped == stats["ecs"].dropped == 0

    asyncio.run(_with_forwarder(tmp_path, config, body))
    server.stop()

    cef = _messages(server, "sp-cef")
    kinds = [re.search(r"\|secperf\|[^|]+\|([a-z.]+)\|", line).group(1) for _, _, line in cef]  # type: ignore[union-attr]
    assert kinds == [
        "finding.new",
        "finding.new",
        "secret",
        "finding.fixed",
        "triage",
        "alert.firing",
        "alert.resolved",
        "gate",
        "scan.throttled",
    ]
    assert [seq for seq, _, _ in cef] == list(range(1, 10))
    assert len({key for _, key, _ in cef}) == 9
    fixed = cef[3][2]
    assert "filePath=src/b.py" in fixed and "cs1Label=ruleId cs1=B602" in fixed
    assert "cs4Label=preview cs4=AKI****B6N" in cef[2][2]
    assert "suser=ana" in cef[4][2]

    ecs = _messages(server, "sp-ecs")
    assert [seq for seq, _, _ in ecs] == [1, 2, 3]
    docs = [json.loads(line[line.index("{") :]) for _, _, line in ecs]
    assert [d["event"]["action"] for d in docs] == [
        "finding-fixed",
        "gate-evaluated",
        "scan-throttled",
    ]
    assert docs[0]["file"]["path"] == "src/b.py"
    assert docs[0]["rule"]["id"] == "B602"
    assert docs[1]["event"]["outcome"] == "failure"
    assert [d["event"]["sequence"] for d in docs] == [1, 2, 3]


def _failed_more_than(forwarder: SiemForwarder, count: int) -> Callable[[], bool]:
    return lambda: forwarder.stats()[0].failed > count


def test_an_rsyslog_outage_loses_nothing_and_repeats_nothing(
    tmp_path: Path,
    rsyslog: RsyslogFactory,  # noqa: F811
) -> None:
    server = rsyslog()
    server.start()
    config = _config(tmp_path, [{"name": "soc", "address": f"tcp://127.0.0.1:{server.port}"}])

    def triage(i: int) -> FindingTriaged:
        return FindingTriaged(
            fingerprint=f"fp{i:03d}", state="false_positive", author="ana", reason=f"r{i}"
        )

    async def body(bus: AsyncEventBus, store: Store, forwarder: SiemForwarder) -> None:
        for i in range(5):
            await bus.publish(triage(i))
        await wait_for(lambda: len(server.lines()) == 5, 30)
        await asyncio.to_thread(server.stop)  # SIGTERM, and it is gone
        # About ten seconds down, events coming all along; each waits for a failed try.
        down_until = time.monotonic() + 10
        i = 5
        while time.monotonic() < down_until:
            failed = forwarder.stats()[0].failed
            await bus.publish(triage(i))
            i += 1
            await wait_for(_failed_more_than(forwarder, failed), 30)
        stats = forwarder.stats()[0]
        assert stats.queued == i - 5
        assert stats.connected is False
        assert stats.last_error is not None and "cannot connect" in stats.last_error
        await asyncio.to_thread(server.start)
        total = i
        await wait_for(lambda: len(server.lines()) >= total, 60)
        await wait_for(lambda: forwarder.stats()[0].queued == 0)
        assert forwarder.stats()[0].sent == total

    asyncio.run(_with_forwarder(tmp_path, config, body))
    server.stop()
    received = _messages(server)
    reasons = [re.search(r"reason=(r\d+)", line).group(1) for _, _, line in received]  # type: ignore[union-attr]
    assert reasons == [f"r{n}" for n in range(len(received))]
    assert [seq for seq, _, _ in received] == list(range(1, len(received) + 1))
    assert len(received) > 6


def test_tls_to_rsyslog_with_a_self_signed_certificate(
    tmp_path: Path,
    rsyslog: RsyslogFactory,  # noqa: F811
) -> None:
    cert, key = self_signed_certificate(tmp_path)
    server = rsyslog(tls=(cert, key))
    server.validate()
    server.start()
    config = _config(
        tmp_path,
        [
            {"name": "trusted", "address": f"tls://127.0.0.1:{server.port}", "ca_file": str(cert)},
            # The system's CAs do not know a self-signed certificate: refused, retried.
            {"name": "untrusted", "address": f"tls://127.0.0.1:{server.port}", "app_name": "nope"},
        ],
    )

    async def body(bus: AsyncEventBus, store: Store, forwarder: SiemForwarder) -> None:
        for i in range(3):
            await bus.publish(
                FindingTriaged(fingerprint=f"fp{i}", state="open", author="ana", reason=f"r{i}")
            )
        await wait_for(lambda: len(server.lines()) >= 3, 30)
        # rsyslog may write a batch before this side has seen its acknowledgement.
        await wait_for(lambda: {s.name: s for s in forwarder.stats()}["trusted"].queued == 0)
        await wait_for(lambda: {s.name: s for s in forwarder.stats()}["untrusted"].failed > 0)
        stats = {s.name: s for s in forwarder.stats()}
        assert stats["trusted"].sent == 3
        assert stats["untrusted"].sent == 0 and stats["untrusted"].queued == 3
        assert "certificate" in (stats["untrusted"].last_error or "")

    asyncio.run(_with_forwarder(tmp_path, config, body))
    server.stop()
    assert [seq for seq, _, _ in _messages(server)] == [1, 2, 3]
    assert all(" nope " not in line for line in server.lines())
