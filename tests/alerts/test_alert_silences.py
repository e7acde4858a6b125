"""Matchers and silences: parsing, matching, time ranges, bad input, the store round trip."""

from __future__ import annotations

from pathlib import Path

import pytest

from secperf.alerts.silences import (
    MatcherError,
    SilenceSet,
    check_silence_matchers,
    matcher_from_object,
    matchers_from_objects,
    parse_matcher,
)
from secperf.store import Silence, Store


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ('host="a"', {"host": "a"}, True),
        ('host="a"', {"host": "b"}, False),
        ('host!="a"', {}, True),
        ('host=~"web-.*"', {"host": "web-1"}, True),
        ('host=~"web"', {"host": "web-1"}, False),  # anchored at both ends
        ('host!~"web-.*"', {"host": "db-1"}, True),
        ('path="a\\"b"', {"path": 'a"b'}, True),
        ("env=", {}, True),  # a missing label matches as ""
    ],
)
def test_matchers(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_matcher(text).matches(labels) is expected


def test_object_forms() -> None:
    assert str(matcher_from_object({"name": "a", "value": "x", "op": "!="})) == 'a!="x"'
    assert matcher_from_object({"name": "a", "value": "x.*", "isRegex": True}).op == "=~"
    assert matcher_from_object({"name": "a", "value": "x", "isEqual": False}).op == "!="
    assert matcher_from_object({"name": "a", "value": "x"}).op == "="


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({"name": "1a", "value": "x"}, "label name '1a'"),
        ({"name": "a", "value": "(", "op": "=~"}, "invalid regular expression"),
        ({"name": "a", "value": "x", "op": "~"}, "op '~'"),
        ({"name": "a", "value": 3}, "value must be a string"),
        ({"name": "a", "value": "x", "extra": 1}, "unknown field(s) extra"),
        ("host", "is not a matcher"),
    ],
)
def test_bad_matchers_name_where(obj: object, message: str) -> None:
    with pytest.raises(MatcherError) as info:
        matchers_from_objects([{"name": "ok", "value": "1"}, obj])
    assert "matchers[1]" in str(info.value) and message in str(info.value)


def test_a_silence_must_not_mute_everything() -> None:
    with pytest.raises(MatcherError, match="empty string"):
        check_silence_matchers([parse_matcher('host=~".*"')])
    check_silence_matchers([parse_matcher('host=~".*"'), parse_matcher('alertname="X"')])
    with pytest.raises(MatcherError, match="non-empty list"):
        matchers_from_objects([])


def test_silence_set_respects_time_and_matchers(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.db")
    try:
        sid = store.add_silence(
            [
                {"name": "host", "value": "web-.*", "op": "=~"},
                {"name": "alertname", "value": "Cpu", "op": "="},
            ],
            1000,
            2000,
            "alice",
            "deploy",
        )
        silences = SilenceSet(store.silences())
        labels = {"host": "web-1", "alertname": "Cpu"}
        assert silences.is_silenced(labels, 1500)
        assert not silences.is_silenced(labels, 999)
        assert not silences.is_silenced(labels, 2000)  # the end is exclusive
        assert not silences.is_silenced({"host": "db-1", "alertname": "Cpu"}, 1500)
        assert [s.id for s in silences.matching(labels, 1500)] == [sid]
        # A stored silence with an unreadable matcher mutes nothing and breaks nothing.
        broken = Silence(99, [{"name": "a", "value": "(", "op": "=~"}], 0, 10**13, "x", "y", 0)
        assert len(SilenceSet([broken])) == 0
    finally:
        store.close()
