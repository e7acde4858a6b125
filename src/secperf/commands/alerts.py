"""``secperf alerts`` (list, ack, silence, unsilence) and ``secperf rules check``.

The store is the shared truth: an alert engine may run in another process
(``secperf serve`` or ``secperf up``), so these commands read and write the
store's alert and silence records. The engine reads silences on every tick, so
a silence added here takes effect at its next evaluation.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from secperf.alerts import operator
from secperf.alerts.default_rules import default_rules
from secperf.alerts.operator import OperatorError
from secperf.alerts.rule_loading import RuleError, rule_from_dict
from secperf.alerts.silences import (
    MatcherError,
    SilenceSet,
    check_silence_matchers,
    matcher_to_object,
    parse_matcher,
)
from secperf.config import (
    PYPROJECT_FILE_NAME,
    AlertRuleConfig,
    ConfigError,
    Matcher,
    format_duration_ms,
    load_config,
    parse_duration_ms,
)
from secperf.model import Alert, AlertState
from secperf.store import Silence, Store
from secperf.timefmt import iso_seconds

#: The shortest fingerprint prefix ``ack`` accepts: short prefixes match by accident.
MIN_PREFIX = 6
#: The longest silence accepted (as the HTTP API): a year.
#: States ``alerts list`` shows when none is asked for.
SHOWN_BY_DEFAULT = tuple(s for s in AlertState if s is not AlertState.INACTIVE)

# Keys of an [[alerts.rules]] entry in the config (the config model's fields, by
# their TOML names); a rule file accepts more.
_CONFIG_RULE_KEYS = frozenset(
    field.alias or name for name, field in AlertRuleConfig.model_fields.items()
)


class AlertsCommandError(ValueError):
    """Input the alert commands refuse; the message names the argument and why."""


# --------------------------------------------------------------------------- time


def ago(ms: int, now_ms: int) -> str:
    """How long before ``now_ms`` ``ms`` was (``5m ago``, ``in 1h 59m``, ``2d 3h ago``).

    Past an hour the next unit is shown too: a 2-hour silence set a minute ago
    ends "in 1h 59m", not "in 1h".
    """
    delta = now_ms - ms
    future = delta < 0
    seconds = abs(delta) // 1000
    text = f"{seconds}s"
    for unit, size, smaller, smaller_size in (("d", 86_400, "h", 3_600), ("h", 3_600, "m", 60)):
        if seconds >= size:
            whole, rest = divmod(seconds, size)
            part = rest // smaller_size
            text = f"{whole}{unit} {part}{smaller}" if part else f"{whole}{unit}"
            break
    else:
        if seconds >= 60:
            text = f"{seconds // 60}m"
    return f"in {text}" if future else f"{text} ago"


def parse_starts(text: str | None, now_ms: int) -> int:
    """``--starts``: ``now``, a duration from now (``30m``) or an ISO date-time (UTC if naive)."""
    if text is None or text.strip().lower() == "now":
        return now_ms
    stripped = text.strip()
    try:
        return now_ms + parse_duration_ms(stripped)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(stripped)
    except ValueError:
        raise AlertsCommandError(
            f"--starts {text!r}: expected now, a duration from now such as 30m, "
            "or an ISO date-time such as 2024-05-01T22:00"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


# --------------------------------------------------------------------------- list


def parse_states(values: Sequence[str] | None) -> list[AlertState]:
    """``--state`` values (repeatable, or comma-separated) as states; all but inactive if none."""
    if not values:
        return list(SHOWN_BY_DEFAULT)
    states: list[AlertState] = []
    for value in values:
        for part in value.split(","):
            name = part.strip().lower()
            if not name:
                continue
            try:
                state = AlertState(name)
            except ValueError:
                known = ", ".join(s.value for s in AlertState)
                raise AlertsCommandError(
                    f"--state {part.strip()!r}: unknown state; expected one of {known}"
                ) from None
            if state not in states:
                states.append(state)
    if not states:
        raise AlertsCommandError("--state: give at least one state")
    return states


def matching_labels(alert: Alert) -> dict[str, str]:
    """The labels silences match against (``alertname`` defaults to the rule)."""
    return {"alertname": alert.rule, **alert.labels}


def stored_alerts(
    store: Store, states: Sequence[AlertState], now_ms: int
) -> list[tuple[Alert, bool]]:
    """Stored alerts in ``states``, newest change first, each with whether a silence mutes it."""
    active = SilenceSet(store.silences(active_at_ms=now_ms))
    found = sorted(store.alerts(states), key=lambda a: a.updated_ms, reverse=True)
    return [(a, active.is_silenced(matching_labels(a), now_ms)) for a in found]


def alert_since(alert: Alert) -> int:
    """When the alert entered its state: resolved, fired, became active, or last changed."""
    if alert.state is AlertState.RESOLVED and alert.resolved_at_ms is not None:
        return alert.resolved_at_ms
    return alert.fired_at_ms or alert.active_since_ms or alert.updated_ms


_ALERT_ADAPTER: TypeAdapter[Alert] = TypeAdapter(Alert)


def alerts_json(rows: Sequence[tuple[Alert, bool]]) -> list[dict[str, Any]]:
    """``alerts list --json``: each alert's fields plus ``silenced``."""
    out: list[dict[str, Any]] = []
    for alert, silenced in rows:
        item: dict[str, Any] = _ALERT_ADAPTER.dump_python(alert, mode="json")
        item["silenced"] = silenced
        out.append(item)
    return out


