"""``[scan.impact]``: how a scan shares the machine: its priority and its impact budget.

A guard is a series selector in PromQL form, ``name{label="v",other=~"re"}``,
whose label matchers are the ones alert rules use (``fields.LabelMatcher``), or
the built-in ``host_cpu_others``: the host CPU the processes other than the
scan's get (see ``secperf.security.pacing.guards``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

import annotated_types
from pydantic import BeforeValidator, TypeAdapter

from secperf.config.fields import (
    Expect,
    LabelMatcher,
    Matcher,
    PositiveDurationMs,
    Section,
)
from secperf.config.units import parse_duration_ms
from secperf.model import METRIC_NAME_RE

#: The built-in guard: the host CPU left to processes other than the scan's.
HOST_CPU_GUARD = "host_cpu_others"

Priority = Literal["low", "normal"]


@dataclass(frozen=True, slots=True)
class SeriesSelector:
    """``name{matchers}``: the series a guard watches."""

    name: str
    matchers: tuple[Matcher, ...] = ()

    @property
    def builtin(self) -> bool:
        """Whether this is the built-in host CPU guard rather than a stored series."""
        return self.name == HOST_CPU_GUARD and not self.matchers

    def matches(self, name: str, labels: dict[str, str]) -> bool:
        """Whether a series of this name and labels is one this selector picks."""
        return name == self.name and all(m.matches(labels) for m in self.matchers)

    def equality_labels(self) -> dict[str, str]:
        """The ``=`` matchers as a dict: what the store can filter on by itself."""
        return {m.name: m.value for m in self.matchers if m.op == "="}

    def __str__(self) -> str:
        if not self.matchers:
            return self.name
        return f"{self.name}{{{','.join(str(m) for m in self.matchers)}}}"


_MATCHER_ADAPTER: TypeAdapter[Matcher] = TypeAdapter(LabelMatcher)


def _split_matchers(body: str) -> list[str]:
    """``a="x,y",b!~"z"`` -> ``['a="x,y"', 'b!~"z"']``: commas inside quotes stay."""
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in body:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    if quoted:
        raise ValueError("a quoted label value is not closed")
    tail = "".join(current)
    if tail.strip():
        parts.append(tail)
    return parts


def parse_selector(text: Any) -> SeriesSelector:
    """Parse ``name`` or ``name{label="v",...}``; raises ValueError saying what is wrong."""
    if isinstance(text, SeriesSelector):
        return text
    if not isinstance(text, str) or not text.strip():
        raise ValueError("")
    text = text.strip()
    name, brace, rest = text.partition("{")
    name = name.strip()
    if not METRIC_NAME_RE.match(name):
        raise ValueError(f"{name!r} is not a metric name")
    if not brace:
        return SeriesSelector(name)
    if not rest.rstrip().endswith("}"):
        raise ValueError("the label matchers must end with '}'")
    matchers: list[Matcher] = []
    for part in _split_matchers(rest.rstrip()[:-1]):
        try:
            matchers.append(_MATCHER_ADAPTER.validate_python(part.strip()))
        except Exception:
            raise ValueError(f'{part.strip()!r} is not a label matcher such as job="api"') from None
    return SeriesSelector(name, tuple(matchers))


GuardSelector = Annotated[
    SeriesSelector,
    BeforeValidator(parse_selector),
    Expect(
        f'a series selector such as \'response_time_ms{{job="api",quantile="0.95"}}\' '
        f"or {HOST_CPU_GUARD!r}",
        str,
    ),
]
BudgetPercent = Annotated[
    float,
    Expect("a percentage above 0 such as 10"),
    annotated_types.Gt(0.0),
    annotated_types.Le(1000.0),
]
Slowdown = Annotated[
    float,
    Expect("a factor of at least 1 such as 4"),
    annotated_types.Ge(1.0),
    annotated_types.Le(1000.0),
]


class ImpactConfig(Section):
    """``[scan.impact]``: priority of the scan's workers and the budget that throttles them.

    ``priority``: unset means by command: low for ``up``, ``agent``, ``demo`` and
    periodic scans, normal for a one-shot ``secperf scan`` (``--priority`` sets it).
    The budget runs whenever the priority is low; ``guard = []`` switches it off.
    """

    priority: Priority | None = None
    guard: list[GuardSelector] = [SeriesSelector(HOST_CPU_GUARD)]
    max_increase_pct: BudgetPercent = 10.0
    max_slowdown: Slowdown = 4.0
    # The guard's level before a scan: its median over this long before the scan.
    before_window: PositiveDurationMs = parse_duration_ms("2m")
    # A guard with no fresh sample for this long during a scan has stopped: budget off.
    stale_after: PositiveDurationMs = parse_duration_ms("10s")

    def effective_priority(self, default: Priority) -> Priority:
        """``priority``, or the command's ``default`` when unset."""
        return self.priority or default
