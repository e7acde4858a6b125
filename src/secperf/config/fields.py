"""The field types of the config sections: each validates a value as a user writes it in
TOML and carries (in an ``Expect`` marker) how it is described in errors and exported.
Also the label ``Matcher`` and ``Section``, the base of every section model.
"""

from __future__ import annotations

import json
import math
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import annotated_types
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationInfo,
)

from secperf.config.units import (
    DURATION_EXAMPLES,
    format_duration_ms,
    format_size_bytes,
    mask_url,
    parse_duration_ms,
    parse_size_bytes,
)
from secperf.model import LABEL_NAME_RE, METRIC_NAME_RE, Severity


@dataclass(frozen=True, slots=True)
class Expect:
    """Annotation marker: how to describe a type in errors and how to export it."""

    text: str
    export: Callable[[Any], Any] | None = None


def _duration(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError("")
    return parse_duration_ms(value)


def validate_positive_duration(value: Any) -> int:
    """A duration (see ``parse_duration_ms``) longer than 0, in milliseconds."""
    ms = _duration(value)
    if ms <= 0:
        raise ValueError("it must be longer than 0")
    return ms


def validate_size(value: Any) -> int:
    """A size in bytes, written as an integer or with a unit (see ``parse_size_bytes``)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("")
    return parse_size_bytes(value)


def _number_or_percent(value: Any, scale: float) -> float:
    if isinstance(value, bool):
        raise ValueError("")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str) and value.strip().endswith("%"):
        try:
            number = float(value.strip()[:-1]) * scale
        except ValueError:
            raise ValueError("") from None
    else:
        raise ValueError("")
    if not math.isfinite(number):
        raise ValueError("")
    return number


def _fraction(value: Any) -> float:
    return _number_or_percent(value, 0.01)


def _percent(value: Any) -> float:
    return _number_or_percent(value, 1.0)


def _severity(value: Any) -> Severity:
    if isinstance(value, Severity):
        return value
    if not isinstance(value, str):
        raise ValueError("")
    try:
        return Severity.parse(value)
    except ValueError:
        raise ValueError("") from None


def _regex(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("")
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"invalid regular expression: {exc}") from None
    return value


def project_root(info: ValidationInfo) -> Path:
    """The directory relative paths resolve against: the validation context's ``root``."""
    context = info.context if isinstance(info.context, Mapping) else {}
    root = context.get("root")
    return root if isinstance(root, Path) else Path.cwd()


def resolve_path(value: Any, info: ValidationInfo) -> Path:
    """A path, with ``~`` expanded and a relative one resolved against the project root."""
    if isinstance(value, Path):
        path = value
    elif isinstance(value, str) and value.strip():
        path = Path(value)
    else:
        raise ValueError("")
    path = path.expanduser()
    return path if path.is_absolute() else (project_root(info) / path).resolve()


def _http_url(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("")
    return value


_MATCHER_RE = re.compile(
    r"""^\s*(?P<name>[a-zA-Z_][a-zA-Z0-9_]*)\s*(?P<op>=~|!~|!=|=)\s*
        (?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<bare>[^"\s]*))\s*$""",
    re.VERBOSE,
)


class Matcher(BaseModel):
    """A label matcher in PromQL form: ``name="v"``, ``name!="v"``, ``name=~"re"``, ``name!~"re"``.

    Regexes are anchored at both ends, as in Prometheus.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    op: Literal["=", "!=", "=~", "!~"]
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether a label set satisfies this matcher (a missing label is "")."""
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        found = re.fullmatch(self.value, actual) is not None
        return found if self.op == "=~" else not found

    def __str__(self) -> str:
        return f"{self.name}{self.op}{json.dumps(self.value)}"


def _matcher(value: Any) -> Matcher:
    if isinstance(value, Matcher):
        return value
    if not isinstance(value, str):
        raise ValueError("")
    match = _MATCHER_RE.match(value)
    if not match:
        raise ValueError("")
    quoted = match.group("quoted")
    text = json.loads(f'"{quoted}"') if quoted is not None else match.group("bare")
    op = match.group("op")
    if op in ("=~", "!~"):
        _regex(text)
    return Matcher(name=match.group("name"), op=op, value=text)


Int = Annotated[int, Strict()]
NonNegInt = Annotated[int, Strict(), annotated_types.Ge(0)]
PositiveInt = Annotated[int, Strict(), annotated_types.Ge(1)]
Float = Annotated[float, Strict()]
Bool = Annotated[bool, Strict()]
Str = Annotated[str, Strict()]
NonEmptyStr = Annotated[str, Strict(), annotated_types.MinLen(1)]
Glob = Annotated[str, Strict(), annotated_types.MinLen(1), Expect("a non-empty glob pattern")]
LabelName = Annotated[
    str,
    Strict(),
    Field(pattern=LABEL_NAME_RE.pattern),
    Expect(f"a label name matching {LABEL_NAME_RE.pattern}"),
]
MetricName = Annotated[
    str,
    Strict(),
    Field(pattern=METRIC_NAME_RE.pattern),
    Expect(f"a metric name matching {METRIC_NAME_RE.pattern}"),
]
DurationMs = Annotated[
    int,
    BeforeValidator(_duration),
    Expect(f"a duration such as {DURATION_EXAMPLES}", format_duration_ms),
]
PositiveDurationMs = Annotated[
    int,
    BeforeValidator(validate_positive_duration),
    Expect(f"a duration longer than 0 such as {DURATION_EXAMPLES}", format_duration_ms),
]
SizeBytes = Annotated[
    int,
    BeforeValidator(validate_size),
    Expect("a size such as 1048576, '512KB' or '1MiB'", format_size_bytes),
]
# A limit of 0 bytes would refuse everything (every file too large, every body).
PositiveSizeBytes = Annotated[
    int,
    BeforeValidator(validate_size),
    Expect("a size larger than 0 such as 1048576, '512KB' or '1MiB'", format_size_bytes),
    annotated_types.Gt(0),
]
Fraction = Annotated[
    float,
    BeforeValidator(_fraction),
    Expect("a fraction from 0 to 1 such as 0.05 or '5%'"),
    annotated_types.Ge(0.0),
    annotated_types.Le(1.0),
]
OpenFraction = Annotated[
    float,
    BeforeValidator(_fraction),
    Expect("a fraction strictly between 0 and 1 such as 0.99 or '99%'"),
    annotated_types.Gt(0.0),
    annotated_types.Lt(1.0),
]
Percent = Annotated[
    float,
    BeforeValidator(_percent),
    Expect("a percentage from 0 to 100 such as 80 or '80%'"),
    annotated_types.Ge(0.0),
    annotated_types.Le(100.0),
]
SeverityLevel = Annotated[
    Severity,
    BeforeValidator(_severity),
    Expect(
        "a severity: one of " + ", ".join(s.value for s in Severity),
        lambda sev: sev.value,
    ),
]
Regex = Annotated[str, BeforeValidator(_regex), Expect("a regular expression")]
ResolvedPath = Annotated[
    Path, BeforeValidator(resolve_path), Expect("a path (relative to the project root)", str)
]
HttpUrl = Annotated[str, BeforeValidator(_http_url), Expect("an http:// or https:// URL", mask_url)]
LabelMatcher = Annotated[
    Matcher,
    BeforeValidator(_matcher),
    Expect('a label matcher such as job="api", env!="dev" or path=~"/api/.*"', str),
]


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def unwrap_annotation(annotation: Any) -> tuple[Any, list[Any]]:
    """Strip Annotated and Optional; return the core type and the collected metadata."""
    metadata: list[Any] = []
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            args = typing.get_args(annotation)
            annotation = args[0]
            metadata.extend(args[1:])
            continue
        if origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(members) == 1:
                annotation = members[0]
                continue
        return annotation, metadata
