"""CEF and ECS text of SIEM records, and RFC 5424 / RFC 6587 framing."""

from __future__ import annotations

import json
import re

import pytest

from secperf.model import Finding, Severity
from secperf.siem.format_cef import escape_extension, escape_header, format_cef
from secperf.siem.format_ecs import ecs_document, format_ecs
from secperf.siem.records import SiemRecord
from secperf.siem.syslog import SD_ID, SyslogHeader, build_message, escape_sd_value, frame

SECRET = "AKIAZ7QX4PLM2RT8WB6N"  # an AWS access key id the redactor knows


def _finding(**overrides: object) -> Finding:
    values: dict[str, object] = {
        "fingerprint": "f" * 32,
        "rule_id": "B105",
        "scanner": "bandit",
        "severity": Severity.HIGH,
        "message": "Possible hardcoded password: 'x'",
        "path": "src/app/settings.py",
        "line": 12,
        "cwe": 259,
        "snippet": "password = 'x'",
    }
    values.update(overrides)
    return Finding(**values)  # type: ignore[arg-type]


def _record(**overrides: object) -> SiemRecord:
    values: dict[str, object] = {
        "kind": "finding.new",
        "key": "finding.new:scan-1:" + "f" * 32,
        "ts_ms": 1_700_000_000_123,
        "host": "build-7",
        "name": "New finding: B105",
        "message": "Possible hardcoded password (src/app/settings.py:12)",
        "severity": Severity.HIGH,
        "target": "shop",
        "scan_id": "scan-1",
        "finding": _finding(),
        "baselined": False,
        "rule": "B105",
        "state": "open",
        "reference": "f" * 32,
    }
    values.update(overrides)
    return SiemRecord(**values)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- CEF


def test_cef_header_escapes_pipe_and_backslash_and_flattens_line_breaks() -> None:
    assert escape_header(r"a|b\c") == r"a\|b\\c"
    assert escape_header("one\ntwo\r\nthree") == "one two three"
    # '=' needs no escape in the header.
    assert escape_header("x=y") == "x=y"


def test_cef_extension_escapes_equals_backslash_and_line_breaks() -> None:
    assert escape_extension(r"k=v\w") == r"k\=v\\w"
    assert escape_extension("line1\nline2\r\nline3\rend") == r"line1\nline2\nline3\rend"
    # '|' needs no escape in the extension.
    assert escape_extension("a|b") == "a|b"


def _split_cef(line: str) -> tuple[list[str], str]:
    """The seven header fields (unescaped) and the raw extension of a CEF line."""
    fields: list[str] = []
    current = ""
    i = 0
    while len(fields) < 7:
        ch = line[i]
        if ch == "\\":
            current += line[i + 1]
            i += 2
            continue
        if ch == "|":
            fields.append(current)
            current = ""
        else:
            current += ch
        i += 1
    return fields, line[i:]


def _cef_extension(raw: str) -> dict[str, str]:
    """Parse ``key=value`` pairs: a value runs to the space before the next unescaped ``key=``."""
    out: dict[str, str] = {}
    keys = list(re.finditer(r"(?:^| )([A-Za-z0-9]+)=(?<!\\=)", raw))
    for index, match in enumerate(keys):
        end = keys[index + 1].start() if index + 1 < len(keys) else len(raw)
        value = raw[match.end() : end]
        value = re.sub(
            r"\\(.)", lambda m: {"n": "\n", "r": "\r"}.get(m.group(1), m.group(1)), value
        )
        out[match.group(1)] = value
    return out


def test_cef_line_has_seven_header_fields_and_round_trips_hostile_text() -> None:
    hostile = "pipe | backslash \\ equals = and\nnew line"
    line = format_cef(_record(name=f"New finding: {hostile}", message=hostile), sequence=41)
    assert "\n" not in line
    header, extension = _split_cef(line)
    assert header[:5] == ["CEF:0", "secperf", "secperf", header[3], "finding.new"]
    assert header[5] == "New finding: pipe | backslash \\ equals = and new line"
    assert header[6] == "8"  # high on CEF's 0-10 scale
    pairs = _cef_extension(extension)
    assert pairs["msg"] == hostile
    assert pairs["rt"] == "1700000000123"
    assert pairs["dvchost"] == "build-7"
    assert pairs["cat"] == "finding.new"
    assert pairs["filePath"] == "src/app/settings.py"
    assert (pairs["cs1Label"], pairs["cs1"]) == ("ruleId", "B105")
    assert (pairs["cs2Label"], pairs["cs2"]) == ("target", "shop")
    assert (pairs["cn1Label"], pairs["cn1"]) == ("line", "12")
    assert (pairs["cn2Label"], pairs["cn2"]) == ("cwe", "259")
    assert (pairs["cn3Label"], pairs["cn3"]) == ("sequence", "41")
    assert pairs["externalId"] == "f" * 32