# --------------------------------------------------------------------------- ack


def resolve_alert(store: Store, prefix: str) -> Alert:
    """The one stored alert whose fingerprint starts with ``prefix`` (>= 6 characters)."""
    wanted = prefix.strip().lower()
    if len(wanted) < MIN_PREFIX:
        raise AlertsCommandError(
            f"fingerprint {prefix!r}: give at least {MIN_PREFIX} characters "
            "(`secperf alerts list` shows them)"
        )
    found = [a for a in store.alerts() if a.fingerprint.lower().startswith(wanted)]
    if not found:
        raise AlertsCommandError(
            f"fingerprint {prefix!r}: no stored alert starts with it "
            "(`secperf alerts list --state firing` shows the alerts)"
        )
    if len(found) > 1:
        shown = ", ".join(f"{a.fingerprint} ({a.rule})" for a in found[:5])
        raise AlertsCommandError(
            f"fingerprint {prefix!r} matches {len(found)} alerts: {shown}; give more characters"
        )
    return found[0]


def acknowledge(store: Store, prefix: str, author: str, note: str, now_ms: int) -> Alert:
    """Record who acknowledged the alert ``prefix`` names, and why; returns it updated."""
    try:
        # Checked before the fingerprint is looked up, so bad input is named first.
        operator.check_author(author)
        operator.check_note(note)
        return operator.acknowledge(store, resolve_alert(store, prefix), author, note, now_ms)
    except OperatorError as exc:
        raise AlertsCommandError(f"--{exc.field}: {exc.problem}") from None


# --------------------------------------------------------------------------- silences


def parse_silence_matchers(texts: Sequence[str]) -> list[Matcher]:
    """PromQL-form matchers (``job="api"``, ``severity=~"high|critical"``), checked."""
    if not texts:
        raise AlertsCommandError('give at least one matcher, e.g. alertname="HostHighCpu"')
    matchers: list[Matcher] = []
    for text in texts:
        try:
            matchers.append(parse_matcher(text, where=f"matcher {text!r}"))
        except MatcherError as exc:
            raise AlertsCommandError(str(exc)) from None
    try:
        check_silence_matchers(matchers, where="matchers " + " ".join(texts))
    except MatcherError as exc:
        raise AlertsCommandError(str(exc)) from None
    return matchers


def add_silence(
    store: Store,
    matcher_texts: Sequence[str],
    *,
    duration: str,
    starts: str | None,
    author: str,
    reason: str,
    now_ms: int,
) -> Silence:
    """Store a silence of ``matcher_texts`` from ``starts`` for ``duration``."""
    matchers = parse_silence_matchers(matcher_texts)
    try:
        length = parse_duration_ms(duration)
    except ValueError as exc:
        raise AlertsCommandError(f"--duration {duration!r}: {exc}") from None
    if length <= 0:
        raise AlertsCommandError(f"--duration {duration!r}: must be longer than 0")
    start = parse_starts(starts, now_ms)
    end = start + length
    objects: list[dict[str, Any]] = [matcher_to_object(m) for m in matchers]
    try:
        return operator.add_silence(store, objects, start, end, author, reason, now_ms)
    except OperatorError as exc:
        if exc.field != "ends_ms":
            raise AlertsCommandError(f"--{exc.field}: {exc.problem}") from None
        if end <= now_ms:
            raise AlertsCommandError(
                f"--starts {starts!r} with --duration {duration}: the silence would end "
                f"at {iso_seconds(end)}, in the past"
            ) from None
        raise AlertsCommandError(f"--duration {duration!r}: {exc.problem}") from None


