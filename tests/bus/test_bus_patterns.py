"""Topic patterns: NATS-style wildcard matching and validation."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secperf.bus.interface import topic_matches, validate_pattern
from secperf.events import TOPICS


@pytest.mark.parametrize(
    ("pattern", "topic", "expected"),
    [
        ("security.scan.completed", "security.scan.completed", True),
        ("security.scan.completed", "security.scan.started", False),
        ("security.scan", "security.scan.completed", False),
        ("security.scan.completed.x", "security.scan.completed", False),
        ("security.scan.*", "security.scan.completed", True),
        ("security.scan.*", "security.scan", False),
        ("security.scan.*", "security.scan.completed.extra", False),
        ("*.scan.*", "security.scan.started", True),
        ("*.scan.*", "security.violation", False),
        ("*", "metrics", True),
        ("*", "metrics.recorded", False),
        ("security.>", "security.violation", True),
        ("security.>", "security.baseline.updated", True),
        ("security.>", "security", False),
        ("security.>", "securityx.violation", False),
        (">", "metrics.recorded", True),
        (">", "a", True),
        ("*.>", "alerts.changed", True),
        ("*.>", "alerts", False),
        ("metrics.*.>", "metrics.recorded", False),
        ("metrics.*.>", "metrics.recorded.cpu", True),
    ],
)
def test_topic_matches(pattern: str, topic: str, expected: bool) -> None:
    validate_pattern(pattern)
    assert topic_matches(pattern, topic) is expected


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("", "empty token"),
        (".", "empty token"),
        ("security.", "empty token"),
        (".security", "empty token"),
        ("security..scan", "empty token"),
        ("security.>.scan", "'>' must be the last token"),
        (">.security", "'>' must be the last token"),
        ("security.scan*", "wildcards must be whole tokens"),
        ("security.*scan", "wildcards must be whole tokens"),
        ("security.scan>", "wildcards must be whole tokens"),
        ("sec>urity", "wildcards must be whole tokens"),
    ],
)
def test_invalid_patterns_are_refused_naming_the_pattern(pattern: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)) as caught:
        validate_pattern(pattern)
    assert repr(pattern) in str(caught.value)


@pytest.mark.parametrize("topic", TOPICS)
def test_every_event_topic_is_a_valid_literal_pattern(topic: str) -> None:
    validate_pattern(topic)
    assert "*" not in topic and ">" not in topic
    assert topic_matches(topic, topic)
    assert topic_matches(">", topic)


def reference_matches(pattern: str, topic: str) -> bool:
    """An independent regex translation of the NATS rules."""
    parts = []
    for token in pattern.split("."):
        if token == "*":
            parts.append(r"[^.]+")
        elif token == ">":
            parts.append(r"[^.]+(?:\.[^.]+)*")
        else:
            parts.append(re.escape(token))
    return re.fullmatch(r"\.".join(parts), topic) is not None


tokens = st.sampled_from(["security", "scan", "metrics", "alerts", "a", "b", "x1"])
topics = st.lists(tokens, min_size=1, max_size=5).map(".".join)
pattern_tokens = st.one_of(tokens, st.just("*"))


@st.composite
def patterns(draw: st.DrawFn) -> str:
    body = draw(st.lists(pattern_tokens, min_size=0, max_size=5))
    if not body or draw(st.booleans()):
        body.append(">")
    return ".".join(body)


@given(patterns(), topics)
def test_topic_matches_agrees_with_a_regex_reference(pattern: str, topic: str) -> None:
    validate_pattern(pattern)
    assert topic_matches(pattern, topic) == reference_matches(pattern, topic)


@given(topics, st.data())
def test_wildcards_over_a_topic_match_it(topic: str, data: st.DataObject) -> None:
    parts = topic.split(".")
    starred = [
        "*" if data.draw(st.booleans(), label=f"star {i}") else t for i, t in enumerate(parts)
    ]
    assert topic_matches(".".join(starred), topic)
    cut = data.draw(st.integers(min_value=0, max_value=len(parts) - 1), label="cut")
    prefix = ".".join([*parts[:cut], ">"])
    assert topic_matches(prefix, topic)
    # '>' needs at least one more token.
    assert not topic_matches(".".join([*parts, ">"]), topic)
