"""Configuration loading: discovery, defaults, units, and one test per kind of bad input."""

from __future__ import annotations

import os
import re
import socket
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from secperf.config import (
    DEFAULT_EXCLUDES,
    SCANNER_IDS,
    Config,
    ConfigError,
    export_config,
    format_duration_ms,
    format_size_bytes,
    load_config,
    parse_duration_ms,
    parse_size_bytes,
    to_toml,
)
from secperf.model import Severity
from support.paths import REPO

TOKEN = "tok-0123456789abcdef-SECRET"


@pytest.fixture(autouse=True)
def _in_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Users run secperf from the project root, where files are shown by bare name.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SECPERF_TOKEN", raising=False)
    yield


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def load_error(directory: Path, text: str, name: str = "secperf.toml") -> ConfigError:
    write(directory, name, text)
    with pytest.raises(ConfigError) as info:
        load_config(project_dir=directory)
    return info.value


# --------------------------------------------------------------------------- defaults


def test_defaults_without_any_file(tmp_path: Path) -> None:
    loaded = load_config(project_dir=tmp_path)
    cfg = loaded.config
    assert loaded.source is None
    assert loaded.root == tmp_path.resolve()
    assert cfg.store.url == f"sqlite:///{tmp_path.resolve() / '.secperf' / 'secperf.db'}"
    assert cfg.store.retention == 30 * 86_400_000
    assert cfg.bus.url == "memory://"
    assert cfg.bus.queue_size == 10_000
    assert cfg.bus.stream == "SECPERF"
    assert cfg.scan.paths == [tmp_path.resolve()]
    assert cfg.scan.max_file_size == 1024 * 1024
    assert cfg.scan.jobs == 0
    assert cfg.scan.effective_jobs >= 1
    assert tuple(cfg.scan.scanners) == SCANNER_IDS
    assert cfg.scan.fail_on is Severity.HIGH
    assert ".git/" in cfg.scan.exclude and ".secperf/" in cfg.scan.exclude
    assert cfg.scan.respect_gitignore is True
    assert cfg.monitor.system.interval == 1000
    assert cfg.monitor.impact.interval == 100
    assert cfg.alerts.evaluation_interval == 15_000
    assert cfg.alerts.group_wait == 30_000
    assert cfg.alerts.group_interval == 300_000
    assert cfg.alerts.repeat_interval == 4 * 3_600_000
    assert cfg.gate.fail_on is Severity.HIGH
    assert cfg.gate.min_effect == pytest.approx(0.05)
    assert cfg.gate.confidence == pytest.approx(0.99)
    assert cfg.gate.waivers == tmp_path.resolve() / "secperf-waivers.toml"
    assert cfg.server.host == "127.0.0.1"
    assert cfg.server.port == 8765
    assert cfg.server.token is None
    assert cfg.agent.host_label == socket.gethostname()


def test_config_model_is_frozen(tmp_path: Path) -> None:
    cfg = load_config(project_dir=tmp_path).config
    with pytest.raises(ValueError, match="frozen"):
        cfg.server.port = 1  # type: ignore[misc]


def test_values_from_file_are_converted(tmp_path: Path) -> None:
    write(
        tmp_path,
        "secperf.toml",
        """
[store]
url = "data/metrics.db"
retention = "7d"

[bus]
url = "nats://127.0.0.1:4222"

[scan]
paths = ["src"]
max_file_size = "512KB"
scanners = ["bandit", "secrets"]
extend_exclude = ["vendor/"]

[scan.deps]
osv_db = "osv"

[monitor]
interval = "5s"

[monitor.process]
interval = "2s"

[[monitor.prometheus.targets]]
name = "node"
url = "http://127.0.0.1:9100/metrics"
labels = { env = "dev" }

[[alerts.rules]]
name = "high_cpu"
metric = "cpu_percent"
matchers = ['host=~"web-.*"', 'env!="dev"']
aggregation = "avg"
window = "1m"
op = ">"
threshold = 90
resolve_threshold = 80
for = "2m"
severity = "High"

[gate]
min_effect = "10%"
min_coverage = "80%"

[gate.max_new]
medium = 5
""",
    )
    (tmp_path / "osv").mkdir()
    cfg = load_config(project_dir=tmp_path).config
    root = tmp_path.resolve()
    assert cfg.store.url == f"sqlite:///{root / 'data' / 'metrics.db'}"
    assert cfg.store.retention == 7 * 86_400_000
    assert cfg.bus.is_nats
    assert cfg.scan.paths == [root / "src"]
    assert cfg.scan.max_file_size == 512_000
    assert cfg.scan.scanners == ["bandit", "secrets"]
    assert cfg.scan.all_excludes == [*DEFAULT_EXCLUDES, "vendor/"]
    assert cfg.scan.deps.osv_db == root / "osv"
    assert cfg.monitor.system.interval == 5000  # inherited from monitor.interval
    assert cfg.monitor.process.interval == 2000  # set explicitly
    assert cfg.monitor.prometheus.targets[0].interval == 15_000
    rule = cfg.alerts.rules[0]
    assert rule.for_ == 120_000
    assert rule.severity is Severity.HIGH
    assert [str(m) for m in rule.matchers] == ['host=~"web-.*"', 'env!="dev"']
    assert rule.matchers[0].matches({"host": "web-1"})
    assert not rule.matchers[0].matches({"host": "db-1"})
    assert cfg.gate.min_effect == pytest.approx(0.10)
    assert cfg.gate.min_coverage == pytest.approx(80.0)
    assert cfg.gate.max_new.limits() == {Severity.MEDIUM: 5}


