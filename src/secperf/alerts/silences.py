"""Label matchers and silences: which alerts a silence mutes.

Matchers take the PromQL / Alertmanager forms: ``name="value"``, ``name!="value"``,
``name=~"regex"`` and ``name!~"regex"`` as text, or ``{"name", "value", "op"}``
objects as the HTTP API sends them. Regexes are anchored at both ends and a
missing label matches as the empty string, as in Prometheus.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from secperf.config import Matcher
from secperf.model import LABEL_NAME_RE
from secperf.store import Silence

OPS = ("=", "!=", "=~", "!~")

_MATCHER_RE = re.compile(
    r"""^\s*(?P<name>[a-zA-Z_][a-zA-Z0-9_]*)\s*(?P<op>=~|!~|!=|=)\s*
        (?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<bare>[^"\s]*))\s*$""",
    re.VERBOSE,
)


class MatcherError(ValueError):
    """A matcher that cannot be used; the message names it and why."""


def make_matcher(name: Any, op: Any, value: Any, *, where: str = "matcher") -> Matcher:
    """A checked matcher; raises MatcherError naming ``where`` and the problem."""
    if not isinstance(name, str) or not LABEL_NAME_RE.match(name):
        raise MatcherError(f"{where}: label name {name!r} must match {LABEL_NAME_RE.pattern}")
    if op not in OPS:
        raise MatcherError(f"{where}: op {op!r} must be one of {', '.join(OPS)}")
    if not isinstance(value, str):
        raise MatcherError(f"{where}: value must be a string, got {type(value).__name__}")
    if op in ("=~", "!~"):
        try:
            re.compile(value)
        except re.error as exc:
            raise MatcherError(f"{where}: invalid regular expression {value!r}: {exc}") from None
    return Matcher(name=name, op=op, value=value)


def parse_matcher(text: Any, *, where: str = "matcher") -> Matcher:
    """Parse ``name="value"`` (or ``!=``, ``=~``, ``!~``); raises MatcherError."""
    if isinstance(text, Matcher):
        return text
    if not isinstance(text, str):
        raise MatcherError(f'{where}: expected a matcher such as job="api", got {text!r}')
    match = _MATCHER_RE.match(text)
    if not match:
        raise MatcherError(
            f'{where}: {text!r} is not a matcher; write name="value", name!="value", '
            'name=~"regex" or name!~"regex"'
        )
    quoted = match.group("quoted")
    value = json.loads(f'"{quoted}"') if quoted is not None else match.group("bare")
    return make_matcher(match.group("name"), match.group("op"), value, where=where)


def matcher_from_object(obj: Any, *, where: str = "matcher") -> Matcher:
    """A matcher from ``{"name", "value", "op"}`` (op defaults to ``=``) or its text form.

    Alertmanager's ``isRegex`` / ``isEqual`` booleans are accepted too.
    """
    if isinstance(obj, str | Matcher):
        return parse_matcher(obj, where=where)
    if not isinstance(obj, Mapping):
        raise MatcherError(f"{where}: expected an object with name, value and op")
    unknown = set(obj) - {"name", "value", "op", "isRegex", "isEqual"}
    if unknown:
        raise MatcherError(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    op = obj.get("op")
    if op is None:
        regex = bool(obj.get("isRegex", False))
        equal = bool(obj.get("isEqual", True))
        op = ("=~" if regex else "=") if equal else ("!~" if regex else "!=")
    return make_matcher(obj.get("name"), op, obj.get("value"), where=where)


def matchers_from_objects(objs: Any, *, where: str = "matchers") -> list[Matcher]:
    """A non-empty list of matchers; raises MatcherError naming the bad one."""
    if not isinstance(objs, list | tuple) or not objs:
        raise MatcherError(f"{where}: expected a non-empty list of matchers")
    return [matcher_from_object(o, where=f"{where}[{i}]") for i, o in enumerate(objs)]


def matcher_to_object(matcher: Matcher) -> dict[str, str]:
    """The API / store form of a matcher."""
    return {"name": matcher.name, "value": matcher.value, "op": matcher.op}


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    """True when every matcher accepts ``labels``."""
    return all(m.matches(labels) for m in matchers)


def silence_matchers(silence: Silence) -> list[Matcher]:
    """The matchers of a stored silence (stored in the API form)."""
    return matchers_from_objects(silence.matchers, where=f"silence {silence.id}")


class SilenceSet:
    """The silences in force, parsed once, answering "is this label set muted?"."""

    def __init__(self, silences: Iterable[Silence] = ()) -> None:
        self._items: list[tuple[Silence, list[Matcher]]] = []
        for silence in silences:
            try:
                self._items.append((silence, silence_matchers(silence)))
            except MatcherError:
                # A stored silence the engine cannot read mutes nothing; never crash on it.
                continue

    def __len__(self) -> int:
        return len(self._items)

    def matching(self, labels: Mapping[str, str], at_ms: int) -> list[Silence]:
        """The silences active at ``at_ms`` that mute ``labels``."""
        return [
            silence
            for silence, matchers in self._items
            if silence.active(at_ms) and matches_all(matchers, labels)
        ]

    def is_silenced(self, labels: Mapping[str, str], at_ms: int) -> bool:
        """True when an active silence mutes ``labels``."""
        return any(
            silence.active(at_ms) and matches_all(matchers, labels)
            for silence, matchers in self._items
        )


def check_silence_matchers(matchers: list[Matcher], where: str = "matchers") -> None:
    """Refuse silences that would mute everything (every matcher matches "")."""
    if all(m.matches({}) for m in matchers):
        raise MatcherError(
            f"{where}: at least one matcher must not match the empty string, "
            "or the silence would mute every alert"
        )
