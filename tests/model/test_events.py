"""Every event round-trips through JSON exactly; bad JSON gets a clear error."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secperf.events import (
    EVENT_TYPES,
    AlertAcknowledged,
    AlertChanged,
    BaselineUpdated,
    BenchmarksRecorded,
    Event,
    EventDecodeError,
    FindingTriaged,
    GateEvaluated,
    MetricsRecorded,
    ScanCompleted,
    ScanStarted,
    ScanThrottled,
    SilenceAdded,
    SilenceExpired,
    ViolationDetected,
    decode_event,
    encode_event,
    event_from_dict,
    event_to_dict,
)
from secperf.model import (
    Alert,
    AlertState,
    ConditionStatus,
    Finding,
    GateCondition,
    GateResult,
    GateVerdict,
    MetricKind,
    Sample,
    SecurityMetrics,
    Severity,
)

METRICS = SecurityMetrics(
    scan_id="scan-1",
    target="/repo",
    started_ms=1_000,
    finished_ms=2_500,
    scan_duration_ms=1_500.25,
    violations_found=3,
    false_positive_rate=0.25,
    vulnerability_severity_counts={"high": 2, "low": 1},
    scan_coverage_percent=97.5,
    files_scanned=40,
    files_skipped=1,
    lines_scanned=4_000,
    new_findings=1,
    scanner_durations_ms={"bandit": 900.5, "secrets": 300.0},
    skip_reasons={"binary": 1},
    cache_hit_rate=0.5,
)
FINDING = Finding(
    fingerprint="f" * 32,
    rule_id="B602",
    scanner="bandit",
    severity=Severity.HIGH,
    message="subprocess call with shell=True identified",
    path="app/run.py",
    line=12,
    end_line=13,
    column=4,
    confidence="high",
    cwe=78,
    snippet="subprocess.call(cmd, shell=True)",
    properties={"more": ["a", 1, None], "nested": {"k": 2.5}},
)
ALERT = Alert(
    fingerprint="abc",
    rule="HighCpu",
    state=AlertState.FIRING,
    severity=Severity.CRITICAL,
    kind=MetricKind.PERFORMANCE,
    labels={"host": "a"},
    annotations={"summary": "CPU above 90 %"},
    value=93.5,
    active_since_ms=10,
    fired_at_ms=20,
    updated_ms=20,
)
GATE = GateResult(
    run_id="g1",
    target="/repo",
    started_ms=1,
    finished_ms=9,
    verdict=GateVerdict.BLOCK,
    conditions=(
        GateCondition("new_high_findings", "security", ConditionStatus.BLOCK, 2.0, 0.0, "2 new"),
        GateCondition("bench_regression", "performance", ConditionStatus.PASS, "1.2%", "5%"),
    ),
    commit="deadbeef",
)

EXAMPLES: list[Event] = [
    ScanStarted(scan_id="scan-1", target="/repo", scanners=("bandit", "secrets"), files_total=41),
    ScanCompleted(metrics=METRICS, status="partial", error="semgrep: not installed"),
    ViolationDetected(scan_id="scan-1", finding=FINDING, is_new=False),
    BaselineUpdated(baseline="main", fingerprints=10, added=2, removed=1, author="ana"),
    MetricsRecorded(samples=(Sample("cpu_percent", {"host": "a", "cpu": "0"}, 5, 12.5),)),
    AlertChanged(alert=ALERT, previous_state=AlertState.PENDING),
    GateEvaluated(result=GATE),
    FindingTriaged(
        fingerprint="f" * 32, state="accepted_risk", author="ana", reason="test code", expires_ms=9
    ),
    AlertAcknowledged(alert=ALERT, author="ana", note="looking"),
    SilenceAdded(
        silence_id=3,
        matchers=({"name": "alertname", "value": "HighCpu", "op": "="},),
        starts_ms=1,
        ends_ms=2,
        author="ana",
        reason="maintenance",
    ),
    SilenceExpired(silence_id=3, ends_ms=5),
    BenchmarksRecorded(names=("test_parse", "test_render"), results=4),
    ScanThrottled(
        scan_id="scan-1",
        target="/repo",
        action="pause",
        reason='response_time_ms{job="api"} +23 % over its level before the scan (budget 10 %)',
        throttled_ms=1234.0,
        guard='response_time_ms{job="api"}',
    ),
]


def test_examples_cover_every_event_type() -> None:
    assert {type(e).__name__ for e in EXAMPLES} == set(EVENT_TYPES)


@pytest.mark.parametrize("event", EXAMPLES, ids=lambda e: type(e).__name__)
def test_json_round_trip(event: Event) -> None:
    raw = encode_event(event)
    back = decode_event(raw)
    assert back == event
    assert type(back) is type(event)
    assert json.loads(raw)["topic"] == type(event).topic
    assert event_from_dict(json.loads(json.dumps(event_to_dict(event)))) == event


def test_events_have_unique_time_ordered_ids_and_timestamps() -> None:
    first = ScanStarted(scan_id="a", target=".")
    second = ScanStarted(scan_id="b", target=".")
    assert first.id != second.id
    assert len(first.id) == 24
    assert first.ts_ms > 1_700_000_000_000
    assert first.id[:12] <= second.id[:12]


def test_only_metric_batches_are_droppable() -> None:
    droppable = {name for name, cls in EVENT_TYPES.items() if cls.droppable}
    assert droppable == {"MetricsRecorded"}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"type": "Nope", "event": {}}', "unknown event type 'Nope'"),
        (b'{"type": "ScanStarted", "event": {"target": "."}}', "invalid ScanStarted: scan_id"),
        (b'{"type": "ScanStarted", "event": null}', "invalid ScanStarted"),
        (b"\xff\xfe", "not valid JSON"),
    ],
)
def test_bad_json_gives_a_clear_error(raw: bytes, message: str) -> None:
    with pytest.raises(EventDecodeError, match=message):
        decode_event(raw)


label_text = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_ -/.", max_size=12)


@given(
    st.lists(
        st.builds(
            Sample,
            name=st.from_regex(r"[a-z_][a-z0-9_]{0,20}", fullmatch=True),
            labels=st.dictionaries(
                st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True), label_text, max_size=4
            ),
            timestamp_ms=st.integers(min_value=0, max_value=2**53),
            value=st.floats(allow_nan=False, allow_infinity=False),
        ),
        max_size=20,
    )
)
def test_metric_batches_round_trip_exactly(samples: list[Sample]) -> None:
    event = MetricsRecorded(samples=tuple(samples))
    assert decode_event(encode_event(event)) == event


people_text = st.text(max_size=40)


@given(
    st.builds(
        FindingTriaged,
        fingerprint=st.text(min_size=1, max_size=64),
        state=st.sampled_from(["open", "false_positive", "accepted_risk", "fixed"]),
        author=people_text,
        reason=people_text,
        expires_ms=st.none() | st.integers(min_value=0, max_value=2**53),
    ),
    st.builds(
        SilenceAdded,
        silence_id=st.integers(min_value=1, max_value=2**53),
        matchers=st.lists(
            st.dictionaries(st.sampled_from(["name", "value", "op"]), people_text), max_size=3
        ).map(tuple),
        starts_ms=st.integers(min_value=0, max_value=2**53),
        ends_ms=st.integers(min_value=0, max_value=2**53),
        author=people_text,
        reason=people_text,
    ),
    st.builds(AlertAcknowledged, alert=st.just(ALERT), author=people_text, note=people_text),
)
def test_what_people_do_round_trips_exactly(
    triaged: FindingTriaged, silenced: SilenceAdded, acked: AlertAcknowledged
) -> None:
    for event in (triaged, silenced, acked):
        assert decode_event(encode_event(event)) == event