def test_postgres_url_uses_psycopg_driver(tmp_path: Path) -> None:
    write(tmp_path, "secperf.toml", '[store]\nurl = "postgresql://u@127.0.0.1:5432/test"\n')
    cfg = load_config(project_dir=tmp_path).config
    assert cfg.store.url == "postgresql+psycopg://u@127.0.0.1:5432/test"
    assert not cfg.store.is_sqlite


def test_export_round_trips_through_toml(tmp_path: Path) -> None:
    write(
        tmp_path,
        "secperf.toml",
        '[[alerts.rules]]\nname = "r"\nmetric = "load_1m"\nthreshold = 4\nfor = "90s"\n'
        'labels = { team = "ops" }\n',
    )
    first = load_config(project_dir=tmp_path).config
    text = to_toml(export_config(first))
    tomllib.loads(text)  # valid TOML
    assert 'for = "90s"' in text
    write(tmp_path, "secperf.toml", text)
    assert load_config(project_dir=tmp_path).config == first


# --------------------------------------------------------------------------- discovery


def test_secperf_toml_beats_pyproject(tmp_path: Path) -> None:
    write(tmp_path, "secperf.toml", "[server]\nport = 9001\n")
    write(tmp_path, "pyproject.toml", "[tool.secperf.server]\nport = 9002\n")
    loaded = load_config(project_dir=tmp_path)
    assert loaded.source == tmp_path / "secperf.toml"
    assert loaded.config.server.port == 9001


def test_pyproject_used_when_no_secperf_toml(tmp_path: Path) -> None:
    write(tmp_path, "pyproject.toml", "[project]\nname = 'x'\n[tool.secperf.server]\nport = 9002\n")
    loaded = load_config(project_dir=tmp_path)
    assert loaded.source == tmp_path / "pyproject.toml"
    assert loaded.key_prefix == "tool.secperf."
    assert loaded.config.server.port == 9002


def test_pyproject_without_section_gives_defaults(tmp_path: Path) -> None:
    write(tmp_path, "pyproject.toml", "[project]\nname = 'x'\n")
    loaded = load_config(project_dir=tmp_path)
    assert loaded.source is None
    assert loaded.config.server.port == 8765


def test_explicit_file_wins_and_resolves_paths_from_its_directory(tmp_path: Path) -> None:
    write(tmp_path, "secperf.toml", "[server]\nport = 9001\n")
    other = tmp_path / "ci"
    other.mkdir()
    explicit = write(other, "custom.toml", '[server]\nport = 9003\n[scan]\npaths = ["src"]\n')
    loaded = load_config(explicit)
    assert loaded.source == explicit
    assert loaded.config.server.port == 9003
    assert loaded.config.scan.paths == [other.resolve() / "src"]


def test_explicit_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml: no such file"):
        load_config(tmp_path / "nope.toml")


def test_explicit_pyproject_without_section(tmp_path: Path) -> None:
    path = write(tmp_path, "pyproject.toml", "[project]\nname = 'x'\n")
    with pytest.raises(ConfigError, match=r"pyproject\.toml: no \[tool\.secperf\] table"):
        load_config(path)


# --------------------------------------------------------------------------- bad input


def test_unknown_top_level_key(tmp_path: Path) -> None:
    err = load_error(tmp_path, "bogus = 1\n")
    assert str(err) == (
        "secperf.toml: bogus: unknown key; allowed top-level keys: "
        "store, bus, scan, monitor, alerts, gate, server, agent, siem, report"
    )