def matchers_text(matchers: Iterable[Mapping[str, Any]]) -> str:
    """Stored matcher objects in their PromQL form: ``job="api", env!="dev"``."""
    parts = []
    for m in matchers:
        parts.append(f"{m.get('name')}{m.get('op', '=')}{json.dumps(str(m.get('value', '')))}")
    return ", ".join(parts)


def silence_line(silence: Silence, now_ms: int) -> str:
    """One line describing a silence."""
    when = (
        f"until {iso_seconds(silence.ends_ms)} "
        f"({format_duration_ms(silence.ends_ms - silence.starts_ms)})"
        if silence.starts_ms <= now_ms
        else f"from {iso_seconds(silence.starts_ms)} until {iso_seconds(silence.ends_ms)}"
    )
    return (
        f"silence {silence.id}: {{{matchers_text(silence.matchers)}}} {when}, "
        f"by {silence.author}: {silence.reason}"
    )


@dataclass(frozen=True, slots=True)
class Unsilenced:
    """What ``unsilence`` did: the silence, and whether it was still in force or pending."""

    silence: Silence
    ended: bool


def expire_silence(store: Store, silence_id: int, now_ms: int) -> Unsilenced:
    """End a silence now; AlertsCommandError when no silence has this id."""
    found = next((s for s in store.silences() if s.id == silence_id), None)
    if found is None:
        raise AlertsCommandError(f"silence {silence_id}: no silence has this id")
    ended = operator.expire_silence(store, silence_id, now_ms)
    return Unsilenced(found, ended)


# --------------------------------------------------------------------------- rules check


@dataclass(frozen=True, slots=True)
class RuleCheck:
    """The verdict on one rule (``problem`` None: it loads)."""

    source: str
    where: str
    name: str | None
    problem: str | None = None
    summary: str = ""


@dataclass(slots=True)
class RulesReport:
    """Every rule checked, and problems of whole files."""

    checks: list[RuleCheck] = dataclasses.field(default_factory=list)
    file_problems: list[str] = dataclasses.field(default_factory=list)
    default_rules: int = 0

    @property
    def ok(self) -> bool:
        """True when every rule loads and no file has a problem."""
        return not self.file_problems and all(c.problem is None for c in self.checks)


def _describe(data: Mapping[str, Any]) -> str:
    rule = rule_from_dict(data)
    if rule.kind != "threshold":
        return f"{rule.kind} on {rule.metric}, {rule.severity.value}"
    matchers = ",".join(f"{m.name}{m.op}{json.dumps(m.value)}" for m in rule.matchers)
    selector = f"{rule.metric}{{{matchers}}}" if matchers else rule.metric
    window = format_duration_ms(rule.window_ms)
    return (
        f"{rule.aggregation}({selector}[{window}]) {rule.op} {rule.threshold:g}, "
        f"{rule.severity.value}"
    )


def _check_items(
    items: Sequence[Any],
    source: str,
    prefix: str,
    used: dict[str, str],
    *,
    config_form: bool,
) -> list[RuleCheck]:
    checks: list[RuleCheck] = []
    for index, item in enumerate(items):
        where = f"{prefix}[{index}]"
        name = item.get("name") if isinstance(item, Mapping) else None
        shown_name = name if isinstance(name, str) else None
        try:
            rule_from_dict(item, where=f"{source}: {where}")
        except RuleError as exc:
            checks.append(RuleCheck(source, where, shown_name, str(exc)))
            continue
        assert isinstance(item, Mapping) and isinstance(name, str)
        label = f"{source}: {where} ({name!r})"
        if config_form:
            extra = sorted(set(item) - _CONFIG_RULE_KEYS)
            if extra:
                checks.append(
                    RuleCheck(
                        source,
                        where,
                        name,
                        f"{label}: field(s) {', '.join(extra)} are only allowed in a rule "
                        "file ([alerts] rule_files)",
                    )
                )
                continue
        if name in used:
            checks.append(
                RuleCheck(source, where, name, f"{label}: the name is used twice ({used[name]})")
            )
            continue
        used[name] = f"also {source}: {where}"
        checks.append(RuleCheck(source, where, name, None, _describe(item)))
    return checks


def _read_document(path: Path, report: RulesReport) -> dict[str, Any] | None:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        report.file_problems.append(f"{path}: no such file")
    except IsADirectoryError:
        report.file_problems.append(f"{path}: is a directory, not a TOML file")
    except OSError as exc:
        report.file_problems.append(f"{path}: cannot read: {exc.strerror or exc}")
    except UnicodeDecodeError as exc:
        report.file_problems.append(f"{path}: not valid UTF-8 (byte {exc.start})")
    except tomllib.TOMLDecodeError as exc:
        report.file_problems.append(f"{path}: invalid TOML: {exc}")
    return None


