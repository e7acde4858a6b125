"""Rules: building from config and dicts, bad input, templates, aggregations, defaults."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from secperf.alerts.default_rules import default_rules
from secperf.alerts.evaluate import RecentSamples, SeriesReader, aggregate, evaluate_threshold
from secperf.alerts.rule_loading import (
    RuleError,
    load_rules_file,
    rule_from_dict,
    rules_from_config,
)
from secperf.alerts.rules import Rule, render_template
from secperf.config import load_config
from secperf.model import MetricKind, Sample, Severity
from secperf.store import Store


def arr(*values: float) -> tuple[np.ndarray, np.ndarray]:
    ts = np.arange(len(values), dtype=np.int64) * 1000
    return ts, np.array(values, dtype=np.float64)


@pytest.mark.parametrize(
    ("aggregation", "values", "expected"),
    [
        ("last", (1, 2, 3), 3.0),
        ("avg", (1, 2, 3), 2.0),
        ("min", (4, 2, 3), 2.0),
        ("max", (4, 2, 3), 4.0),
        ("count", (4, 2, 3), 3.0),
        ("p50", (1, 2, 3, 4, 5), 3.0),
        ("p95", tuple(range(101)), 95.0),
        ("p99", tuple(range(101)), 99.0),
        # A counter reset (10 -> 2) counts the 2 after the reset.
        ("increase", (0, 5, 10, 2, 4), 14.0),
        ("rate", (0, 5, 10, 2, 4), 14.0 / 4),
    ],
)
def test_aggregations(aggregation: str, values: tuple[float, ...], expected: float) -> None:
    ts, vs = arr(*values)
    assert aggregate(aggregation, ts, vs) == pytest.approx(expected)


def test_aggregations_without_enough_data() -> None:
    ts, vs = arr()
    assert aggregate("last", ts, vs) is None
    ts, vs = arr(5)
    assert aggregate("rate", ts, vs) is None
    assert aggregate("increase", ts, vs) is None
    with pytest.raises(ValueError, match="unknown aggregation"):
        aggregate("median", ts, vs)


def test_templates_substitute_value_and_labels_only() -> None:
    text = "CPU {{ $value }} % on {{$labels.host}} ({{ $labels.missing }}) {{ 1+1 }}"
    assert render_template(text, 94.25, {"host": "a"}) == "CPU 94.2 % on a () {{ 1+1 }}"
    assert render_template("{{ $value }}", 3.0, {}) == "3"
    assert render_template("{{ $value }}", None, {}) == "n/a"


def test_rule_from_dict_full_form() -> None:
    rule = rule_from_dict(
        {
            "name": "SlowApi",
            "metric": "response_time_ms",
            "matchers": ['job="api"', 'path=~"/v1/.*"', 'env!="dev"'],
            "aggregation": "p95",
            "window": "5m",
            "op": ">=",
            "threshold": 250.0,
            "resolve_threshold": 200.0,
            "for": "2m",
            "keep_firing_for": "1m",
            "severity": "HIGH",
            "labels": {"team": "web"},
            "annotations": {"runbook_url": "https://runbooks/slow-api"},
        }
    )
    assert (
        rule.window_ms == 300_000 and rule.for_ms == 120_000 and rule.keep_firing_for_ms == 60_000
    )
    assert rule.severity is Severity.HIGH
    assert [str(m) for m in rule.matchers] == ['job="api"', 'path=~"/v1/.*"', 'env!="dev"']
    assert rule.fires(250.0) and not rule.fires(249.0)
    assert rule.holds(200.0) and not rule.holds(199.0)
    assert rule.metric_kind is MetricKind.PERFORMANCE


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"name": "r", "metric": "x", "threshold": 1, "aggregation": "median"},
            "unknown aggregation",
        ),
        (
            {"name": "r", "metric": "x", "threshold": 1, "window": "5 minutes"},
            "window: invalid duration",
        ),
        ({"name": "r", "metric": "x", "threshold": 1, "matchers": ['a=~"(("']}, "invalid regular"),
        ({"name": "r", "metric": "x", "threshold": 1, "colour": "red"}, "unknown field(s) colour"),
        ({"name": "r", "metric": "x"}, "threshold: required"),
        ({"name": "r", "metric": "x", "threshold": 1, "op": "=>"}, "op: '=>'"),
        ({"name": "r", "metric": "1x", "threshold": 1}, "metric: '1x'"),
        ({"name": "r", "metric": "x", "threshold": 90, "resolve_threshold": 95}, "must be <="),
        ({"name": "r", "metric": "x", "threshold": 1, "severity": "urgent"}, "unknown severity"),
        ({"name": "r", "metric": "x", "kind": "magic"}, "unknown kind"),
        ({"name": "r", "metric": "x", "kind": "unexplained_anomaly", "k": -1}, "k: must be"),
    ],
)
def test_bad_rules_are_rejected_naming_rule_and_reason(
    data: dict[str, object], message: str
) -> None:
    with pytest.raises(RuleError) as info:
        rule_from_dict(data, where="rules.toml: rules[0]")
    text = str(info.value)
    assert text.startswith("rules.toml: rules[0] ('r')")
    assert message in text


SCAN_IMPACT = {"name": "r", "kind": "scan_impact", "metric": "response_time_ms"}
ANOMALY = {"name": "r", "kind": "unexplained_anomaly", "metric": "response_time_ms"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (dict(SCAN_IMPACT, min_effect_pct=-1), "min_effect_pct: must not be negative, got -1"),
        (dict(SCAN_IMPACT, max_q=1.5), "max_q: must be between 0 and 1 (exclusive), got 1.5"),
        (dict(SCAN_IMPACT, min_effect_pct=20, resolve_threshold=30), "<= min_effect_pct (20)"),
        (
            dict(ANOMALY, min_points=0.5),
            "min_points: must be a whole number of at least 2, got 0.5",
        ),
        (dict(ANOMALY, min_points=1), "min_points: must be a whole number of at least 2, got 1"),
        (
            dict(ANOMALY, window="5m", recent="10m"),
            "recent: must be shorter than window (5m), got 10m",
        ),
        (dict(ANOMALY, window="30s"), "recent: must be shorter than window (30s), got 1m"),
        (dict(ANOMALY, k=4, resolve_threshold=6), "resolve_threshold: must be <= k (4)"),
        (dict(ANOMALY, resolve_threshold=-1), "resolve_threshold: must not be negative"),
        (
            {"name": "r", "metric": "security_false_positives", "threshold": 50},
            "threshold: 50 is outside the values security_false_positives can take (0 to 1, "
            "a ratio: 0.5 means 50 %)",
        ),
        (
            {"name": "r", "metric": "cpu_percent", "threshold": 90, "resolve_threshold": -5},
            "resolve_threshold: -5 is outside the values cpu_percent can take (0 to 100",
        ),
        (
            {"name": "r", "metric": "security_scan_coverage", "op": "<", "threshold": 800},
            "threshold: 800 is outside",
        ),
    ],
)
def test_nonsense_numbers_are_rejected_naming_the_key(
    data: dict[str, object], message: str
) -> None:
    with pytest.raises(RuleError) as info:
        rule_from_dict(data, where="rules.toml: rules[0]")
    text = str(info.value)
    assert text.startswith("rules.toml: rules[0] ('r'): ")
    assert message in text


def test_meaningful_edge_values_still_load() -> None:
    # Hysteresis below the firing level of each kind is what resolve_threshold is for.
    impact = rule_from_dict(dict(SCAN_IMPACT, min_effect_pct=20, resolve_threshold=10))
    assert impact.resolve_threshold == 10.0
    assert rule_from_dict(dict(ANOMALY, k=5, resolve_threshold=3, min_points=2)).params["k"] == 5
    # Rates and counts of a bounded metric are not bounded by it.
    rate = {"name": "r", "metric": "cpu_percent", "aggregation": "rate", "threshold": 500}
    assert rule_from_dict(rate).threshold == 500.0
    assert rule_from_dict({"name": "r", "metric": "process_cpu_percent", "threshold": 180})
    assert rule_from_dict(dict(SCAN_IMPACT, min_effect_pct=0)).params["min_effect_pct"] == 0.0


def test_every_problem_of_a_rule_is_listed_at_once() -> None:
    data = dict(ANOMALY, k=-2, min_points=1.5, colour="red", severity="urgent")
    with pytest.raises(RuleError) as info:
        rule_from_dict(data, where="rules.toml: rules[0]")
    text = str(info.value)
    for part in ("unknown field(s) colour", "unknown severity", "k: must be greater than 0, got -2",
                 "min_points: must be a whole number of at least 2, got 1.5"):  # fmt: skip
        assert part in text


def test_rules_file_keeps_good_rules_and_names_bad_ones(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(
        """