def test_unknown_nested_key(tmp_path: Path) -> None:
    err = load_error(tmp_path, "[scan]\nbogus = 1\n")
    message = str(err)
    assert message.startswith("secperf.toml: scan.bogus: unknown key; allowed keys in [scan]: ")
    assert "include, exclude" in message


def test_unknown_key_in_array_of_tables(tmp_path: Path) -> None:
    err = load_error(
        tmp_path, '[[alerts.rules]]\nname = "r1"\nmetric = "cpu_percent"\nthreshold = 1\nx = 2\n'
    )
    assert "alerts.rules[0].x: unknown key; allowed keys in [[alerts.rules]]:" in str(err)
    assert "keep_firing_for" in str(err)
    assert "rule 'r1'" in str(err)


def test_wrong_type(tmp_path: Path) -> None:
    err = load_error(tmp_path, '[scan]\njobs = "many"\n')
    assert str(err) == "secperf.toml: scan.jobs: expected an integer >= 0, got 'many'"


def test_wrong_type_for_a_section(tmp_path: Path) -> None:
    err = load_error(tmp_path, "scan = 3\n")
    assert str(err) == "secperf.toml: scan: expected a table [scan], got 3"


def test_bool_is_not_an_integer(tmp_path: Path) -> None:
    err = load_error(tmp_path, "[bus]\nqueue_size = true\n")
    assert str(err) == "secperf.toml: bus.queue_size: expected an integer >= 1, got true"


def test_port_out_of_range(tmp_path: Path) -> None:
    err = load_error(tmp_path, "[server]\nport = 70000\n")
    assert str(err) == "secperf.toml: server.port: expected an integer from 0 to 65535, got 70000"


def test_bad_duration(tmp_path: Path) -> None:
    err = load_error(tmp_path, '[alerts]\nevaluation_interval = "fast"\n')
    assert str(err).startswith(
        "secperf.toml: alerts.evaluation_interval: expected a duration longer than 0 such as "
    )
    assert str(err).endswith(", got 'fast'")


def test_duration_without_unit(tmp_path: Path) -> None:
    err = load_error(tmp_path, "[alerts]\ngroup_wait = 30\n")
    assert "alerts.group_wait: expected a duration" in str(err)
    assert "got 30" in str(err)


def test_bad_severity(tmp_path: Path) -> None:
    err = load_error(tmp_path, '[gate]\nfail_on = "urgent"\n')
    assert str(err) == (
        "secperf.toml: gate.fail_on: expected a severity: one of "
        "critical, high, medium, low, info, got 'urgent'"
    )


def test_bad_size(tmp_path: Path) -> None:
    err = load_error(tmp_path, '[scan]\nmax_file_size = "big"\n')
    assert "scan.max_file_size: expected a size larger than 0 such as" in str(err)


def test_unknown_scanner(tmp_path: Path) -> None:
    err = load_error(tmp_path, '[scan]\nscanners = ["bandit", "trivy"]\n')
    assert str(err) == (
        "secperf.toml: scan.scanners[1]: expected one of "
        "bandit, secrets, deps, semgrep, sarif, got 'trivy'"
    )


def test_bad_rule_fields_name_the_rule(tmp_path: Path) -> None:
    err = load_error(
        tmp_path,
        '[[alerts.rules]]\nname = "cpu"\nmetric = "cpu_percent"\nthreshold = 1\n'
        'aggregation = "median"\nop = "=>"\nmatchers = [\'job=~"("\']\n',
    )
    lines = str(err).splitlines()
    assert len(lines) == 3
    assert any(
        "alerts.rules[0].aggregation: expected one of last, avg" in line and "got 'median'" in line
        for line in lines
    )
    assert any("alerts.rules[0].op: expected one of >, >=" in line for line in lines)
    assert any(
        "alerts.rules[0].matchers[0]:" in line and "invalid regular expression" in line
        for line in lines
    )
    assert all("rule 'cpu'" in line for line in lines)


def test_missing_required_rule_field(tmp_path: Path) -> None:
    err = load_error(tmp_path, '[[alerts.rules]]\nname = "r"\nmetric = "cpu_percent"\n')
    assert "alerts.rules[0].threshold: required key is missing; expected a number" in str(err)


