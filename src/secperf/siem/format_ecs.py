"""A ``SiemRecord`` as one JSON document with Elastic Common Schema field names.

Nested objects (``{"event": {"kind": ...}}``), as Elasticsearch and the
Elastic Agent read them. The categorization fields use ECS's allowed values
only: ``event.kind`` (``alert`` for new findings, secrets and firing alerts,
``event`` otherwise), ``event.category`` (``vulnerability`` for findings and
security alerts, ``configuration`` for triage, ``host`` for performance
alerts and throttled scans), ``event.type`` and ``event.outcome``;
``event.action`` says what happened in secperf's words (``finding-new``,
``finding-fixed``, ``secret-found``, ``finding-triaged``, ``alert-firing``,
``alert-resolved``, ``gate-evaluated``, ``scan-throttled``).
``event.severity`` is CEF's 0-10 number, ``log.syslog.severity`` is not set
(the syslog header carries it). Findings fill ``rule.*``, ``vulnerability.*``
and ``file.path``; ``event.sequence`` is the output queue's number, which
only grows, so a receiver can drop a duplicate. Free text is redacted first.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

from secperf import __version__
from secperf.model import MetricKind
from secperf.siem.records import CEF_SEVERITY, PRODUCT, VENDOR, SiemRecord, redact_record

#: The ECS version the field names follow.
ECS_VERSION = "8.11.0"

_ACTIONS = {
    "finding.new": "finding-new",
    "finding.fixed": "finding-fixed",
    "secret": "secret-found",
    "triage": "finding-triaged",
    "alert.firing": "alert-firing",
    "alert.resolved": "alert-resolved",
    "gate": "gate-evaluated",
    "scan.throttled": "scan-throttled",
}


def iso_timestamp(ms: int) -> str:
    """UTC milliseconds as ``2024-05-01T12:00:00.000Z`` (``@timestamp``)."""
    text = datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def _categorization(record: SiemRecord) -> dict[str, Any]:
    kind = record.kind
    if kind in ("finding.new", "secret"):
        return {"kind": "alert", "category": ["vulnerability"], "type": ["info"]}
    if kind == "finding.fixed":
        return {"kind": "event", "category": ["vulnerability"], "type": ["info"]}
    if kind == "triage":
        return {"kind": "event", "category": ["configuration"], "type": ["change"]}
    if kind.startswith("alert."):
        security = record.side == MetricKind.SECURITY.value
        return {
            "kind": "alert" if kind == "alert.firing" else "event",
            "category": ["vulnerability" if security else "host"],
            "type": ["info"],
        }
    if kind == "gate":
        return {"kind": "event", "category": ["configuration"], "type": ["info"]}
    return {"kind": "event", "category": ["host"], "type": ["change"]}


def ecs_document(record: SiemRecord, sequence: int | None = None) -> dict[str, Any]:
    """The ECS document of an already redacted ``record``."""
    event: dict[str, Any] = {
        **_categorization(record),
        "action": _ACTIONS[record.kind],
        "severity": CEF_SEVERITY[record.severity],
        "created": iso_timestamp(record.ts_ms),
        "dataset": f"secperf.{record.kind}",
        "module": "secperf",
        "provider": "secperf",
        "id": record.key,
    }
    if sequence is not None:
        event["sequence"] = sequence
    if record.outcome:
        event["outcome"] = record.outcome
    if record.reason:
        event["reason"] = record.reason
    doc: dict[str, Any] = {
        "@timestamp": iso_timestamp(record.ts_ms),
        "ecs": {"version": ECS_VERSION},
        "message": record.message,
        "event": event,
        "host": {"name": record.host, "hostname": record.host},
        "observer": {"vendor": VENDOR, "product": PRODUCT, "version": __version__},
        "secperf": _secperf_fields(record),
    }
    if record.rule:
        doc["rule"] = {"id": record.rule, "name": record.rule}
    if record.user:
        doc["user"] = {"name": record.user}
    if record.labels:
        doc["labels"] = dict(sorted(record.labels.items()))
    finding = record.finding
    if finding is not None:
        doc["rule"] = {
            "id": finding.rule_id,
            "name": finding.rule_id,
            "ruleset": finding.scanner,
            "category": finding.category,
            **({"reference": finding.help_url} if finding.help_url else {}),
        }
        vulnerability: dict[str, Any] = {
            "id": finding.rule_id,
            "severity": str(finding.severity.value),
            "category": [finding.category],
            "description": finding.message,
            "scanner": {"vendor": VENDOR},
        }
        if finding.cwe is not None:
            vulnerability["classification"] = "CWE"
            vulnerability["enumeration"] = "CWE"
            vulnerability["reference"] = (
                f"https://cwe.mitre.org/data/definitions/{finding.cwe}.html"
            )
        doc["vulnerability"] = vulnerability
        doc["file"] = {"path": finding.path, "name": PurePosixPath(finding.path).name}
    return doc


def _secperf_fields(record: SiemRecord) -> dict[str, Any]:
    """What ECS has no field for, under the vendor's own ``secperf.*`` object."""
    out: dict[str, Any] = {"kind": record.kind}
    for name in ("target", "scan_id", "state", "reference", "side"):
        value = getattr(record, name)
        if value:
            out[name] = value
    if record.value is not None:
        out["value"] = record.value
    finding = record.finding
    if finding is not None:
        out["fingerprint"] = finding.fingerprint
        out["scanner"] = finding.scanner
        if finding.line:
            out["line"] = finding.line
        if finding.snippet:
            out["preview" if record.kind == "secret" else "snippet"] = finding.snippet
        if record.baselined is not None:
            out["baselined"] = record.baselined
    return out


def format_ecs(record: SiemRecord, sequence: int | None = None) -> str:
    """``record`` as one line of compact ECS JSON (redacted)."""
    document = ecs_document(redact_record(record), sequence)
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
