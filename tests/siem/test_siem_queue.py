"""The SIEM queue on disk, the [siem] configuration, and which events give which records."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from secperf.config import ConfigError, load_config
from secperf.events import AlertChanged, ScanCompleted, ScanStarted
from secperf.model import Alert, AlertState, Finding, MetricKind, Severity
from secperf.siem.queue import DiskQueue, QueueError
from secperf.siem.translate import RecordBuilder
from secperf.store import Store
from support.cli import run_cli
from support.factories import make_finding, make_scan_metrics


def _message(seq: int, size: int = 10) -> bytes:
    return f"{seq}:".encode().ljust(size, b"x")


def test_queue_keeps_order_and_numbers_across_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "siem-soc.db"
    queue = DiskQueue(path, max_events=100, max_bytes=10_000)
    seqs = [queue.append(f"k{i}", "triage", 0, _message) for i in range(5)]
    assert seqs == [1, 2, 3, 4, 5]
    queue.confirm(queue.peek(2))
    queue.close()

    again = DiskQueue(path, max_events=100, max_bytes=10_000)
    assert again.depth == 3
    assert [m.seq for m in again.peek()] == [3, 4, 5]
    assert [m.message for m in again.peek()] == [_message(3), _message(4), _message(5)]
    # Numbers only grow, also after everything was delivered.
    again.confirm(again.peek())
    assert again.append("k5", "triage", 0, _message) == 6
    again.close()


def test_queue_refuses_a_key_it_holds_or_delivered(tmp_path: Path) -> None:
    queue = DiskQueue(tmp_path / "q.db", max_events=100, max_bytes=10_000)
    assert queue.append("same", "gate", 0, _message) == 1
    assert queue.append("same", "gate", 0, _message) is None  # still queued
    queue.confirm(queue.peek())
    assert queue.append("same", "gate", 0, _message) is None  # delivered already
    assert queue.duplicates == 2 and queue.depth == 0
    queue.close()


def test_one_process_at_a_time_holds_a_queue(tmp_path: Path) -> None:
    path = tmp_path / "siem-soc.db"
    first = DiskQueue(path, max_events=10, max_bytes=1_000)
    with pytest.raises(QueueError, match="in use by another secperf process"):
        DiskQueue(path, max_events=10, max_bytes=1_000)
    first.close()
    DiskQueue(path, max_events=10, max_bytes=1_000).close()


def test_a_full_queue_drops_the_oldest_counted_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    by_count = DiskQueue(tmp_path / "count.db", max_events=3, max_bytes=10_000)
    with caplog.at_level(logging.WARNING, logger="secperf.siem.queue"):
        for i in range(5):
            by_count.append(f"k{i}", "triage", 0, _message)
    assert [m.seq for m in by_count.peek()] == [3, 4, 5]
    assert by_count.dropped == 2
    assert "dropped" in caplog.text and "count.db" in caplog.text
    by_count.close()

    by_bytes = DiskQueue(tmp_path / "bytes.db", max_events=100, max_bytes=25)
    for i in range(4):
        by_bytes.append(f"k{i}", "triage", 0, _message)
    assert [m.seq for m in by_bytes.peek()] == [3, 4] and by_bytes.size_bytes == 20
    # A message larger than the whole bound is refused, not queued.
    assert by_bytes.append("big", "triage", 0, lambda seq: b"y" * 26) is None
    assert by_bytes.dropped == 3 and by_bytes.depth == 2
    by_bytes.close()


@pytest.mark.slow
def test_queued_messages_survive_a_kill_of_the_process_writing_them(tmp_path: Path) -> None:
    path = tmp_path / "siem-soc.db"
    script = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        from secperf.siem.queue import DiskQueue, QueueError
        queue = DiskQueue(Path({str(path)!r}), max_events=100, max_bytes=100_000)
        for i in range(20):
            queue.append(f"k{{i}}", "triage", 0, lambda seq: b"message %d" % seq)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], timeout=120, check=False)
    assert done.returncode == -9
    queue = DiskQueue(path, max_events=100, max_bytes=100_000)
    assert [m.message for m in queue.peek()] == [b"message %d" % i for i in range(1, 21)]
    queue.close()


def test_siem_config_errors_name_the_key(tmp_path: Path) -> None:
    (tmp_path / "secperf.toml").write_text(
        "[[siem.outputs]]\n"
        'address = "udp://127.0.0.1:514"\n'
        'format = "leef"\n'
        'events = ["finding.new", "findings"]\n'
        'facility = "local8"\n'
        "[[siem.outputs]]\n"
        'address = "tcp://127.0.0.1:514"\n'
        'ca_file = "ca.pem"\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_config(project_dir=tmp_path)
    text = str(caught.value)
    for where in (
        "siem.outputs[0].address",
        "siem.outputs[0].format",
        "siem.outputs[0].events[1]",
        "siem.outputs[0].facility",
        "siem.outputs[1]",
    ):
        assert where in text, text
    assert "tls:// addresses only" in text


def test_config_check_names_the_second_output_with_a_name_already_used(tmp_path: Path) -> None:
    (tmp_path / "secperf.toml").write_text(
        '[[siem.outputs]]\naddress = "tcp://x:1"\n'
        '[[siem.outputs]]\naddress = "tcp://x:1"\nformat = "ecs"\n'
    )
    done = run_cli(["config", "check"], cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert (
        "siem.outputs[1].name: two outputs share the name 'tcp-x-1' (siem.outputs[0] and"
        " siem.outputs[1], named after its address); give each a distinct name"
    ) in " ".join(done.stderr.split())
    assert "expected a table" not in done.stderr and "Traceback" not in done.stderr


def test_config_check_refuses_tls_files_that_are_not_there(tmp_path: Path) -> None:
    (tmp_path / "client.pem").write_text("a client certificate")
    (tmp_path / "secperf.toml").write_text(
        '[[siem.outputs]]\nname = "soc"\naddress = "tls://127.0.0.1:6514"\n'
        'ca_file = "/nonexist"\ncert_file = "client.pem"\nkey_file = "client-key.pem"\n'
    )
    done = run_cli(["config", "check"], cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    text = " ".join(done.stderr.split())
    assert "siem.outputs[0].ca_file: no such file: '/nonexist'" in text
    assert "siem.outputs[0].key_file: no such file:" in text and "client-key.pem" in text
    assert "cert_file" not in text


def test_siem_config_defaults(tmp_path: Path) -> None:
    (tmp_path / "secperf.toml").write_text(
        '[[siem.outputs]]\naddress = "tls://siem.example.com:6514"\n'
    )
    output = load_config(project_dir=tmp_path).config.siem.outputs[0]
    assert output.is_tls and output.port == 6514 and output.format == "cef"
    assert len(output.events) == 8 and output.facility == 16  # local0
    assert output.queue_name == "tls-siem-example-com-6514"


# --------------------------------------------------------------------------- records


def _builder(tmp_path: Path) -> tuple[RecordBuilder, Store]:
    store = Store.open(f"sqlite:///{tmp_path / 'secperf.db'}")
    return RecordBuilder(store, store_wait_s=1.0), store


def _complete(
    store: Store, scan_id: str, found: list[Finding], started_ms: int, status: str = "ok"
) -> ScanCompleted:
    """Store a scan of target ``shop`` as the store writer would; its completion event."""
    metrics = make_scan_metrics(scan_id, started_ms + 2_000, found, target="shop")
    store.record_scan_started(scan_id, "shop", started_ms, ["bandit"])
    store.record_scan_findings(scan_id, found, set())
    store.record_scan_completed(metrics, status)
    return ScanCompleted(metrics=metrics, status=status)


def test_fixed_needs_a_whole_scan_and_partial_views_give_nothing(tmp_path: Path) -> None:
    builder, store = _builder(tmp_path)
    a = make_finding("B105", "a.py")
    b = make_finding("B602", "b.py")
    _complete(store, "s1", [a, b], 1_000_000)

    def scan(scan_id: str, started_ms: int, status: str, found: list[Finding]) -> list[str]:
        return [
            r.kind for r in builder.records(_complete(store, scan_id, found, started_ms, status))
        ]

    assert scan("s2", 2_000_000, "interrupted", [a]) == []  # saw part of the code: nothing
    assert scan("s3", 3_000_000, "failed", [a]) == []  # no new finding, and no fixed one
    assert scan("s4", 4_000_000, "ok", []) == ["finding.fixed"]  # a is gone from a whole scan
    store.close()


def test_a_scan_is_judged_by_its_stored_set_not_by_the_findings_announced(
    tmp_path: Path,
) -> None:
    """The bus announces only first-seen findings: the rest are still open, not fixed."""
    builder, store = _builder(tmp_path)
    a = make_finding("B105", "a.py")
    b = make_finding("B602", "b.py")
    assert builder.records(_complete(store, "s1", [a, b], 1_000_000)) != []
    # An unchanged scan announces no finding: nothing is new, nothing is fixed.
    builder.records(ScanStarted(scan_id="s2", target="shop"))
    assert builder.records(_complete(store, "s2", [a, b], 2_000_000)) == []
    # b fixed: exactly one record, for b.
    fixed = builder.records(_complete(store, "s3", [a], 3_000_000))
    assert [(r.kind, r.finding.fingerprint if r.finding else None) for r in fixed] == [
        ("finding.fixed", b.fingerprint)
    ]
    store.close()


def test_a_scan_the_store_never_completes_gives_nothing_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    builder, store = _builder(tmp_path)
    metrics = make_scan_metrics("lost", 2_000_000, [make_finding("B105", "a.py")], target="shop")
    with caplog.at_level(logging.ERROR, logger="secperf.siem.translate"):
        assert builder.records(ScanCompleted(metrics=metrics)) == []
    assert "scan lost cannot be judged new or fixed: it was not stored" in caplog.text
    store.close()


def test_a_scan_stored_while_the_builder_waits_is_judged(tmp_path: Path) -> None:
    """The writer commits a scan after the builder got its completion (NATS, same bus)."""
    builder, store = _builder(tmp_path)
    builder.store_wait_s = 30.0
    a = make_finding("B105", "a.py")
    b = make_finding("B602", "b.py")
    _complete(store, "s1", [a, b], 1_000_000)
    metrics = make_scan_metrics("s2", 2_002_000, [a], target="shop")
    writer = threading.Timer(0.3, lambda: _complete(store, "s2", [a], 2_000_000))
    writer.start()
    try:
        kinds = [r.kind for r in builder.records(ScanCompleted(metrics=metrics))]
    finally:
        writer.join()
    assert kinds == ["finding.fixed"]
    store.close()


def test_only_firing_and_resolved_alerts_give_records(tmp_path: Path) -> None:
    builder, store = _builder(tmp_path)

    def alert(state: AlertState, previous: AlertState) -> list[str]:
        made = Alert(
            fingerprint="a",
            rule="r",
            state=state,
            severity=Severity.HIGH,
            kind=MetricKind.SECURITY,
            fired_at_ms=None if state is AlertState.PENDING else 1,
        )
        return [r.kind for r in builder.records(AlertChanged(alert=made, previous_state=previous))]

    assert alert(AlertState.PENDING, AlertState.INACTIVE) == []
    assert alert(AlertState.FIRING, AlertState.PENDING) == ["alert.firing"]
    assert alert(AlertState.FIRING, AlertState.FIRING) == []
    assert alert(AlertState.RESOLVED, AlertState.FIRING) == ["alert.resolved"]
    store.close()