def test_toml_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    err = load_error(tmp_path, "[scan]\njobs = 2\n\n[server\nport = 1\n")
    assert re.fullmatch(r"secperf\.toml: invalid TOML: line 4, column \d+: .+", str(err))


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "secperf.toml").write_bytes(b'[scan]\njobs = "\xff"\n')
    with pytest.raises(ConfigError, match=r"secperf\.toml: not valid UTF-8"):
        load_config(project_dir=tmp_path)


def test_pyproject_keys_shown_with_prefix(tmp_path: Path) -> None:
    err = load_error(
        tmp_path, "[tool.secperf.server]\nport = 70000\nbogus = 1\n", name="pyproject.toml"
    )
    lines = str(err).splitlines()
    assert (
        "pyproject.toml: tool.secperf.server.port: expected an integer from 0 to 65535, "
        "got 70000" in lines
    )
    assert any(
        line.startswith(
            "pyproject.toml: tool.secperf.server.bogus: unknown key; "
            "allowed keys in [tool.secperf.server]: host, port"
        )
        for line in lines
    )


def test_several_errors_in_one_message(tmp_path: Path) -> None:
    err = load_error(
        tmp_path, '[scan]\njobs = -1\n[server]\nport = "x"\n[store]\nretention = "soon"\n'
    )
    assert len(err.problems) == 3
    assert str(err).splitlines() == list(err.problems)
    keys = sorted(line.split(": ")[1] for line in err.problems)
    assert keys == ["scan.jobs", "server.port", "store.retention"]
    assert all(line.startswith("secperf.toml: ") for line in err.problems)


def test_non_loopback_host_without_token(tmp_path: Path) -> None:
    err = load_error(tmp_path, '[server]\nhost = "0.0.0.0"\n')
    assert str(err).startswith("secperf.toml: server.host: binding '0.0.0.0'")
    assert "requires a token" in str(err)
    assert "$SECPERF_TOKEN" in str(err)


def test_non_loopback_host_with_token_from_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECPERF_TOKEN", TOKEN)
    write(tmp_path, "secperf.toml", '[server]\nhost = "0.0.0.0"\n')
    loaded = load_config(project_dir=tmp_path)
    assert loaded.token_source == "env:SECPERF_TOKEN"
    assert loaded.config.server.token is not None
    assert loaded.config.server.token.get_secret_value() == TOKEN


def test_loopback_hosts_need_no_token(tmp_path: Path) -> None:
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        write(tmp_path, "secperf.toml", f'[server]\nhost = "{host}"\n')
        assert load_config(project_dir=tmp_path).config.server.is_loopback


def test_short_token_refused(tmp_path: Path) -> None:
    err = load_error(tmp_path, '[server]\ntoken = "abc"\n')
    assert "server.token: the token must be at least 16 characters long" in str(err)
    assert "abc" not in str(err)


def test_a_short_token_is_reported_beside_a_wrong_port(tmp_path: Path) -> None:
    err = load_error(tmp_path, '[server]\nport = 99999\ntoken = "short"\n')
    assert err.problems == (
        "secperf.toml: server.port: expected an integer from 0 to 65535, got 99999",
        "secperf.toml: server.token: the token must be at least 16 characters long; generate "
        "one (python -c 'import secrets; print(secrets.token_urlsafe(32))') and prefer "
        "server.token_env to keep it out of the file",
    )
    assert "short" not in str(err)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    err = load_error(
        tmp_path,
        """
[tool.secperf.server]
host = "0.0.0.0"
port = -1
[tool.secperf.scan]
scanners = ["bandit", "bandit"]
jobs = "x"
[[tool.secperf.alerts.rules]]
name = "r"
metric = "cpu_percent"
threshold = 90
resolve_threshold = 95
""",
        name="pyproject.toml",
    )
    keys = [line.split(": ")[1] for line in err.problems]
    assert keys == [
        "tool.secperf.scan.jobs",
        "tool.secperf.server.port",
        "tool.secperf.server.host",
        "tool.secperf.scan.scanners",
        "tool.secperf.alerts.rules[0].resolve_threshold",
    ]
    assert "requires a token; set $SECPERF_TOKEN" in err.problems[2]
    assert all(line.startswith("pyproject.toml: ") for line in err.problems)


