"""Acknowledge, silence and unsilence: one set of rules through the CLI, the API and the engine."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from secperf.alerts import operator
from secperf.alerts.engine import AlertEngine
from secperf.alerts.operator import MAX_NOTE_CHARS, MAX_SILENCE_MS, OperatorError
from secperf.bus import AsyncEventBus
from secperf.commands import alerts as alert_commands
from secperf.model import Alert, AlertState, MetricKind, Severity
from secperf.store import Store
from secperf.web import create_app

TOKEN = "operator-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FP = "abcdef0123456789"
LONG_NOTE = "n" * (MAX_NOTE_CHARS + 1)
DAY = 86_400_000


def _now() -> int:
    return time.time_ns() // 1_000_000


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "store.db") as opened:
        opened.upsert_alert(
            Alert(
                fingerprint=FP,
                rule="HighCpu",
                state=AlertState.FIRING,
                severity=Severity.HIGH,
                kind=MetricKind.PERFORMANCE,
                labels={"alertname": "HighCpu", "host": "h1"},
                value=97.0,
                fired_at_ms=_now() - 60_000,
                updated_ms=_now() - 60_000,
            )
        )
        yield opened


def _client(store: Store, engine: AlertEngine | None = None) -> TestClient:
    return TestClient(create_app(store, AsyncEventBus(), token=TOKEN, alert_engine=engine))


# --------------------------------------------------------------------------- the rules


def test_acknowledge_checks_author_and_note_and_stores() -> None:
    alert = Alert(FP, "r", AlertState.FIRING, Severity.LOW, MetricKind.PERFORMANCE, updated_ms=5)
    done = operator.acknowledged(alert, "  ana ", "on it", 10)
    assert (done.acknowledged_by, done.acknowledgement_note, done.updated_ms) == (
        "ana",
        "on it",
        10,
    )
    assert operator.acknowledged(alert, "ana", "", 1).updated_ms == 5  # never goes back
    with pytest.raises(OperatorError) as long_note:
        operator.acknowledged(alert, "ana", LONG_NOTE, 10)
    assert long_note.value.field == "note"
    with pytest.raises(OperatorError) as blank:
        operator.acknowledged(alert, "  ", "", 10)
    assert blank.value.field == "author"


@pytest.mark.parametrize(
    ("matchers", "starts", "ends", "field"),
    [
        ([], None, 10 * DAY, "matchers"),
        ([{"name": "job", "op": "!=", "value": "api"}], None, 10 * DAY, "matchers"),
        ([{"name": "job", "value": "api"}], 5 * DAY, 5 * DAY, "ends_ms"),
        ([{"name": "job", "value": "api"}], 0, DAY // 2, "ends_ms"),
        ([{"name": "job", "value": "api"}], DAY, DAY + MAX_SILENCE_MS + 1, "ends_ms"),
    ],
)
def test_silence_rules(
    matchers: list[dict[str, str]], starts: int | None, ends: int, field: str
) -> None:
    with pytest.raises(OperatorError) as refused:
        operator.check_silence(matchers, starts, ends, "ana", "maintenance", DAY)
    assert refused.value.field == field


def test_silence_needs_author_and_reason() -> None:
    ok = [{"name": "job", "value": "api"}]
    with pytest.raises(OperatorError, match="reason"):
        operator.check_silence(ok, None, 2 * DAY, "ana", " ", DAY)
    with pytest.raises(OperatorError, match="author"):
        operator.check_silence(ok, None, 2 * DAY, "", "why", DAY)
    spec = operator.check_silence(ok, None, 2 * DAY, " ana ", " why ", DAY)
    assert (spec.starts_ms, spec.author, spec.reason) == (DAY, "ana", "why")
    assert spec.matchers == [{"name": "job", "value": "api", "op": "="}]


# --------------------------------------------------------------------------- the callers


def test_a_note_too_long_is_refused_by_every_caller(store: Store) -> None:
    # CLI use case: exit 2 naming the option.
    with pytest.raises(alert_commands.AlertsCommandError, match="--note: at most 2000"):
        alert_commands.acknowledge(store, FP, "ana", LONG_NOTE, _now())
    # Engine: refused, not shortened.
    engine = AlertEngine(store, AsyncEventBus(), [])
    with pytest.raises(OperatorError):
        engine.acknowledge(FP, "ana", LONG_NOTE)
    # API, with and without an engine: 422 naming the field.
    for with_engine in (None, engine):
        with _client(store, with_engine) as client:
            answer = client.post(
                f"/api/v1/alerts/{FP}/ack", json={"author": "ana", "note": LONG_NOTE}, headers=AUTH
            )
        assert answer.status_code == 422
        assert "note" in answer.text
    assert store.alerts()[0].acknowledged_by is None


def test_every_caller_acknowledges_the_same_way(store: Store) -> None:
    by_cli = alert_commands.acknowledge(store, FP[:8], " ana ", "cli", _now())
    assert (by_cli.acknowledged_by, by_cli.acknowledgement_note) == ("ana", "cli")
    engine = AlertEngine(store, AsyncEventBus(), [])
    by_engine = engine.acknowledge(FP, "bo ", "engine")
    assert (by_engine.acknowledged_by, by_engine.acknowledgement_note) == ("bo", "engine")
    with _client(store) as client:
        answer = client.post(
            f"/api/v1/alerts/{FP}/ack", json={"author": " cy", "note": "api"}, headers=AUTH
        )
    assert answer.status_code == 200, answer.text
    stored = store.alerts()[0]
    assert (stored.acknowledged_by, stored.acknowledgement_note) == ("cy", "api")


def test_silences_too_long_are_refused_by_every_caller(store: Store) -> None:
    now = _now()
    with pytest.raises(alert_commands.AlertsCommandError, match="--duration '367d'"):
        alert_commands.add_silence(
            store, ['job="api"'], duration="367d", starts=None, author="a", reason="r", now_ms=now
        )
    engine = AlertEngine(store, AsyncEventBus(), [])
    matchers = [{"name": "job", "value": "api"}]
    with pytest.raises(OperatorError):
        engine.add_silence(matchers, now, now + MAX_SILENCE_MS + 1, "a", "r")
    for with_engine in (None, engine):
        with _client(store, with_engine) as client:
            answer = client.post(
                "/api/v1/silences",
                json={
                    "matchers": matchers,
                    "ends_ms": now + MAX_SILENCE_MS + DAY,
                    "author": "a",
                    "reason": "r",
                },
                headers=AUTH,
            )
        assert answer.status_code == 422
        assert "366 days" in answer.text
    assert store.silences() == []


def test_silence_and_unsilence_through_every_caller(store: Store) -> None:
    now = _now()
    made = alert_commands.add_silence(
        store, ['host="h1"'], duration="1h", starts=None, author="a", reason="r", now_ms=now
    )
    engine = AlertEngine(store, AsyncEventBus(), [])
    second = engine.add_silence([{"name": "host", "value": "h2"}], None, now + DAY, "b", "r")
    assert [s.id for s in store.silences(active_at_ms=_now())] == [made.id, second.id]
    assert alert_commands.expire_silence(store, made.id, _now()).ended
    assert engine.expire_silence(second.id)
    with _client(store) as client:
        assert client.delete(f"/api/v1/silences/{made.id}", headers=AUTH).status_code == 404
    assert store.silences(active_at_ms=_now()) == []
    with pytest.raises(OperatorError):
        operator.expire_silence(store, 0, now)