[[rules]]
name = "Good"
metric = "cpu_percent"
threshold = 90.0

[[rules]]
name = "BadAgg"
metric = "cpu_percent"
aggregation = "median"
threshold = 1.0

[[rules]]
name = "Good"
metric = "memory_percent"
threshold = 90.0

[[rules]]
name = "Anomaly"
kind = "unexplained_anomaly"
metric = "response_time_ms"
window = "1h"
k = 4.0
explained_by = ["benchmark_time"]
"""
    )
    loaded = load_rules_file(path)
    assert [r.name for r in loaded.rules] == ["Good", "Anomaly"]
    assert loaded.rules[1].params["explained_by"] == ("benchmark_time",)
    assert loaded.rules[1].metric_kind is MetricKind.SECURITY
    assert len(loaded.errors) == 2
    assert str(path) in loaded.errors[0] and "'BadAgg'" in loaded.errors[0]
    assert "unknown aggregation 'median'" in loaded.errors[0]
    assert "used twice" in loaded.errors[1]
    broken = tmp_path / "broken.toml"
    broken.write_text("[[rules]\n")
    assert "invalid TOML" in load_rules_file(broken).errors[0]
    assert "absent.toml: no such file" in load_rules_file(tmp_path / "absent.toml").errors[0]


def test_rules_from_config_merge_with_defaults(tmp_path: Path) -> None:
    config = tmp_path / "secperf.toml"
    config.write_text(
        """