def test_checks_on_a_rejected_value_are_not_made_with_its_default(tmp_path: Path) -> None:
    # The interval is wrong: comparing the timeout with the default interval
    # would report a problem the user did not write. A token of the wrong kind
    # is still not echoed, and "requires a token" would mislead.
    err = load_error(
        tmp_path,
        """
[server]
host = "0.0.0.0"
token = 1234567890123456789
port = 70000
[[monitor.prometheus.targets]]
name = "a"
url = "http://127.0.0.1:9100/metrics"
interval = "soon"
timeout = "30s"
[scan]
scanners = ["deps", "deps"]
""",
    )
    assert err.problems == (
        "secperf.toml: monitor.prometheus.targets[0].interval: expected a duration longer than 0 "
        "such as "
        "'500ms', '15s', '5m', '24h' or '30d', got 'soon' [in target 'a']",
        "secperf.toml: server.port: expected an integer from 0 to 65535, got 70000",
        "secperf.toml: server.token: expected a string, got an integer (not shown)",
        "secperf.toml: scan.scanners: a scanner is listed more than once",
    )
    assert "1234567890123456789" not in str(err)


def test_size_limits_of_zero_are_refused(tmp_path: Path) -> None:
    err = load_error(tmp_path, '[scan]\nmax_file_size = 0\n[server]\nmax_request_bytes = "0KB"\n')
    assert err.problems == (
        "secperf.toml: scan.max_file_size: expected a size larger than 0 such as 1048576, "
        "'512KB' or '1MiB', got 0",
        "secperf.toml: server.max_request_bytes: expected a size larger than 0 such as "
        "1048576, '512KB' or '1MiB', got '0KB'",
    )


def test_cross_field_rules(tmp_path: Path) -> None:
    err = load_error(
        tmp_path,
        """
[[monitor.prometheus.targets]]
name = "a"
url = "http://127.0.0.1:9100/metrics"
interval = "5s"
timeout = "10s"

[[alerts.rules]]
name = "r"
metric = "cpu_percent"
threshold = 90
resolve_threshold = 95

[[alerts.notifiers]]
kind = "webhook"

[scan.deps]
osv_db = "missing"
""",
    )
    text = str(err)
    assert "monitor.prometheus.targets[0].timeout: the timeout (10s) must not be longer" in text
    assert "alerts.rules[0].resolve_threshold: must be <= threshold (90)" in text
    assert "alerts.notifiers[0].url: a webhook notifier needs a url" in text
    assert "scan.deps.osv_db: expected a directory of OSV JSON files" in text


def test_bad_bus_and_store_urls(tmp_path: Path) -> None:
    err = load_error(tmp_path, '[bus]\nurl = "kafka://x"\n[store]\nurl = "mysql://x/db"\n')
    text = str(err)
    assert "bus.url: expected 'memory://' or a NATS URL" in text
    assert "store.url: expected a SQLite path" in text
    assert "unsupported database 'mysql'" in text


