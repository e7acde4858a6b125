"""Building and validating alert rules from config, dicts and TOML files.

``[[alerts.rules]]`` in the config gives threshold rules (``AlertRuleConfig``);
``rule_from_dict`` reads the same keys plus ``kind`` and the kinds' parameters,
and ``load_rules_file`` reads a TOML file of ``[[rules]]`` tables, rejecting a
malformed rule by name and reason while keeping the others.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from secperf.alerts.default_rules import default_rules
from secperf.alerts.rules import Rule
from secperf.alerts.silences import MatcherError, parse_matcher
from secperf.config import (
    AGGREGATIONS,
    COMPARISONS,
    AlertRuleConfig,
    AlertsConfig,
    Matcher,
    parse_duration_ms,
)
from secperf.config.rule_checks import (
    DURATION_PARAMS,
    KIND_PARAMS,
    KINDS,
    NO_DATA_MODES,
    RESOLVE_INPUTS,
    param_problems,
    range_problems,
    resolve_problems,
)
from secperf.model import LABEL_NAME_RE, METRIC_NAME_RE, MetricKind, Severity

# Keys of the dict form beyond the kinds' parameters (``KIND_PARAMS``).
_COMMON_KEYS = frozenset(
    {
        "name",
        "kind",
        "metric",
        "matchers",
        "aggregation",
        "window",
        "op",
        "threshold",
        "resolve_threshold",
        "for",
        "keep_firing_for",
        "severity",
        "labels",
        "annotations",
        "no_data",
        "side",
    }
)


class RuleError(ValueError):
    """A rule that cannot be loaded; the message names where, the rule and why."""


def rule_from_config(cfg: AlertRuleConfig) -> Rule:
    """A rule from an already validated ``[[alerts.rules]]`` entry (any kind)."""
    return Rule(
        name=cfg.name,
        metric=cfg.metric,
        threshold=cfg.threshold if cfg.threshold is not None else 0.0,
        kind=cfg.kind,
        matchers=tuple(cfg.matchers),
        aggregation=cfg.aggregation,
        window_ms=cfg.window,
        op=cfg.op,
        resolve_threshold=cfg.resolve_threshold,
        for_ms=cfg.for_,
        keep_firing_for_ms=cfg.keep_firing_for,
        severity=cfg.severity,
        labels=dict(cfg.labels),
        annotations=dict(cfg.annotations),
        no_data=cfg.no_data,
        side=MetricKind(cfg.side) if cfg.side is not None else None,
        params=cfg.params(),
    )


def _duration(value: Any, key: str, problem: list[str], *, positive: bool = False) -> int:
    try:
        if isinstance(value, bool) or not isinstance(value, str):
            raise ValueError(f"expected a duration string such as '15s' or '5m', got {value!r}")
        ms = parse_duration_ms(value)
    except ValueError as exc:
        problem.append(f"{key}: {exc}")
        return 0
    if positive and ms <= 0:
        problem.append(f"{key}: must be longer than 0")
    return ms


def _number(value: Any, key: str, problem: list[str]) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        problem.append(f"{key}: expected a finite number, got {value!r}")
        return 0.0
    return float(value)


def _str_map(value: Any, key: str, problem: list[str], *, label_keys: bool) -> dict[str, str]:
    if not isinstance(value, Mapping):
        problem.append(f"{key}: expected a table of strings")
        return {}
    out: dict[str, str] = {}
    for k, v in value.items():
        if not isinstance(k, str) or (label_keys and not LABEL_NAME_RE.match(k)) or not k:
            problem.append(f"{key}: invalid key {k!r}")
        elif not isinstance(v, str):
            problem.append(f"{key}.{k}: expected a string, got {type(v).__name__}")
        else:
            out[k] = v
    return out


def rule_from_dict(data: Any, *, where: str = "rule") -> Rule:
    """A rule from its dict form (the config keys plus ``kind`` and its parameters).

    Raises RuleError naming ``where``, the rule's name and every problem found.
    """
    if not isinstance(data, Mapping):
        raise RuleError(f"{where}: expected a table, got {type(data).__name__}")
    name = data.get("name")
    label = f"{where} ({name!r})" if isinstance(name, str) else where
    problems: list[str] = []
    kind = data.get("kind", "threshold")
    if kind not in KINDS:
        problems.append(f"kind: unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
        kind = "threshold"
    param_defaults = KIND_PARAMS[kind]
    unknown = set(data) - _COMMON_KEYS - set(param_defaults)
    if unknown:
        problems.append(
            f"unknown field(s) {', '.join(sorted(map(str, unknown)))} for kind {kind!r}"
        )
    if not isinstance(name, str) or not name.strip():
        problems.append("name: required, a non-empty string")
    metric = data.get("metric")
    if not isinstance(metric, str) or not METRIC_NAME_RE.match(metric):
        problems.append(
            f"metric: {metric!r} must be a metric name matching {METRIC_NAME_RE.pattern}"
        )
    matchers: list[Matcher] = []
    raw_matchers = data.get("matchers", [])
    if not isinstance(raw_matchers, list):
        problems.append("matchers: expected a list such as ['host=\"a\"']")
    else:
        for index, text in enumerate(raw_matchers):
            try:
                matchers.append(parse_matcher(text, where=f"matchers[{index}]"))
            except MatcherError as exc:
                problems.append(str(exc))
    aggregation = data.get("aggregation", "last")
    if aggregation not in AGGREGATIONS:
        problems.append(
            f"aggregation: unknown aggregation {aggregation!r}; "
            f"expected one of {', '.join(AGGREGATIONS)}"
        )
    op = data.get("op", ">")
    if op not in COMPARISONS:
        problems.append(f"op: {op!r} must be one of {', '.join(COMPARISONS)}")
    default_threshold = 0.0 if kind != "threshold" else None
    raw_threshold = data.get("threshold", default_threshold)
    threshold = 0.0
    if raw_threshold is None:
        problems.append("threshold: required, a number")
    else:
        threshold = _number(raw_threshold, "threshold", problems)
    resolve = data.get("resolve_threshold")
    resolve_threshold = None if resolve is None else _number(resolve, "resolve_threshold", problems)
    window = _duration(data.get("window", "5m"), "window", problems, positive=True)
    for_ms = _duration(data.get("for", "0"), "for", problems)
    keep = _duration(data.get("keep_firing_for", "0"), "keep_firing_for", problems)
    severity = Severity.MEDIUM
    try:
        severity = Severity.parse(str(data.get("severity", "medium")))
    except ValueError as exc:
        problems.append(f"severity: {exc}")
    labels = _str_map(data.get("labels", {}), "labels", problems, label_keys=True)
    annotations = _str_map(data.get("annotations", {}), "annotations", problems, label_keys=False)
    no_data = data.get("no_data", "nodata")
    if no_data not in NO_DATA_MODES:
        problems.append(f"no_data: {no_data!r} must be one of {', '.join(NO_DATA_MODES)}")
    side: MetricKind | None = None
    if "side" in data:
        try:
            side = MetricKind(data["side"])
        except ValueError:
            problems.append(f"side: {data['side']!r} must be 'security' or 'performance'")
    params: dict[str, Any] = {}
    for key, default in param_defaults.items():
        value = data.get(key, default)
        if key in DURATION_PARAMS:
            params[key] = _duration(value, key, problems)
        elif key == "direction":
            if value not in ("up", "down", "any"):
                problems.append(f"direction: {value!r} must be up, down or any")
            params[key] = value
        elif key == "explained_by":
            if isinstance(value, str):
                value = [v for v in value.split(",") if v]
            if not isinstance(value, list) or not all(
                isinstance(v, str) and METRIC_NAME_RE.match(v) for v in value
            ):
                problems.append("explained_by: expected a list of metric names")
                value = []
            params[key] = tuple(value)
        else:
            params[key] = _number(value, key, problems)
    # Checks of meaning run on the keys that parsed, so every problem is listed at once.
    bad = {problem.split(":", 1)[0] for problem in problems}
    problems.extend(param_problems(kind, params, window, bad))
    if kind == "threshold" and not bad & {"metric", "aggregation"}:
        levels = {"threshold": threshold}
        if resolve_threshold is not None:
            levels["resolve_threshold"] = resolve_threshold
        levels = {k: v for k, v in levels.items() if k not in bad}
        problems.extend(range_problems(str(metric), str(aggregation), levels))
    bad = {problem.split(":", 1)[0] for problem in problems}
    if resolve_threshold is not None and not bad & RESOLVE_INPUTS:
        problems.extend(resolve_problems(kind, op, threshold, resolve_threshold, params))
    if problems:
        raise RuleError(f"{label}: " + "; ".join(problems))
    assert isinstance(name, str) and isinstance(metric, str)
    return Rule(
        name=name,
        metric=metric,
        threshold=threshold,
        kind=kind,
        matchers=tuple(matchers),
        aggregation=str(aggregation),
        window_ms=window,
        op=str(op),
        resolve_threshold=resolve_threshold,
        for_ms=for_ms,
        keep_firing_for_ms=keep,
        severity=severity,
        labels=labels,
        annotations=annotations,
        no_data=str(no_data),
        side=side,
        params=params,
    )


@dataclass(frozen=True, slots=True)
class RuleEntry:
    """One rule of the effective set, where it comes from, and why it does not load.

    ``source``: ``default``, a config key (``secperf.toml: alerts.rules[0]``) or a
    rule file's rule (``rules.toml: rules[1]``). ``rule`` is None when it does not
    load (``problem`` says why); ``replaced_by`` names the rule that replaces a
    default one of the same name.
    """

    name: str | None
    source: str
    rule: Rule | None
    problem: str | None = None
    replaced_by: str | None = None

    @property
    def active(self) -> bool:
        """Whether the engine evaluates this rule."""
        return self.rule is not None and self.problem is None and self.replaced_by is None


@dataclass(frozen=True, slots=True)
class LoadedRules:
    """Rules that loaded, and one message per rule that did not (``entries``: each one)."""

    rules: list[Rule]
    errors: list[str]
    entries: list[RuleEntry] = field(default_factory=list)


def load_rule_dicts(items: Iterable[Any], *, source: str) -> LoadedRules:
    """Build every rule it can; each bad one is reported naming ``source`` and the rule."""
    rules: list[Rule] = []
    errors: list[str] = []
    entries: list[RuleEntry] = []
    seen: dict[str, str] = {}
    for index, item in enumerate(items):
        where = f"{source}: rules[{index}]"
        raw_name = item.get("name") if isinstance(item, Mapping) else None
        name = raw_name if isinstance(raw_name, str) else None
        try:
            rule = rule_from_dict(item, where=where)
        except RuleError as exc:
            errors.append(str(exc))
            entries.append(RuleEntry(name, where, None, str(exc)))
            continue
        if rule.name in seen:
            problem = f"{where} ({rule.name!r}): the name is used twice (also {seen[rule.name]})"
            errors.append(problem)
            entries.append(RuleEntry(rule.name, where, rule, problem))
            continue
        seen[rule.name] = where
        rules.append(rule)
        entries.append(RuleEntry(rule.name, where, rule))
    return LoadedRules(rules, errors, entries)


def load_rules_file(path: Path) -> LoadedRules:
    """Read ``[[rules]]`` tables from a TOML file (``rules check FILE``)."""
    shown = str(path)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return LoadedRules([], [f"{shown}: no such file"])
    except IsADirectoryError:
        return LoadedRules([], [f"{shown}: is a directory, not a TOML file"])
    except OSError as exc:
        return LoadedRules([], [f"{shown}: cannot read: {exc.strerror or exc}"])
    except UnicodeDecodeError as exc:
        return LoadedRules([], [f"{shown}: not valid UTF-8 (byte {exc.start})"])
    except tomllib.TOMLDecodeError as exc:
        return LoadedRules([], [f"{shown}: invalid TOML: {exc}"])
    items = document.get("rules", [])
    if not isinstance(items, list):
        return LoadedRules([], [f"{shown}: 'rules' must be an array of tables ([[rules]])"])
    extra = set(document) - {"rules"}
    loaded = load_rule_dicts(items, source=shown)
    if extra:
        loaded.errors.append(f"{shown}: unknown top-level key(s) {', '.join(sorted(extra))}")
    return loaded


def rules_from_config(rule_configs: Iterable[AlertRuleConfig], *, defaults: bool) -> list[Rule]:
    """The default rules (when ``defaults``) followed by the configured ones.

    A configured rule with a default rule's name replaces it.
    """
    configured = [rule_from_config(c) for c in rule_configs]
    names = {r.name for r in configured}
    base = [r for r in default_rules() if r.name not in names] if defaults else []
    return base + configured


@dataclass(frozen=True, slots=True)
class EffectiveRules:
    """The rules an engine built from ``[alerts]`` evaluates, each with its source.

    ``entries`` lists every rule in order (defaults, the config's, each rule
    file's), the ones that do not load included; ``problems`` says what is wrong,
    naming the file, the rule and why.
    """

    entries: list[RuleEntry]
    problems: list[str]

    @property
    def rules(self) -> list[Rule]:
        """The rules that load and are not replaced."""
        return [e.rule for e in self.entries if e.active and e.rule is not None]

    def require_valid(self) -> list[Rule]:
        """The rules; RuleError listing every problem when any rule or file does not load."""
        if self.problems:
            raise RuleError("alert rules do not load:\n" + "\n".join(self.problems))
        return self.rules


def effective_rules(config: AlertsConfig, *, source: str = "alerts") -> EffectiveRules:
    """Defaults, ``[[alerts.rules]]`` and the rule files of ``config``, each with its source.

    A configured or rule-file rule with a default rule's name replaces it; the
    same name twice among them is a problem. ``source`` names the config (its
    file and key prefix, e.g. ``secperf.toml: alerts`` or ``pyproject.toml:
    tool.secperf.alerts``).
    """
    entries: list[RuleEntry] = []
    problems: list[str] = []
    owned: dict[str, str] = {}
    for index, cfg in enumerate(config.rules):
        where = f"{source}.rules[{index}]"
        if cfg.name in owned:
            problem = f"{where} ({cfg.name!r}): the name is used twice (also {owned[cfg.name]})"
            problems.append(problem)
            entries.append(RuleEntry(cfg.name, where, rule_from_config(cfg), problem))
            continue
        owned[cfg.name] = where
        entries.append(RuleEntry(cfg.name, where, rule_from_config(cfg)))
    for path in config.rule_files:
        loaded = load_rules_file(Path(path))
        problems += loaded.errors
        for entry in loaded.entries:
            if entry.problem is not None or entry.name is None:
                entries.append(entry)
            elif entry.name in owned:
                problem = (
                    f"{entry.source} ({entry.name!r}): the name is used twice "
                    f"(also {owned[entry.name]})"
                )
                problems.append(problem)
                entries.append(replace(entry, problem=problem))
            else:
                owned[entry.name] = entry.source
                entries.append(entry)
    base = [
        RuleEntry(rule.name, "default", rule, replaced_by=owned.get(rule.name))
        for rule in (default_rules() if config.default_rules else [])
    ]
    return EffectiveRules(base + entries, problems)
