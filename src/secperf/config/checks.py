"""What is checked beyond each key's type: the server token (from the file or the
environment) and the rules that span several keys. They also run on what did parse
of a config that failed validation, so that every problem is reported at once.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import SecretStr, ValidationError

from secperf.config.errors import INDEX_RE
from secperf.config.rule_checks import (
    KIND_PARAMS,
    RESOLVE_INPUTS,
    foreign_params,
    param_problems,
    range_problems,
    resolve_problems,
)
from secperf.config.schema import Config
from secperf.config.sections.alerts import AlertRuleConfig
from secperf.config.sections.impact import SeriesSelector
from secperf.config.sections.server import MIN_TOKEN_LENGTH
from secperf.config.sections.siem import siem_problems
from secperf.config.units import format_duration_ms


def resolve_token(config: Config, prefix: str) -> tuple[Config, str | None, list[tuple[str, str]]]:
    """The config with the server token from the file or the environment, where it came
    from, and any problem with it as (dotted key, message)."""
    server = config.server
    problems: list[tuple[str, str]] = []
    if server.token is not None:
        if len(server.token.get_secret_value()) < MIN_TOKEN_LENGTH:
            problems.append(
                (
                    "server.token",
                    f"the token must be at least {MIN_TOKEN_LENGTH} characters long; "
                    f"generate one (python -c 'import secrets; print(secrets.token_urlsafe(32))') "
                    f"and prefer {prefix}server.token_env to keep it out of the file",
                )
            )
        return config, "file", problems
    if not server.token_env:
        return config, None, problems
    value = os.environ.get(server.token_env, "")
    if not value:
        return config, None, problems
    if len(value) < MIN_TOKEN_LENGTH:
        problems.append(
            (
                "server.token_env",
                f"the token in ${server.token_env} must be at least "
                f"{MIN_TOKEN_LENGTH} characters long",
            )
        )
    updated = server.model_copy(update={"token": SecretStr(value)})
    return (
        config.model_copy(update={"server": updated}),
        f"env:{server.token_env}",
        problems,
    )


def cross_checks(config: Config, prefix: str = "") -> list[tuple[str, str]]:
    """Rules that span several keys; each problem as (dotted key, message)."""
    problems: list[tuple[str, str]] = []
    server = config.server
    if not server.is_loopback and server.token is None:
        where = f"${server.token_env}" if server.token_env else f"{prefix}server.token"
        problems.append(
            (
                "server.host",
                f"binding {server.host!r} exposes secperf beyond this machine and requires a "
                f"token; set {where} (at least {MIN_TOKEN_LENGTH} characters) or bind 127.0.0.1",
            )
        )
    if len(set(config.scan.scanners)) != len(config.scan.scanners):
        problems.append(("scan.scanners", "a scanner is listed more than once"))
    deps = config.scan.deps
    if deps.osv_db is not None and not (
        deps.osv_db.is_dir() or (deps.osv_db.is_file() and deps.osv_db.suffix == ".zip")
    ):
        problems.append(
            (
                "scan.deps.osv_db",
                f"expected a directory of OSV JSON files or an OSV all.zip; "
                f"{str(deps.osv_db)!r} is neither",
            )
        )
    for index, rule_path in enumerate(config.scan.semgrep.rules):
        if not rule_path.exists():
            problems.append((f"scan.semgrep.rules[{index}]", f"no such file: {str(rule_path)!r}"))
    seen: set[str] = set()
    for index, target in enumerate(config.monitor.prometheus.targets):
        key = f"monitor.prometheus.targets[{index}]"
        if target.name in seen:
            problems.append((f"{key}.name", f"target name {target.name!r} is used twice"))
        seen.add(target.name)
        if target.timeout > target.interval:
            problems.append(
                (
                    f"{key}.timeout",
                    f"the timeout ({format_duration_ms(target.timeout)}) must not be longer "
                    f"than the interval ({format_duration_ms(target.interval)})",
                )
            )
    seen = set()
    for index, rule in enumerate(config.alerts.rules):
        key = f"alerts.rules[{index}]"
        if rule.name in seen:
            problems.append((f"{key}.name", f"rule name {rule.name!r} is used twice"))
        seen.add(rule.name)
        problems.extend(rule_problems(key, rule))
    for index, notifier in enumerate(config.alerts.notifiers):
        if notifier.kind != "log" and notifier.url is None:
            problems.append(
                (f"alerts.notifiers[{index}].url", f"a {notifier.kind} notifier needs a url")
            )
    problems.extend(siem_problems(config.siem, prefix))
    return problems


#: Keys a cross-key problem depends on beyond its own (dotted, without prefix).
_CHECK_INPUTS: dict[str, tuple[str, ...]] = {
    "server.host": ("server.token", "server.token_env"),
    "server.token_env": ("server.token",),
}


def checks_despite(
    error: ValidationError, data: Mapping[str, Any], root: Path, prefix: str
) -> list[tuple[str, str]]:
    """Token and cross-key problems of a config that failed validation.

    The rejected values are removed and the rest validated again with defaults
    in their place; a problem that depends on a removed key is dropped, because
    the default, not the user's value, would have caused it. A bad key of a
    list's item (``alerts.rules[0].op``) is removed from that item alone, so the
    other items are still checked against each other (a name used twice) and
    on their own; a problem of the item itself (or a required key it lacks)
    removes the whole list, so that indexes stay right.
    """
    pruned: Any = copy.deepcopy(dict(data))
    removed: list[str] = []
    for _ in range(8):  # each round removes at least one key, or gives up
        progress = False
        for item in error.errors(include_url=False):
            path = _prunable(tuple(item["loc"]), item["type"] == "missing")
            if path and _prune(pruned, path):
                removed.append(_dotted(path))
                progress = True
        if not progress:
            return []
        try:
            config = Config.model_validate(pruned, context={"root": root})
        except ValidationError as again:
            error = again
            continue
        break
    else:
        return []
    _, _, token_problems = resolve_token(config, prefix)
    return [
        (key, message)
        for key, message in [*token_problems, *cross_checks(config, prefix)]
        if not any(_depends_on(key, gone) for gone in removed)
    ]


def _prunable(loc: tuple[int | str, ...], missing: bool) -> tuple[str | int, ...]:
    """The keys leading to what an error points at, to remove it.

    Up to a ``[key]`` marker or a validator's name; for a missing key, the
    table that lacks it. Into a list's item only when the path ends at one of
    the item's keys: an item cannot go without shifting the ones after it, so
    anything else about an item removes its whole list.
    """
    path: list[str | int] = []
    for part in loc[:-1] if missing else loc:
        if part == "[key]" or not isinstance(part, str | int):
            break
        path.append(part)
    while path and isinstance(path[-1], int):
        path.pop()
    if missing:
        # The item lacks a required key: the default cannot stand in for it.
        first_index = next((i for i, part in enumerate(path) if isinstance(part, int)), None)
        if first_index is not None:
            path = path[:first_index]
    return tuple(path)


def _dotted(path: tuple[str | int, ...]) -> str:
    """``("alerts", "rules", 0, "op")`` -> ``alerts.rules[0].op``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _prune(data: Any, path: tuple[str | int, ...]) -> bool:
    """Remove ``path`` from nested tables and lists' items; False when it is not there."""
    for part in path[:-1]:
        if isinstance(part, int):
            data = data[part] if isinstance(data, list) and 0 <= part < len(data) else None
        else:
            data = data.get(part) if isinstance(data, dict) else None
    last = path[-1] if path else None
    if isinstance(data, dict) and isinstance(last, str) and last in data:
        del data[last]
        return True
    return False