def _check_rule_file(path: Path, report: RulesReport, used: dict[str, str]) -> None:
    document = _read_document(path, report)
    if document is None:
        return
    source = str(path)
    items = document.get("rules", [])
    if not isinstance(items, list):
        report.file_problems.append(f"{source}: 'rules' must be an array of tables ([[rules]])")
        return
    extra = sorted(set(document) - {"rules"})
    if extra:
        report.file_problems.append(f"{source}: unknown top-level key(s) {', '.join(extra)}")
    if not items:
        report.file_problems.append(f"{source}: no [[rules]] tables")
    report.checks += _check_items(items, source, "rules", used, config_form=False)


def _check_config(
    path: Path, alerts: Any, prefix: str, report: RulesReport, used: dict[str, str]
) -> None:
    source = str(path)
    if not isinstance(alerts, Mapping):
        report.file_problems.append(f"{source}: {prefix}alerts: expected a table")
        return
    items = alerts.get("rules", [])
    if not isinstance(items, list):
        report.file_problems.append(
            f"{source}: {prefix}alerts.rules must be an array of tables ([[{prefix}alerts.rules]])"
        )
        items = []
    defaults = alerts.get("default_rules", True)
    if defaults is True:
        configured = {i.get("name") for i in items if isinstance(i, Mapping)}
        for rule in default_rules():
            if rule.name not in configured:
                used[rule.name] = "a default rule has this name"
                report.default_rules += 1
    report.checks += _check_items(items, source, f"{prefix}alerts.rules", used, config_form=True)
    files = alerts.get("rule_files", [])
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        report.file_problems.append(
            f"{source}: {prefix}alerts.rule_files: expected a list of paths"
        )
        return
    for name in files:
        target = Path(name)
        if not target.is_absolute():
            target = path.parent / target
        _check_rule_file(target, report, used)
    # The rest of [alerts] must load too, or no engine starts; the rules'
    # own problems are already reported one by one above.
    try:
        load_config(path)
    except ConfigError as exc:
        report.file_problems += [
            p for p in exc.problems if f"{prefix}alerts." in p and f"{prefix}alerts.rules[" not in p
        ]


def check_rules(path: Path) -> RulesReport:
    """Check a rule file, or the ``[alerts]`` rules (and rule files) of a config file.

    A file with top-level ``[[rules]]`` is a rule file; ``secperf.toml`` (``[alerts]``)
    and ``pyproject.toml`` (``[tool.secperf.alerts]``) are config files.
    """
    report = RulesReport()
    document = _read_document(path, report)
    if document is None:
        return report
    used: dict[str, str] = {}
    if "rules" in document:
        _check_rule_file(path, report, used)
        return report
    prefix = ""
    section: Any = document
    if path.name == PYPROJECT_FILE_NAME:
        prefix = "tool.secperf."
        tool = document.get("tool", {})
        section = tool.get("secperf") if isinstance(tool, Mapping) else None
        if not isinstance(section, Mapping):
            report.file_problems.append(f"{path}: no [tool.secperf] table")
            return report
    if "alerts" not in section:
        report.file_problems.append(
            f"{path}: no rules here: expected [[rules]] tables (a rule file) "
            f"or an [{prefix}alerts] table (a config file)"
        )
        return report
    _check_config(path, section["alerts"], prefix, report, used)
    return report


def rules_report_lines(report: RulesReport) -> list[tuple[bool, str]]:
    """The lines ``rules check`` prints, each with whether it is a problem."""
    lines: list[tuple[bool, str]] = []
    for check in report.checks:
        if check.problem is None:
            lines.append((False, f"OK    {check.source}: {check.name} ({check.summary})"))
        else:
            lines.append((True, f"FAIL  {check.problem}"))
    lines += [(True, f"FAIL  {problem}") for problem in report.file_problems]
    return lines


__all__ = [
    "AlertsCommandError",
    "RuleCheck",
    "RulesReport",
    "Unsilenced",
    "acknowledge",
    "add_silence",
    "alert_since",
    "alerts_json",
    "check_rules",
    "expire_silence",
    "parse_silence_matchers",
    "parse_starts",
    "parse_states",
    "resolve_alert",
    "rules_report_lines",
    "silence_line",
    "stored_alerts",
]