# --------------------------------------------------------------------------- units


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("0", 0),
        ("500ms", 500),
        ("1s", 1000),
        ("1.5s", 1500),
        ("5m", 300_000),
        ("24h", 86_400_000),
        ("30d", 2_592_000_000),
        ("1w", 604_800_000),
        ("1h30m", 5_400_000),
    ],
)
def test_parse_duration(text: str, ms: int) -> None:
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize("text", ["", "fast", "10", "5 m", "m5", "1h 30m", "-1s", "1y"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration_ms(text)


def test_format_duration() -> None:
    assert format_duration_ms(0) == "0s"
    assert format_duration_ms(1500) == "1500ms"
    assert format_duration_ms(300_000) == "5m"
    assert format_duration_ms(86_400_000) == "1d"


@pytest.mark.parametrize(
    ("value", "size"),
    [
        (0, 0),
        (4096, 4096),
        ("100B", 100),
        ("512KB", 512_000),
        ("512kb", 512_000),
        ("1MiB", 1_048_576),
        ("1.5 GiB", 1_610_612_736),
        ("2MB", 2_000_000),
    ],
)
def test_parse_size(value: str | int, size: int) -> None:
    assert parse_size_bytes(value) == size


@pytest.mark.parametrize("value", ["big", "1 parsec", "-1", "1K", -5])
def test_parse_size_rejects(value: str | int) -> None:
    with pytest.raises(ValueError):
        parse_size_bytes(value)


def test_format_size() -> None:
    assert format_size_bytes(1_048_576) == "1MiB"
    assert format_size_bytes(512_000) == "500KiB"
    assert format_size_bytes(1_000_000) == "1MB"
    assert format_size_bytes(1001) == 1001


# --------------------------------------------------------------------------- secrets


def test_token_is_masked_everywhere(tmp_path: Path) -> None:
    write(
        tmp_path,
        "secperf.toml",
        f'[server]\nhost = "0.0.0.0"\ntoken = "{TOKEN}"\n'
        '[store]\nurl = "postgresql://user:hunter2pw@127.0.0.1/test"\n',
    )
    loaded = load_config(project_dir=tmp_path)
    cfg = loaded.config
    assert loaded.token_source == "file"
    assert cfg.server.token is not None
    assert cfg.server.token.get_secret_value() == TOKEN
    shown = [
        repr(cfg),
        str(cfg),
        repr(cfg.server),
        str(cfg.server),
        repr(cfg.store),
        repr(loaded),
        cfg.model_dump_json(),
        to_toml(export_config(cfg)),
    ]
    for text in shown:
        assert TOKEN not in text
    for text in (repr(cfg), str(cfg), repr(cfg.store), to_toml(export_config(cfg))):
        assert "hunter2pw" not in text
    assert "********" in to_toml(export_config(cfg))


def test_config_without_file_equals_empty_file(tmp_path: Path) -> None:
    write(tmp_path, "secperf.toml", "")
    from_file = load_config(project_dir=tmp_path)
    assert from_file.source == tmp_path / "secperf.toml"
    assert from_file.config.server == Config().server
    assert os.environ.get("SECPERF_TOKEN") is None


def test_every_example_in_the_configuration_guide_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    guide = REPO / "docs" / "configuration.md"
    blocks = re.findall(r"```toml\n(.*?)```", guide.read_text(encoding="utf-8"), re.DOTALL)
    assert len(blocks) >= 10
    # Paths the examples point at, and the token the server example reads.
    (tmp_path / "osv").mkdir()
    (tmp_path / "osv" / "all.zip").write_bytes(b"PK\x05\x06" + b"\x00" * 18)
    (tmp_path / "rules" / "semgrep").mkdir(parents=True)
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "corp-ca.pem").write_text("")
    monkeypatch.setenv("SECPERF_TOKEN", TOKEN)
    for block in blocks:
        name = "pyproject.toml" if "[tool.secperf" in block else "secperf.toml"
        for stale in ("pyproject.toml", "secperf.toml"):
            (tmp_path / stale).unlink(missing_ok=True)
        write(tmp_path, name, block)
        loaded = load_config(project_dir=tmp_path)
        assert loaded.source == tmp_path / name


def test_a_bad_key_of_one_list_item_leaves_the_other_checks_of_the_list_standing(
    tmp_path: Path,
) -> None:
    # Rule 0's operator is wrong: rule 1 is still checked on its own (its
    # resolve_threshold) and against rule 0 (a name used twice). Target 0's
    # label is wrong: its timeout, which reads only timeout and interval, is
    # still compared with its interval.
    err = load_error(
        tmp_path,
        """
[[alerts.rules]]
name = "a"
metric = "cpu_percent"
op = "=>"
threshold = 1
[[alerts.rules]]
name = "a"
metric = "cpu_percent"
threshold = 90
resolve_threshold = 95
[[monitor.prometheus.targets]]
name = "x"
url = "http://127.0.0.1:9100/metrics"
interval = "5s"
timeout = "10s"
labels = { env = 3 }
[[monitor.prometheus.targets]]
name = "x"
url = "http://127.0.0.1:9101/metrics"
""",
    )
    keys = [line.split(": ")[1] for line in err.problems]
    assert sorted(keys) == sorted(
        [
            "alerts.rules[0].op",
            "monitor.prometheus.targets[0].labels.env",
            "alerts.rules[1].name",
            "alerts.rules[1].resolve_threshold",
            "monitor.prometheus.targets[0].timeout",
            "monitor.prometheus.targets[1].name",
        ]
    ), err.problems


def test_checks_of_an_item_with_a_rejected_key_are_not_made_with_its_default(
    tmp_path: Path,
) -> None:
    # Rule 0's operator is wrong ("=<", meant "<="): its resolve_threshold would
    # be judged against the default ">" and refused, so that check is not made;
    # rule 1's still is.
    err = load_error(
        tmp_path,
        """
[[alerts.rules]]
name = "a"
metric = "cpu_percent"
op = "=<"
threshold = 10
resolve_threshold = 15
[[alerts.rules]]
name = "b"
metric = "cpu_percent"
threshold = 90
resolve_threshold = 95
""",
    )
    keys = [line.split(": ")[1] for line in err.problems]
    assert keys == ["alerts.rules[0].op", "alerts.rules[1].resolve_threshold"], err.problems