[alerts]
[[alerts.rules]]
name = "HostHighCpu"
metric = "cpu_percent"
aggregation = "max"
window = "2m"
threshold = 99.0
for = "1m"
severity = "critical"
"""
    )
    loaded = load_config(config)
    rules = rules_from_config(loaded.config.alerts.rules, defaults=True)
    names = [r.name for r in rules]
    assert names.count("HostHighCpu") == 1
    cpu = next(r for r in rules if r.name == "HostHighCpu")
    assert (cpu.aggregation, cpu.threshold, cpu.for_ms) == ("max", 99.0, 60_000)
    assert "SecretFound" in names
    assert [r.name for r in rules_from_config(loaded.config.alerts.rules, defaults=False)] == [
        "HostHighCpu"
    ]


def test_default_rule_set() -> None:
    rules = {r.name: r for r in default_rules(cpu_count=4)}
    assert set(rules) == {
        "HostHighCpu",
        "HostHighMemory",
        "HostSwapping",
        "HostHighLoad",
        "NewCriticalFinding",
        "SecretFound",
        "ScanCoverageLow",
        "ScanTimeHigh",
        "FalsePositiveRateHigh",
        "ScansRaiseHostCpu",
        "ScansSlowLatency",
    }
    assert rules["HostHighCpu"].for_ms == 300_000 and rules["HostHighCpu"].threshold == 90
    assert rules["HostHighLoad"].threshold == 8.0
    assert rules["ScanCoverageLow"].fires(79.0) and not rules["ScanCoverageLow"].fires(80.0)
    security = {n for n, r in rules.items() if r.is_security}
    assert security == {
        "NewCriticalFinding",
        "SecretFound",
        "ScanCoverageLow",
        "ScanTimeHigh",
        "FalsePositiveRateHigh",
        "ScansRaiseHostCpu",
        "ScansSlowLatency",
    }


def test_threshold_evaluation_over_the_store_with_recent_samples(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.db")
    try:
        store.write_samples(
            [
                Sample("cpu_percent", {"host": h, **extra}, t, v)
                for h in ("a", "b")
                for extra in ({}, {"cpu": "0"})
                for t, v in ((1000, 50.0), (2000, 95.0 if h == "a" else 20.0))
            ],
            now_ms=3000,
        )
        recent = RecentSamples()
        # A sample the store does not hold yet, and one replacing a stored value.
        recent.add([Sample("cpu_percent", {"host": "b"}, 2000, 99.0)])
        rule = rule_from_dict(
            {
                "name": "r",
                "metric": "cpu_percent",
                "matchers": ['cpu=""'],
                "aggregation": "max",
                "window": "10s",
                "threshold": 90.0,
            }
        )
        reader = SeriesReader(store, recent)
        obs = sorted(evaluate_threshold(rule, reader, 3000), key=lambda o: o.labels["host"])
        assert [(o.labels, o.value, o.fires) for o in obs] == [
            ({"host": "a"}, 95.0, True),
            ({"host": "b"}, 99.0, True),
        ]
        # A second rule on the same metric reads from the tick's cache.
        before = reader.queries
        evaluate_threshold(
            Rule(name="x", metric="cpu_percent", threshold=1.0, window_ms=5000), reader, 3000
        )
        assert reader.queries == before
    finally:
        store.close()


def test_engine_from_config(tmp_path: Path) -> None:
    from secperf.alerts import AlertEngine
    from secperf.alerts.notifiers import LogNotifier
    from secperf.bus.memory import AsyncEventBus

    config = tmp_path / "secperf.toml"
    config.write_text(
        """
[alerts]
evaluation_interval = "30s"
group_by = ["alertname", "host"]
group_wait = "0s"
default_rules = false

[[alerts.rules]]
name = "Mem"
metric = "memory_percent"
threshold = 95.0

[[alerts.inhibit_rules]]
source_matchers = ['alertname="HostDown"']
target_matchers = ['severity!="critical"']
equal = ["host"]

[[alerts.notifiers]]
kind = "log"
"""
    )
    alerts = load_config(config).config.alerts
    store = Store.open(tmp_path / "s.db")
    try:
        engine = AlertEngine.from_config(store, AsyncEventBus(), alerts)
        assert list(engine.rules) == ["Mem"]
        assert engine.evaluation_interval_s == 30
        assert engine.grouper.settings.group_by == ("alertname", "host")
        assert engine.grouper.settings.group_wait_ms == 0
        assert len(engine.inhibitor.rules) == 2
        assert isinstance(engine.runners[0].notifier, LogNotifier)
    finally:
        store.close()
