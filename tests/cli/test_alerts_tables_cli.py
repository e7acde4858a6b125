"""The alert tables at the default 80 columns: list, history and silences over a real
store with long labels, every header present and no value cut to nothing; ``--json``."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from secperf.events import AlertChanged, now_ms
from secperf.model import Alert, AlertState, MetricKind, Severity
from secperf.store import Silence, Store
from support.cli import run_cli

INSTANCE = "orders-api-production-eu-west-1.internal.example.com:9100"
RULE = "ScansSlowOrdersServiceLatencyAtTheNinetyFifthPercentile"
NOTE = "looking into the scan schedule on the build agents of the release pipeline"
REASON = "maintenance window for the orders database migration to the new cluster"


def long_alert(state: AlertState, updated_ms: int) -> Alert:
    return Alert(
        fingerprint="aaaa1111cpu00001",
        rule=RULE,
        state=state,
        severity=Severity.HIGH,
        kind=MetricKind.PERFORMANCE,
        labels={
            "alertname": RULE,
            "severity": "high",
            "instance": INSTANCE,
            "job": "acme-shop-orders-service",
            "quantile": "0.95",
        },
        annotations={"summary": f"p95 of orders at 1234.6 ms on {INSTANCE}"},
        value=1234.5678,
        active_since_ms=updated_ms - 60_000,
        fired_at_ms=updated_ms if state is AlertState.FIRING else None,
        updated_ms=updated_ms,
        acknowledged_by="alice" if state is AlertState.FIRING else None,
        acknowledgement_note=NOTE if state is AlertState.FIRING else None,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A store with one firing alert (long labels, acknowledged, silenced) and its history."""
    now = now_ms()
    db = tmp_path / ".secperf" / "secperf.db"
    db.parent.mkdir()
    with Store.open(db) as store:
        pending = long_alert(AlertState.PENDING, now - 60_000)
        store.record_alert_transition(
            AlertChanged(alert=pending, previous_state=AlertState.INACTIVE, ts_ms=now - 60_000)
        )
        firing = long_alert(AlertState.FIRING, now - 5_000)
        store.record_alert_transition(
            AlertChanged(alert=firing, previous_state=AlertState.PENDING, ts_ms=now - 5_000)
        )
        store.upsert_alert(firing)
        store.add_silence(
            [{"name": "instance", "value": INSTANCE, "op": "="}],
            now - 1_000,
            now + 3_600_000,
            "bob",
            REASON,
        )
    return tmp_path


def squash(text: str) -> str:
    """``text`` without white space: a folded cell may break lines where a space was."""
    return "".join(text.split())


def columns(out: str) -> dict[str, str]:
    """Each column of the (one) Rich table in ``out``: header -> its cells' text, squashed."""
    lines = out.splitlines()
    heads = [line for line in lines if line.startswith("┃")]
    assert heads, out
    # A header may itself fold over several lines: join each column's fragments.
    names = ["" for _ in heads[0].split("┃")]
    for line in heads:
        for i, part in enumerate(line.split("┃")):
            names[i] += part.strip()
    texts = ["" for _ in names]
    for line in lines:
        if line.startswith("│"):
            for i, part in enumerate(line.split("│")):
                if i < len(texts):
                    texts[i] += squash(part)
    return {name: texts[i] for i, name in enumerate(names) if name}


def readable_at_80(out: str) -> None:
    assert all(len(line) <= 80 for line in out.splitlines()), out
    # In output that is not a terminal nothing is cut short with an ellipsis.
    assert "…" not in out