#: Checks of a list's item that read only these keys of it (dotted, without indexes);
#: any other problem of an item is taken to depend on every key of that item.
_ITEM_CHECK_INPUTS: dict[str, tuple[str, ...]] = {
    "monitor.prometheus.targets.timeout": (
        "monitor.prometheus.targets.timeout",
        "monitor.prometheus.targets.interval",
    ),
    "monitor.prometheus.targets.name": ("monitor.prometheus.targets.name",),
    "alerts.rules.name": ("alerts.rules.name",),
}


def _depends_on(key: str, gone: str) -> bool:
    """Whether the problem at ``key`` may come from the default put in place of ``gone``."""
    plain = INDEX_RE.sub("", key)
    if "[" in gone:
        # A key of one list item: only that item's problems can come from its default.
        item = gone[: gone.rindex("]") + 1]
        if key != item and not key.startswith(item + "."):
            return False
        inputs = _ITEM_CHECK_INPUTS.get(plain)
        return inputs is None or INDEX_RE.sub("", gone) in inputs
    if plain == gone or plain.startswith(gone + ".") or gone.startswith(plain + "."):
        return True
    return gone in _CHECK_INPUTS.get(plain, ())


def rule_problems(key: str, rule: AlertRuleConfig) -> list[tuple[str, str]]:
    """What one ``[[alerts.rules]]`` entry's values cannot mean, as a rule file's rule is
    checked (``config.rule_checks``); each problem as (dotted key, message)."""
    found: list[str] = []
    for name in foreign_params(rule.kind, rule.model_fields_set):
        owner = next(kind for kind, params in KIND_PARAMS.items() if name in params)
        found.append(f"{name}: not a parameter of kind {rule.kind!r} (it belongs to {owner!r})")
    threshold = rule.threshold
    if rule.kind == "threshold" and threshold is None:
        found.append("threshold: required key is missing; expected a number")
    params = rule.params()
    found += param_problems(rule.kind, params, rule.window, set())
    if rule.kind == "threshold" and threshold is not None:
        levels = {"threshold": threshold}
        if rule.resolve_threshold is not None:
            levels["resolve_threshold"] = rule.resolve_threshold
        found += range_problems(rule.metric, rule.aggregation, levels)
    bad = {problem.split(":", 1)[0] for problem in found}
    if rule.resolve_threshold is not None and not bad & RESOLVE_INPUTS:
        found += resolve_problems(
            rule.kind, rule.op, threshold or 0.0, rule.resolve_threshold, params
        )
    out: list[tuple[str, str]] = []
    for problem in found:
        field, _, message = problem.partition(": ")
        out.append((f"{key}.{field}", message))
    return out


def guard_warnings(
    config: Config, stored_series: Callable[[SeriesSelector], int] | None
) -> list[tuple[str, str]]:
    """Guards of ``[scan.impact]`` that match no stored series yet, as (dotted key, message).

    Not an error: a series scraped from now on will match. Until it does, a
    scan runs at low priority without its budget. ``stored_series`` counts a
    selector's stored series (None: there is no store yet).
    """
    warnings: list[tuple[str, str]] = []
    for index, selector in enumerate(config.scan.impact.guard):
        if selector.builtin:
            continue
        count = stored_series(selector) if stored_series is not None else 0
        if count == 0:
            warnings.append(
                (
                    f"scan.impact.guard[{index}]",
                    f"{selector} matches no stored series yet; until it does, scans run at"
                    " low priority without the impact budget",
                )
            )
    return warnings
