"""``secperf alerts`` and ``secperf rules check`` over a real SQLite store and real rule files."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from typer.testing import CliRunner

from secperf.cli import app
from secperf.events import now_ms
from secperf.model import Alert, AlertState, MetricKind, Severity
from secperf.store import Store
from support.cli import CliResult, run_cli, run_secperf

GOOD_AND_BAD_RULES = """\
[[rules]]
name = "SlowApi"
metric = "response_time_ms"
matchers = ['job="api"']
aggregation = "p95"
window = "5m"
threshold = 250.0
severity = "high"

[[rules]]
name = "CpuMedian"
metric = "cpu_percent"
aggregation = "median"
threshold = 90

[[rules]]
name = "ScansSlowResponses"
kind = "scan_impact"
metric = "response_time_ms"
"""

#: Wide enough that no rule line wraps.
WIDE = {"COLUMNS": "200"}


def secperf(*args: str, cwd: Path) -> CliResult:
    return run_cli(args, cwd=cwd, env=WIDE)


def make_alert(
    fingerprint: str,
    rule: str,
    state: AlertState,
    updated_ms: int,
    *,
    severity: Severity = Severity.HIGH,
    labels: dict[str, str] | None = None,
    value: float | None = 95.5,
) -> Alert:
    return Alert(
        fingerprint=fingerprint,
        rule=rule,
        state=state,
        severity=severity,
        kind=MetricKind.PERFORMANCE,
        labels={"alertname": rule, "severity": severity.value, **(labels or {})},
        annotations={"summary": f"{rule} summary"},
        value=value,
        active_since_ms=updated_ms - 60_000,
        fired_at_ms=updated_ms if state is AlertState.FIRING else None,
        resolved_at_ms=updated_ms if state is AlertState.RESOLVED else None,
        updated_ms=updated_ms,
    )


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project whose default store holds three alerts (two share a fingerprint prefix)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SECPERF_CONFIG", raising=False)
    monkeypatch.delenv("SECPERF_TOKEN", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    now = now_ms()
    db = tmp_path / ".secperf" / "secperf.db"
    db.parent.mkdir()
    with Store.open(db) as store:
        store.upsert_alert(
            make_alert(
                "aaaa1111cpu00001",
                "HostHighCpu",
                AlertState.FIRING,
                now - 5_000,
                labels={"host": "web1", "job": "api"},
            )
        )
        store.upsert_alert(
            make_alert(
                "aaaa1111mem00002",
                "HostHighMemory",
                AlertState.PENDING,
                now - 1_000,
                labels={"host": "web2"},
            )
        )
        store.upsert_alert(
            make_alert(
                "bbbb2222sec00003",
                "NewCriticalFinding",
                AlertState.RESOLVED,
                now - 600_000,
                severity=Severity.CRITICAL,
                labels={"target": "/repo"},
                value=1,
            )
        )
        store.add_silence(
            [{"name": "host", "value": "web2", "op": "="}],
            now - 60_000,
            now + 3_600_000,
            "alice",
            "maintenance of web2",
        )
    return tmp_path


def open_store(project: Path) -> Store:
    return Store.open(project / ".secperf" / "secperf.db")


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


# --------------------------------------------------------------------------- list


def test_list_shows_stored_alerts_newest_first(project: Path, runner: CliRunner) -> None:
    result = runner.invoke(app, ["alerts", "list"])
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "3 alert(s)" in out
    # Newest change first: the pending memory alert, the firing CPU one, the resolved finding.
    assert out.index("HostHighMemory") < out.index("HostHighCpu") < out.index("NewCriticalFind")
    cpu_line = next(line for line in out.splitlines() if "HostHighCpu" in line)
    assert "firing" in cpu_line and "host=web1" in cpu_line and "95.5" in cpu_line
    # The silence on host web2 mutes the memory alert only.
    mem_line = next(line for line in out.splitlines() if "HostHighMemory" in line)
    assert "yes" in mem_line
    assert "yes" not in cpu_line


def test_list_filters_by_state_and_prints_json(project: Path, runner: CliRunner) -> None:
    result = runner.invoke(app, ["alerts", "list", "--state", "firing,pending", "--json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert [a["rule"] for a in data] == ["HostHighMemory", "HostHighCpu"]
    assert [a["silenced"] for a in data] == [True, False]
    assert data[1]["labels"]["host"] == "web1"
    assert data[1]["state"] == "firing"

    resolved = runner.invoke(app, ["alerts", "list", "-s", "resolved", "--json"])
    assert [a["fingerprint"] for a in json.loads(resolved.stdout)] == ["bbbb2222sec00003"]


def test_list_with_nothing_in_the_asked_state(project: Path, runner: CliRunner) -> None:
    result = runner.invoke(app, ["alerts", "list", "--state", "error"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "no alerts (error)"


def test_list_refuses_an_unknown_state(project: Path, runner: CliRunner) -> None:
    result = runner.invoke(app, ["alerts", "list", "--state", "burning"])
    assert result.exit_code == 2
    assert "--state 'burning': unknown state" in result.stderr
    assert "firing" in result.stderr


# --------------------------------------------------------------------------- ack


def test_ack_by_unique_prefix_is_stored(project: Path, runner: CliRunner) -> None:
    result = runner.invoke(
        app, ["alerts", "ack", "bbbb22", "--author", "bob", "--note", "rotating the key"]
    )
    assert result.exit_code == 0, result.stderr
    assert "acknowledged bbbb2222sec00003 (NewCriticalFinding, resolved) by bob" in result.stdout
    with open_store(project) as store:
        alert = next(a for a in store.alerts() if a.fingerprint == "bbbb2222sec00003")
    assert alert.acknowledged_by == "bob"
    assert alert.acknowledgement_note == "rotating the key"
    assert alert.state is AlertState.RESOLVED  # acknowledging changes nothing else

    listed = runner.invoke(app, ["alerts", "list", "--state", "resolved"])
    assert "bob: rotating the key" in listed.stdout


@pytest.mark.parametrize(
    ("prefix", "message"),
    [
        ("aaaa", "fingerprint 'aaaa': give at least 6 characters"),
        (
            "aaaa1111",
            "matches 2 alerts: aaaa1111mem00002 (HostHighMemory), aaaa1111cpu00001 (HostHighCpu); "
            "give more characters",
        ),
        ("cccccc", "fingerprint 'cccccc': no stored alert starts with it"),
    ],
)
def test_ack_errors_name_the_prefix(
    project: Path, runner: CliRunner, prefix: str, message: str
) -> None:
    result = runner.invoke(app, ["alerts", "ack", prefix, "--author", "bob"])
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stdout == ""
    with open_store(project) as store:
        assert all(a.acknowledged_by is None for a in store.alerts())


# --------------------------------------------------------------------------- silences


def test_silence_then_unsilence(project: Path, runner: CliRunner) -> None:
    result = runner.invoke(
        app,
        [
            "alerts",
            "silence",
            'job="api"',
            'severity=~"high|critical"',
            "--duration",
            "2h",
            "--author",
            "carol",
            "--reason",
            "deploying the api",
        ],
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("silence 2: ")
    assert '{job="api", severity=~"high|critical"}' in result.stdout
    with open_store(project) as store:
        silence = next(s for s in store.silences() if s.id == 2)
    assert silence.matchers == [
        {"name": "job", "value": "api", "op": "="},
        {"name": "severity", "value": "high|critical", "op": "=~"},
    ]
    assert silence.ends_ms - silence.starts_ms == 2 * 3_600_000
    assert (silence.author, silence.reason) == ("carol", "deploying the api")

    # The CPU alert (job=api, severity=high) is now silenced.
    listed = json.loads(runner.invoke(app, ["alerts", "list", "--json"]).stdout)
    assert {a["rule"]: a["silenced"] for a in listed} == {
        "HostHighMemory": True,
        "HostHighCpu": True,
        "NewCriticalFinding": False,
    }

    ended = runner.invoke(app, ["alerts", "unsilence", "2"])
    assert ended.exit_code == 0, ended.stderr
    assert ended.stdout.strip() == "silence 2 ended"
    with open_store(project) as store:
        assert [s.id for s in store.silences(active_at_ms=now_ms())] == [1]
    again = runner.invoke(app, ["alerts", "unsilence", "2"])
    assert again.exit_code == 0
    assert "already ended" in again.stdout


def test_silence_starting_later(project: Path, runner: CliRunner) -> None:
    result = runner.invoke(
        app,
        ["alerts", "silence", "host=web1", "--starts", "1h", "-d", "30m", "-r", "window"],
    )
    assert result.exit_code == 0, result.stderr
    assert "from " in result.stdout
    with open_store(project) as store:
        silence = store.silences()[-1]
        assert silence.starts_ms > now_ms() + 3_500_000
        assert store.silences(active_at_ms=now_ms())[-1].id == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (['job=~"("'], "matcher 'job=~\"(\"': invalid regular expression '('"),
        (["job"], "matcher 'job': 'job' is not a matcher"),
        (['job!="api"'], "would mute every alert"),
        (['job="api"', "--duration", "soon"], "--duration 'soon'"),
        (['job="api"', "--starts", "yesterday-ish"], "--starts 'yesterday-ish'"),
        (['job="api"', "--reason", " "], "--reason: required"),
    ],
)
def test_silence_refuses_bad_input(
    project: Path, runner: CliRunner, args: list[str], message: str
) -> None:
    reason = [] if "--reason" in args else ["--reason", "r"]
    result = runner.invoke(app, ["alerts", "silence", *args, *reason])
    assert result.exit_code == 2
    assert message in result.stderr
    with open_store(project) as store:
        assert len(store.silences()) == 1


def test_exit_codes_through_the_root_command(project: Path) -> None:
    bad = secperf("alerts", "silence", 'severity=~"[crit"', "--reason", "x", cwd=project)
    assert bad.returncode == 2
    assert "severity" in bad.stderr and "invalid regular expression" in bad.stderr
    assert bad.stdout == ""

    unknown = secperf("alerts", "unsilence", "99", cwd=project)
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == "silence 99: no silence has this id"

    made = secperf("alerts", "silence", "host=web1", "--reason", "x", cwd=project)
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith('silence 2: {host="web1"}')

    with open_store(project) as store:
        assert [s.matchers for s in store.silences()][-1] == [
            {"name": "host", "value": "web1", "op": "="}
        ]


# --------------------------------------------------------------------------- rules check


def test_rules_check_names_the_file_the_rule_and_the_reason(tmp_path: Path) -> None:
    (tmp_path / "alerts.toml").write_text(GOOD_AND_BAD_RULES)
    result = secperf("rules", "check", "alerts.toml", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stdout.splitlines()
    assert lines[0].startswith('OK    alerts.toml: SlowApi (p95(response_time_ms{job="api"}[5m])')
    assert lines[1] == (
        "FAIL  alerts.toml: rules[1] ('CpuMedian'): aggregation: unknown aggregation 'median'; "
        "expected one of last, avg, min, max, p50, p95, p99, rate, increase, count"
    )
    assert lines[2].startswith("OK    alerts.toml: ScansSlowResponses (scan_impact")
    assert result.stderr.strip() == "1 problem(s); 2 rule(s) valid"

    (tmp_path / "good.toml").write_text(GOOD_AND_BAD_RULES.split('[[rules]]\nname = "CpuMedian')[0])
    good = secperf("alerts", "rules", "check", "good.toml", cwd=tmp_path)
    assert good.returncode == 0, good.stderr
    assert good.stdout.splitlines()[-1] == "1 rule(s) valid"


def test_rules_check_reads_the_config_and_its_rule_files(
    tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    (tmp_path / "alerts.toml").write_text(GOOD_AND_BAD_RULES)
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "demo"\n\n'
        "[tool.secperf.alerts]\n"
        'rule_files = ["alerts.toml"]\n\n'
        "[[tool.secperf.alerts.rules]]\n"
        'name = "HostHighCpu"\nmetric = "cpu_percent"\nthreshold = 97\n\n'
        "[[tool.secperf.alerts.rules]]\n"
        'name = "SlowApi"\nmetric = "response_time_ms"\nwindow = "5 minutes"\nthreshold = 1\n\n'
        "[[tool.secperf.alerts.rules]]\n"
        'name = "Impact"\nkind = "scan_impact"\nmetric = "response_time_ms"\nthreshold = 0\n'
    )
    result = runner.invoke(app, ["rules", "check", "pyproject.toml"])
    assert result.exit_code == 2
    out = result.stdout
    # A configured rule may replace a default one of the same name.
    assert "OK    pyproject.toml: HostHighCpu (last(cpu_percent[5m]) > 97, medium)" in out
    assert "FAIL  pyproject.toml: tool.secperf.alerts.rules[1] ('SlowApi'): window:" in out
    # The correlation kinds are written in the config as in a rule file.
    assert "OK    pyproject.toml: Impact (scan_impact on response_time_ms" in out
    assert "OK    alerts.toml: SlowApi" in out
    assert "FAIL  alerts.toml: rules[1] ('CpuMedian'): aggregation: unknown aggregation" in out
    assert "2 problem(s); 4 rule(s) valid (+ 10 default rules)" in result.stderr


def test_rules_check_duplicate_names_and_unreadable_files(
    tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dupes.toml").write_text(
        '[[rules]]\nname = "A"\nmetric = "m"\nthreshold = 1\n'
        '[[rules]]\nname = "A"\nmetric = "n"\nthreshold = 2\n'
    )
    dupes = runner.invoke(app, ["rules", "check", "dupes.toml"])
    assert dupes.exit_code == 2
    assert (
        "FAIL  dupes.toml: rules[1] ('A'): the name is used twice (also dupes.toml: rules[0])"
        in (dupes.stdout)
    )
    (tmp_path / "broken.toml").write_text("[[rules]\n")
    broken = runner.invoke(app, ["rules", "check", "broken.toml"])
    assert broken.exit_code == 2
    assert broken.stdout.startswith("FAIL  broken.toml: invalid TOML:")
    missing = runner.invoke(app, ["rules", "check", "nowhere.toml"])
    assert missing.exit_code == 2
    assert missing.stdout.strip() == "FAIL  nowhere.toml: no such file"
    (tmp_path / "other.toml").write_text("[scan]\njobs = 2\n")
    other = runner.invoke(app, ["rules", "check", "other.toml"])
    assert other.exit_code == 2
    assert "other.toml: no rules here" in other.stdout


# --------------------------------------------------------------------------- serve


class _Hooks(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        type(self).received.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _wait_for(predicate: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what}: not reached in {timeout} s")


@pytest.mark.slow
def test_serve_evaluates_alerts_notifies_and_stores_them(tmp_path: Path) -> None:
    _Hooks.received = []
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Hooks)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    hook = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    (tmp_path / "secperf.toml").write_text(
        "[alerts]\n"
        'evaluation_interval = "200ms"\ngroup_wait = "0s"\ndefault_rules = false\n'
        "[[alerts.rules]]\n"
        'name = "AppDown"\nmetric = "app_up"\nop = "<"\nthreshold = 1\nseverity = "critical"\n'
        "[[alerts.notifiers]]\n"
        f'kind = "webhook"\nurl = "{hook}"\n'
    )
    token = "tok-0123456789abcdef-SECRET"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECPERF_")}
    env["SECPERF_TOKEN"] = token
    proc = subprocess.Popen(
        [sys.executable, "-m", "secperf", "serve", "--port", "0"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert found, line
        url = found.group(0)
        request = urllib.request.Request(
            f"{url}/api/v1/ingest/metrics",
            data=json.dumps({"samples": [{"name": "app_up", "value": 0}]}).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert json.loads(answer.read()) == {"accepted": 1}

        def firing_payload() -> dict[str, Any] | None:
            return next((p for p in _Hooks.received if p["status"] == "firing"), None)

        payload = _wait_for(firing_payload, "the webhook receiving the firing alert")
        assert payload["version"] == "4"
        [alert] = payload["alerts"]
        assert alert["labels"]["alertname"] == "AppDown"
        assert alert["generatorURL"].startswith(f"{url}/#/alerts/")

        # Another process reads the same store: the transition was stored.
        def stored() -> list[dict[str, Any]]:
            listed = run_secperf(
                "alerts", "list", "--state", "firing", "--json", cwd=tmp_path, env=WIDE
            )
            assert listed.returncode == 0, listed.stderr
            rows: list[dict[str, Any]] = json.loads(listed.stdout)
            return rows

        [row] = _wait_for(stored, "the firing alert in the store")
        assert row["rule"] == "AppDown"
        # The API answers from the engine (it knows inhibitions) and serves analysis.
        with urllib.request.urlopen(f"{url}/api/v1/alerts", timeout=10) as answer:
            [served] = json.loads(answer.read())["alerts"]
        assert served["fingerprint"] == row["fingerprint"]
        assert "inhibited_by" in served
        for path in ("/api/v1/advice", "/api/v1/correlations"):
            with urllib.request.urlopen(f"{url}{path}", timeout=10) as answer:
                assert answer.status == 200
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        receiver.shutdown()
        receiver.server_close()
    with open_store(tmp_path) as store:
        history = store.alert_history(row["fingerprint"])
    assert [t.to_state for t in history][-1] is AlertState.FIRING


def test_serve_refuses_a_bad_rule_file(tmp_path: Path) -> None:
    (tmp_path / "alerts.toml").write_text(GOOD_AND_BAD_RULES)
    (tmp_path / "secperf.toml").write_text('[alerts]\nrule_files = ["alerts.toml"]\n')
    result = secperf("serve", "--port", "0", cwd=tmp_path)
    assert result.returncode == 2
    assert "rules[1] ('CpuMedian'): aggregation: unknown aggregation 'median'" in result.stderr
    assert "alerts.toml" in result.stderr