def test_list_at_80_columns_keeps_every_header_and_value(project: Path) -> None:
    result = run_cli(["alerts", "list"], cwd=project, env={"COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    readable_at_80(result.stdout)
    cols = columns(result.stdout)
    assert set(cols) == {"alert", "rule / labels", "value", "since", "notes"}
    assert cols["alert"].startswith("aaaa1111cpu00001firinghigh")
    assert squash(RULE) in cols["rule / labels"]
    assert squash(f"instance={INSTANCE}") in cols["rule / labels"]
    assert "job=acme-shop-orders-service" in cols["rule / labels"]
    assert cols["value"] == "1234.6"
    assert "sago" in cols["since"]
    assert squash(f"ack alice: {NOTE}") in cols["notes"] and "silenced" in cols["notes"]


def test_list_on_a_wide_terminal_has_a_column_per_field(project: Path) -> None:
    result = run_cli(["alerts", "list"], cwd=project, env={"COLUMNS": "250"})
    assert result.returncode == 0, result.stderr
    assert "…" not in result.stdout
    line = next(line for line in result.stdout.splitlines() if "aaaa1111cpu00001" in line)
    assert "firing" in line and "1234.6" in line
    cols = columns(result.stdout)
    assert list(cols) == [
        "fingerprint",
        "state",
        "severity",
        "rule",
        "labels",
        "value",
        "since",
        "ack",
        "silenced",
    ]
    assert squash(f"instance={INSTANCE}") in cols["labels"]
    assert squash(f"alice: {NOTE}") in cols["ack"] and cols["silenced"] == "yes"


def test_history_at_80_columns_and_as_json(project: Path) -> None:
    result = run_cli(["alerts", "history", "aaaa1111"], cwd=project, env={"COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    readable_at_80(result.stdout)
    cols = columns(result.stdout)
    assert set(cols) == {"when (UTC)", "change", "value", "summary"}
    assert "inactive→pending" in cols["change"] and "pending→firing" in cols["change"]
    assert cols["change"].index("inactive→pending") < cols["change"].index("pending→firing")
    assert squash(f"on {INSTANCE}") in cols["summary"]

    data = json.loads(run_cli(["alerts", "history", "aaaa1111", "--json"], cwd=project).stdout)
    assert [(t["from_state"], t["to_state"]) for t in data] == [
        ("inactive", "pending"),
        ("pending", "firing"),
    ]
    assert data[1]["value"] == pytest.approx(1234.5678)

    unknown = run_cli(["alerts", "history", "ffffff"], cwd=project)
    assert unknown.returncode == 2
    assert "fingerprint 'ffffff': no stored alert starts with it" in unknown.stderr


def test_silences_at_80_columns_and_as_json(project: Path) -> None:
    result = run_cli(["alerts", "silences"], cwd=project, env={"COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    readable_at_80(result.stdout)
    cols = columns(result.stdout)
    assert set(cols) == {"id", "matchers", "when (UTC)", "by / why"}
    assert squash(f'instance="{INSTANCE}"') in cols["matchers"]
    assert squash(f"bob: {REASON}") in cols["by / why"]
    assert "until" in cols["when (UTC)"]

    data = json.loads(run_cli(["alerts", "silences", "--json"], cwd=project).stdout)
    assert [(s["author"], s["reason"], s["active"]) for s in data] == [("bob", REASON, True)]
    assert data[0]["matchers"] == [{"name": "instance", "value": INSTANCE, "op": "="}]


def test_silences_that_ended_show_with_all_only(project: Path) -> None:
    now = now_ms()
    with Store.open(project / ".secperf" / "secperf.db") as store:
        old_id = store.add_silence(
            [{"name": "job", "value": "batch", "op": "="}],
            now - 7_200_000,
            now - 3_600_000,
            "carol",
            "old",
        )
    shown = json.loads(run_cli(["alerts", "silences", "--json"], cwd=project).stdout)
    assert old_id not in [s["id"] for s in shown]
    every = json.loads(run_cli(["alerts", "silences", "--all", "--json"], cwd=project).stdout)
    ended = next(s for s in every if s["id"] == old_id)
    assert (ended["active"], ended["author"], ended["reason"]) == (False, "carol", "old")
    assert {f.name for f in dataclasses.fields(Silence)} <= set(ended)


@pytest.mark.parametrize(
    ("offset_s", "text"),
    [
        (-(2 * 3600 - 60), "in 1h 59m"),  # a 2-hour silence set a minute ago
        (-2 * 3600, "in 2h"),
        (-45, "in 45s"),
        (5 * 60 + 30, "5m ago"),
        (3 * 86_400 + 4 * 3600 + 59, "3d 4h ago"),
        (86_400 + 30, "1d ago"),
    ],
)
def test_times_from_now_keep_their_second_unit_past_an_hour(offset_s: int, text: str) -> None:
    from secperf.commands.alerts import ago

    now = 1_765_000_000_000
    assert ago(now - offset_s * 1000, now) == text


def test_a_silence_of_two_hours_ends_in_1h_59m_not_1h(project: Path) -> None:
    now = now_ms()
    with Store.open(project / ".secperf" / "secperf.db") as store:
        store.add_silence(
            [{"name": "team", "value": "db", "op": "="}], now - 60_000, now + 7_140_000, "eve", "x"
        )
    result = run_cli(["alerts", "silences"], cwd=project, env={"COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    assert "(endsin1h58m)" in squash(result.stdout) or "(endsin1h59m)" in squash(result.stdout)