def test_cef_and_ecs_redact_a_secret_in_any_free_text_field() -> None:
    leaky = _record(
        message=f"key {SECRET} in settings",
        reason=f"rotated {SECRET}",
        finding=_finding(snippet=f"aws_key = '{SECRET}'", message=f"found {SECRET}"),
        labels={"note": SECRET},
    )
    for text in (format_cef(leaky, 1), format_ecs(leaky, 1)):
        assert SECRET not in text
        assert "AKI****B6N" in text


# --------------------------------------------------------------------------- ECS


def test_ecs_document_uses_ecs_field_names_and_allowed_categorization_values() -> None:
    doc = json.loads(format_ecs(_record(), sequence=7))
    assert doc["@timestamp"] == "2023-11-14T22:13:20.123Z"
    assert doc["ecs"]["version"]
    event = doc["event"]
    assert event["kind"] == "alert"
    assert event["category"] == ["vulnerability"]
    assert event["type"] == ["info"]
    assert event["action"] == "finding-new"
    assert event["severity"] == 8
    assert event["sequence"] == 7
    assert event["id"] == "finding.new:scan-1:" + "f" * 32
    assert doc["rule"]["id"] == "B105"
    assert doc["rule"]["ruleset"] == "bandit"
    assert doc["vulnerability"]["id"] == "B105"
    assert doc["vulnerability"]["severity"] == "high"
    assert doc["vulnerability"]["enumeration"] == "CWE"
    assert doc["vulnerability"]["reference"].endswith("/259.html")
    assert doc["file"] == {"path": "src/app/settings.py", "name": "settings.py"}
    assert doc["host"]["name"] == "build-7"
    assert doc["message"].startswith("Possible hardcoded password")
    assert doc["secperf"]["target"] == "shop"
    assert doc["secperf"]["baselined"] is False


ALLOWED_KINDS = {
    "alert",
    "asset",
    "enrichment",
    "event",
    "metric",
    "state",
    "pipeline_error",
    "signal",
}
ALLOWED_CATEGORIES = {
    "api", "authentication", "configuration", "database", "driver", "email", "file", "host",
    "iam", "intrusion_detection", "library", "malware", "network", "package", "process",
    "registry", "session", "threat", "vulnerability", "web",
}  # fmt: skip
ALLOWED_TYPES = {
    "access", "admin", "allowed", "change", "connection", "creation", "deletion", "denied",
    "device", "end", "error", "group", "indicator", "info", "installation", "protocol",
    "start", "user",
}  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "extra"),
    [
        ("finding.fixed", {}),
        ("secret", {}),
        ("triage", {"finding": None, "user": "ana", "state": "false_positive"}),
        ("alert.firing", {"finding": None, "side": "security"}),
        ("alert.resolved", {"finding": None, "side": "performance"}),
        ("gate", {"finding": None, "outcome": "failure", "state": "block"}),
        ("scan.throttled", {"finding": None, "state": "pause", "value": 1234.0}),
    ],
)
def test_every_kind_keeps_to_ecs_allowed_values(kind: str, extra: dict[str, object]) -> None:
    doc = ecs_document(_record(kind=kind, key=f"{kind}:1", **extra), 1)
    event = doc["event"]
    assert event["kind"] in ALLOWED_KINDS
    assert set(event["category"]) <= ALLOWED_CATEGORIES
    assert set(event["type"]) <= ALLOWED_TYPES
    assert event.get("outcome", "success") in {"success", "failure", "unknown"}
    assert event["dataset"] == f"secperf.{kind}"
    if extra.get("user"):
        assert doc["user"]["name"] == "ana"


def test_a_secret_record_carries_the_preview_only() -> None:
    preview = "AKIA****WB6N"
    secret = _record(
        kind="secret",
        finding=_finding(scanner="secrets", category="secret", snippet=preview, rule_id="aws"),
    )
    doc = ecs_document(secret, 3)
    assert doc["secperf"]["preview"] == preview
    assert "snippet" not in doc["secperf"]
    assert "cs4Label=preview cs4=AKIA****WB6N" in format_cef(secret, 3)


# --------------------------------------------------------------------------- syslog


def test_rfc5424_message_and_octet_counting_frame() -> None:
    message = build_message(
        SyslogHeader(facility=16, app_name="secperf"),
        severity=3,
        ts_ms=1_700_000_000_123,
        hostname="build 7",
        msgid="finding.new",
        sequence=12,
        key='k"e]y\\',
        text="CEF:0|x",
    )
    text = message.decode()
    # local0 (16) * 8 + err (3) = 131; the host's space is not printable ASCII.
    assert text.startswith("<131>1 2023-11-14T22:13:20.123Z build_7 secperf - finding.new ")
    assert f'[{SD_ID} seq="12" key="k\\"e\\]y\\\\"]' in text
    assert text.endswith(" CEF:0|x")
    framed = frame("é\nx".encode())
    assert framed == b"4 \xc3\xa9\nx"  # the length counts bytes, not characters


def test_sd_value_escapes() -> None:
    assert escape_sd_value('a"b]c\\d') == 'a\\"b\\]c\\\\d'
